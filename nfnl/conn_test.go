package nfnl

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// fakeLink is a fake kernel: answer turns each request into the datagrams
// the kernel would send back.
type fakeLink struct {
	answer func(req netlink.Message) [][]byte
	queue  [][]byte
	sent   []netlink.Message
}

func (f *fakeLink) send(b []byte) error {
	var m netlink.Message
	if err := m.UnmarshalBinary(b); err != nil {
		return err
	}
	f.sent = append(f.sent, m)
	f.queue = append(f.queue, f.answer(m)...)
	return nil
}

func (f *fakeLink) watch(ctx context.Context) func() { return func() {} }

func (f *fakeLink) recv(ctx context.Context, buf []byte, _ bool) (int, uint32, error) {
	if len(f.queue) == 0 {
		<-ctx.Done()
		return 0, 0, ctx.Err()
	}
	d := f.queue[0]
	f.queue = f.queue[1:]
	if len(d) > 4 && string(d[:4]) == "from" {
		// A datagram from another process: "from" and its port id.
		return copy(buf, d[8:]), binary.NativeEndian.Uint32(d[4:]), nil
	}
	return copy(buf, d), 0, nil
}

// from marks datagram d as sent by port id pid.
func from(pid uint32, d []byte) []byte {
	return append(binary.NativeEndian.AppendUint32([]byte("from"), pid), d...)
}

func (f *fakeLink) close() error                      { return nil }
func (f *fakeLink) setReadDeadline(time.Time) error   { return nil }
func (f *fakeLink) control(fn func(fd uintptr)) error { return errors.ErrUnsupported }

// fakeConn returns a Conn whose one socket is f.
func fakeConn(f *fakeLink) *Conn {
	return NewConn(nil, func() (*Socket, error) { return newSocket(f, 0), nil })
}

// msg marshals a netlink message from the kernel (port id 0 unless pid).
func msg(t *testing.T, typ netlink.HeaderType, flags netlink.HeaderFlags, seq, pid uint32, data []byte) []byte {
	t.Helper()
	b, err := netlink.Message{Header: netlink.Header{Length: uint32(16 + len(data)), Type: typ, Flags: flags, Sequence: seq, PID: pid}, Data: data}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ack marshals the kernel's answer to req with errno and an extended-ACK
// text.
func ack(t *testing.T, req netlink.Message, errno unix.Errno, text string) []byte {
	t.Helper()
	e := &Error{Errno: errno, Sequence: req.Header.Sequence, Request: req.Header, Capped: true, Message: text}
	b, err := e.Encode().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// object is a reply payload: an nfgenmsg and one u32 attribute of type 1.
func object(v uint32) []byte {
	b := Header{Family: unix.AF_INET, Version: Version0, ResourceID: 7}.Append(nil)
	b = binary.NativeEndian.AppendUint16(b, 8)
	b = binary.NativeEndian.AppendUint16(b, 1)
	return binary.BigEndian.AppendUint32(b, v)
}

// collect runs req on c and returns the attribute value of each reply.
func collect(c *Conn, ctx context.Context, req Req) ([]uint32, error) {
	var got []uint32
	err := c.Do(ctx, req, func(r *Reply) error {
		if r.Family != unix.AF_INET || r.ResourceID != 7 || len(r.Attrs) != 8 {
			return errors.New("bad reply header or attributes")
		}
		got = append(got, binary.BigEndian.Uint32(r.Attrs[4:]))
		return nil
	})
	return got, err
}

func TestDoACK(t *testing.T) {
	f := &fakeLink{}
	f.answer = func(req netlink.Message) [][]byte { return [][]byte{ack(t, req, 0, "")} }
	c := fakeConn(f)
	req := Req{Type: Type(SubsysCTNetlinkTimeout, 3), Flags: Acknowledge | Create, Family: unix.AF_INET6, ResourceID: 0x1234,
		Attrs: func(b []byte) []byte { return append(b, 4, 0, 9, 0) }}
	if err := c.Do(context.Background(), req, nil); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if len(f.sent) != 1 {
		t.Fatalf("sent %d messages, want 1", len(f.sent))
	}
	h := f.sent[0].Header
	if h.Type != 0x803 || h.Flags != Request|Acknowledge|Create || int(h.Length) != 16+4+4 {
		t.Errorf("request header %+v", h)
	}
	if diff := cmp.Diff([]byte{unix.AF_INET6, 0, 0x12, 0x34, 4, 0, 9, 0}, f.sent[0].Data); diff != "" {
		t.Errorf("request payload (-want +got):\n%s", diff)
	}
	// The socket went back to the pool and is reused with a new sequence.
	if err := c.Do(context.Background(), req, nil); err != nil {
		t.Fatalf("second Do: %v", err)
	}
	if f.sent[1].Header.Sequence != h.Sequence+1 {
		t.Errorf("second sequence %d, want %d", f.sent[1].Header.Sequence, h.Sequence+1)
	}
}

func TestDoExtendedACKError(t *testing.T) {
	f := &fakeLink{}
	f.answer = func(req netlink.Message) [][]byte {
		return [][]byte{ack(t, req, unix.ENOENT, "no such policy")}
	}
	err := fakeConn(f).Do(context.Background(), Req{Type: 0x801, Flags: Acknowledge}, nil)
	var oe *netlink.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("error %v (%T), want *netlink.OpError", err, err)
	}
	if oe.Message != "no such policy" || oe.Err != unix.ENOENT {
		t.Errorf("OpError %+v", oe)
	}
	if !errors.Is(err, os.ErrNotExist) || !errors.Is(err, unix.ENOENT) {
		t.Errorf("errors.Is(%v, os.ErrNotExist/ENOENT) is false", err)
	}
}

func TestDoDump(t *testing.T) {
	for _, tt := range []struct {
		name    string
		answer  func(t *testing.T, req netlink.Message) [][]byte
		want    []uint32
		wantErr error
	}{
		{
			name: "two datagrams",
			answer: func(t *testing.T, req netlink.Message) [][]byte {
				s := req.Header.Sequence
				one := append(msg(t, 0x800, netlink.Multi, s, 0, object(1)), msg(t, 0x800, netlink.Multi, s, 0, object(2))...)
				return [][]byte{one, append(msg(t, 0x800, netlink.Multi, s, 0, object(3)), msg(t, netlink.Done, netlink.Multi, s, 0, []byte{0, 0, 0, 0})...)}
			},
			want: []uint32{1, 2, 3},
		},
		{
			name: "interrupted",
			answer: func(t *testing.T, req netlink.Message) [][]byte {
				s := req.Header.Sequence
				return [][]byte{
					msg(t, 0x800, netlink.Multi, s, 0, object(1)),
					msg(t, 0x800, netlink.Multi|DumpInterrupted, s, 0, object(2)),
					msg(t, netlink.Done, netlink.Multi, s, 0, []byte{0, 0, 0, 0}),
				}
			},
			want:    []uint32{1, 2},
			wantErr: ErrDumpInterrupted,
		},
		{
			name: "wrong sequence skipped",
			answer: func(t *testing.T, req netlink.Message) [][]byte {
				s := req.Header.Sequence
				return [][]byte{
					msg(t, 0x800, netlink.Multi, s-1, 0, object(9)),
					msg(t, 0x800, netlink.Multi, s, 0, object(1)),
					msg(t, netlink.Done, netlink.Multi, s-1, 0, []byte{0, 0, 0, 0}),
					msg(t, netlink.Done, netlink.Multi, s, 0, []byte{0, 0, 0, 0}),
				}
			},
			want: []uint32{1},
		},
		{
			name: "not from the kernel skipped",
			answer: func(t *testing.T, req netlink.Message) [][]byte {
				s := req.Header.Sequence
				return [][]byte{
					from(4242, msg(t, 0x800, netlink.Multi, s, 4242, object(9))),
					msg(t, 0x800, netlink.Multi, s, 0, object(1)),
					from(4242, msg(t, netlink.Error, 0, s, 0, []byte{0xfe, 0xff, 0xff, 0xff})),
					msg(t, netlink.Done, netlink.Multi, s, 0, []byte{0, 0, 0, 0}),
				}
			},
			want: []uint32{1},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeLink{}
			f.answer = func(req netlink.Message) [][]byte { return tt.answer(t, req) }
			got, err := collect(fakeConn(f), context.Background(), Req{Type: 0x801, Flags: Dump})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("replies (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDoTruncated(t *testing.T) {
	for _, tt := range []struct {
		name string
		cut  func(b []byte) []byte
		want string
	}{
		{"short header", func(b []byte) []byte { return b[:10] }, "too short for a netlink header"},
		{"length beyond datagram", func(b []byte) []byte { return b[:len(b)-4] }, "out of range"},
		{"no nfgenmsg", func(b []byte) []byte {
			b = b[:18]
			binary.NativeEndian.PutUint32(b, 18)
			return b
		}, "nfgenmsg header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeLink{}
			f.answer = func(req netlink.Message) [][]byte {
				return [][]byte{tt.cut(msg(t, 0x800, netlink.Multi, req.Header.Sequence, 0, object(1)))}
			}
			c := fakeConn(f)
			_, err := collect(c, context.Background(), Req{Type: 0x801, Flags: Dump})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			// The socket was left mid-reply: it must not go back to the pool.
			if len(c.idle) != 0 {
				t.Errorf("%d idle sockets after an unfinished reply, want 0", len(c.idle))
			}
		})
	}
}

func TestDoCancelFake(t *testing.T) {
	f := &fakeLink{answer: func(netlink.Message) [][]byte { return nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := fakeConn(f).Do(ctx, Req{Type: 0x801}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
}

// kernelNS returns a new network namespace, or skips without root.
func kernelNS(t *testing.T) *nstest.NS {
	t.Helper()
	if os.Geteuid() != 0 {
		skipKernel(t, "needs root to create a network namespace")
	}
	return nstest.New(t)
}

func TestConnKernel(t *testing.T) {
	ns := kernelNS(t)
	// Dial duplicates the descriptor: closing a copy of ours right after
	// Dial must not matter.
	fd, err := unix.Dup(ns.FD())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(&Config{NetNS: fd})
	unix.Close(fd)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	ctx := context.Background()

	// A dump of the per-CPU conntrack statistics: one reply per CPU.
	n := 0
	err = c.Do(ctx, Req{Type: Type(SubsysCTNetlink, 4), Flags: Dump}, func(r *Reply) error {
		if r.Header.Type != Type(SubsysCTNetlink, 4) {
			t.Errorf("reply header %+v", r.Header)
		}
		n++
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("stats dump: %d replies, error %v", n, err)
	}

	// A get without a tuple: the kernel rejects it with an errno.
	err = c.Do(ctx, Req{Type: Type(SubsysCTNetlink, 1), Flags: Acknowledge}, nil)
	var oe *netlink.OpError
	if !errors.As(err, &oe) || oe.Err == nil {
		t.Fatalf("get without tuple: %v, want a *netlink.OpError", err)
	}

	// NLMSG_NOOP without ACK gets no answer, so the receive blocks until
	// the context is cancelled.
	ctx2, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err = c.Do(ctx2, Req{Type: netlink.Noop}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked receive: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}

	// The cancelled socket was closed; a new one, opened after our copy
	// of the descriptor was closed, must still be in the namespace: the
	// dump shows the one entry made there.
	ns.Run(t, "conntrack", "-I", "-p", "udp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "1000", "--dport", "53", "-t", "100")
	n = 0
	err = c.Do(ctx, Req{Type: Type(SubsysCTNetlink, 1), Flags: Dump, Family: unix.AF_INET}, func(*Reply) error { n++; return nil })
	if err != nil || n != 1 {
		t.Fatalf("dump after cancel: %d entries, error %v; want the namespace's 1", n, err)
	}
}

// echoLink answers every request with the same datagram, its sequence
// numbers patched to the request's, without allocating.
type echoLink struct{ reply, seq []byte }

func (e *echoLink) send(b []byte) error {
	e.seq = append(e.seq[:0], b[8:12]...)
	return nil
}
func (e *echoLink) watch(context.Context) func() { return func() {} }
func (e *echoLink) recv(_ context.Context, buf []byte, _ bool) (int, uint32, error) {
	for b := e.reply; len(b) >= 16; {
		copy(b[8:12], e.seq)
		b = b[(binary.NativeEndian.Uint32(b)+3)&^3:]
	}
	return copy(buf, e.reply), 0, nil
}
func (e *echoLink) close() error                      { return nil }
func (e *echoLink) setReadDeadline(time.Time) error   { return nil }
func (e *echoLink) control(fn func(fd uintptr)) error { return errors.ErrUnsupported }

func TestDoAllocs(t *testing.T) {
	e := &echoLink{}
	for range 3 {
		e.reply = append(e.reply, msg(t, 0x800, netlink.Multi, 0, 0, object(1))...)
	}
	e.reply = append(e.reply, msg(t, netlink.Done, netlink.Multi, 0, 0, []byte{0, 0, 0, 0})...)
	s := newSocket(e, 0)
	c := NewConn(nil, func() (*Socket, error) { return s, nil })
	n := 0
	fn := func(*Reply) error { n++; return nil }
	req := Req{Type: 0x801, Flags: Dump}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		if err := c.Do(ctx, req, fn); err != nil {
			t.Fatal(err)
		}
	})
	if n != 3*101 {
		t.Errorf("%d replies, want %d", n, 3*101)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
}

func TestConnConcurrentKernel(t *testing.T) {
	ns := kernelNS(t)
	c, err := Dial(&Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	ns.Run(t, "conntrack", "-I", "-p", "udp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "1000", "--dport", "53", "-t", "100")
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 20 {
				n := 0
				err := c.Do(context.Background(), Req{Type: Type(SubsysCTNetlink, 1), Flags: Dump, Family: unix.AF_INET}, func(*Reply) error { n++; return nil })
				if err == nil && n != 1 {
					err = errors.New("dump did not return the one entry")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := len(c.idle); n > c.cfg.MaxIdle {
		t.Errorf("%d idle sockets, more than MaxIdle %d", n, c.cfg.MaxIdle)
	}
}

// TestKernelSocketClosed checks that a receive on a closed socket, and one
// that Close interrupts, report net.ErrClosed.
func TestKernelSocketClosed(t *testing.T) {
	ns := kernelNS(t)
	s, err := DialSocket(&SocketConfig{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Receive(context.Background(), true)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("interrupted receive: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt a blocked receive")
	}
	if _, err := s.Receive(context.Background(), true); !errors.Is(err, net.ErrClosed) {
		t.Errorf("receive after Close: %v, want net.ErrClosed", err)
	}
}

// TestKernelSendAllocs checks that writing a message on a real socket
// allocates nothing: senders such as nfqueue's verdicts write once per
// packet.
func TestKernelSendAllocs(t *testing.T) {
	ns := kernelNS(t)
	s, err := DialSocket(&SocketConfig{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// NLMSG_NOOP without NLM_F_ACK: the kernel reads it and answers nothing.
	noop := make([]byte, 16)
	binary.NativeEndian.PutUint32(noop, 16)
	binary.NativeEndian.PutUint16(noop[4:], 1)
	allocs := testing.AllocsPerRun(100, func() {
		if err := s.Send(noop); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per send, want 0", allocs)
	}
}
