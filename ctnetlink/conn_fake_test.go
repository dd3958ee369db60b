package ctnetlink

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/nfnl"
)

// A fake kernel answers a Conn's requests without a kernel, in the manner
// of mdlayher/netlink's nltest: each socket of the Conn is one end of a
// SOCK_SEQPACKET socket pair, and a goroutine serving the other end hands
// every datagram of requests to a fakeFunc and writes its replies back as
// one datagram.

// fakeFunc answers the requests of one datagram. A reply whose Sequence is
// 0 gets the last request's, and one whose PID is 0 gets fakePort, as the
// kernel fills them in for unicast replies; a non-zero Length is written as
// is, so that a test can send a message that claims more bytes than it
// has. Returning an error closes the fake's end of the socket.
type fakeFunc func(reqs []netlink.Message) ([]netlink.Message, error)

// fakePort is the port id of every fake socket.
const fakePort = 0x7a11

// fakeKernel counts the sockets a Conn opened.
type fakeKernel struct {
	mu    sync.Mutex
	socks int
	wg    sync.WaitGroup
}

func (k *fakeKernel) dials() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.socks
}

// dialFake returns a Conn whose sockets talk to fn.
func dialFake(t *testing.T, fn fakeFunc) (*Conn, *fakeKernel) {
	t.Helper()
	k := &fakeKernel{}
	c := &Conn{}
	c.nl = nfnl.NewConn(nil, func() (*nfnl.Socket, error) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		if err := unix.SetNonblock(fds[0], true); err != nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return nil, err
		}
		f := os.NewFile(uintptr(fds[0]), "fake-netlink")
		s, err := nfnl.NewFileSocket(f, fakePort)
		if err != nil {
			f.Close()
			unix.Close(fds[1])
			return nil, err
		}
		k.mu.Lock()
		k.socks++
		k.mu.Unlock()
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			serveFake(fds[1], fn)
		}()
		return s, nil
	})
	t.Cleanup(func() {
		c.Close()
		k.wg.Wait()
	})
	return c, k
}

// serveFake answers the datagrams that arrive on fd until the other end
// closes or fn fails.
func serveFake(fd int, fn fakeFunc) {
	defer unix.Close(fd)
	buf := make([]byte, 1<<20)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil || n == 0 {
			return
		}
		var reqs []netlink.Message
		for b := buf[:n]; len(b) >= 16; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < 16 || l > len(b) {
				return
			}
			var m netlink.Message
			if err := m.UnmarshalBinary(b[:l]); err != nil {
				return
			}
			reqs = append(reqs, m)
			b = b[min((l+3)&^3, len(b)):]
		}
		replies, err := fn(reqs)
		if err != nil {
			return
		}
		if len(replies) == 0 {
			continue
		}
		var out []byte
		for _, m := range replies {
			h := m.Header
			if h.Sequence == 0 && len(reqs) > 0 {
				h.Sequence = reqs[len(reqs)-1].Header.Sequence
			}
			if h.PID == 0 {
				h.PID = fakePort
			}
			if h.Length == 0 {
				h.Length = uint32(16 + len(m.Data))
			}
			out = binary.NativeEndian.AppendUint32(out, h.Length)
			out = binary.NativeEndian.AppendUint16(out, uint16(h.Type))
			out = binary.NativeEndian.AppendUint16(out, uint16(h.Flags))
			out = binary.NativeEndian.AppendUint32(out, h.Sequence)
			out = binary.NativeEndian.AppendUint32(out, h.PID)
			out = append(out, m.Data...)
			for len(out)%4 != 0 {
				out = append(out, 0)
			}
		}
		if _, err := unix.Write(fd, out); err != nil {
			return
		}
	}
}

// checkRequest wraps fn with a check of every request's message type and
// flags; a mismatch fails the test and closes the socket.
func checkRequest(t *testing.T, typ MsgType, flags netlink.HeaderFlags, fn fakeFunc) fakeFunc {
	return func(reqs []netlink.Message) ([]netlink.Message, error) {
		for _, r := range reqs {
			if r.Header.Type != netlink.HeaderType(typ) || r.Header.Flags != flags|netlink.Request {
				t.Errorf("request type %#x flags %#x, want type %#x flags %#x", uint16(r.Header.Type), uint16(r.Header.Flags), uint16(typ), uint16(flags|netlink.Request))
				return nil, errors.New("unexpected request")
			}
		}
		return fn(reqs)
	}
}

// ackMsg is the kernel's NLMSG_ERROR for req with errno (0 for an ACK),
// capped, with an extended ACK text and offset when msg is not empty.
func ackMsg(req netlink.Message, errno unix.Errno, msg string, off uint32) netlink.Message {
	b := binary.NativeEndian.AppendUint32(nil, uint32(-int32(errno)))
	b = binary.NativeEndian.AppendUint32(b, req.Header.Length)
	b = binary.NativeEndian.AppendUint16(b, uint16(req.Header.Type))
	b = binary.NativeEndian.AppendUint16(b, uint16(req.Header.Flags))
	b = binary.NativeEndian.AppendUint32(b, req.Header.Sequence)
	b = binary.NativeEndian.AppendUint32(b, req.Header.PID)
	flags := netlink.HeaderFlags(0x100) // NLM_F_CAPPED
	if msg != "" {
		flags |= 0x200 // NLM_F_ACK_TLVS
		s := append([]byte(msg), 0)
		b = binary.NativeEndian.AppendUint16(b, uint16(4+len(s)))
		b = binary.NativeEndian.AppendUint16(b, 1) // NLMSGERR_ATTR_MSG
		b = append(b, s...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		b = binary.NativeEndian.AppendUint16(b, 8)
		b = binary.NativeEndian.AppendUint16(b, 2) // NLMSGERR_ATTR_OFFS
		b = binary.NativeEndian.AppendUint32(b, off)
	}
	return netlink.Message{Header: netlink.Header{Type: netlink.Error, Flags: flags}, Data: b}
}

// doneMsg is the NLMSG_DONE that ends a dump.
func doneMsg(flags netlink.HeaderFlags) netlink.Message {
	return netlink.Message{Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi | flags}, Data: make([]byte, 4)}
}

// flowMsg is one flow of a dump reply.
func flowMsg(f *Flow, flags netlink.HeaderFlags) netlink.Message {
	b := nfnl.Header{Family: unix.AF_INET, Version: nfnl.Version0}.Append(nil)
	b = f.AppendAttributes(b)
	return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(MsgNew), Flags: flags}, Data: b}
}

// dumpFlows answers a dump with the flows of port 1..n, then NLMSG_DONE.
func dumpFlows(n int, doneFlags netlink.HeaderFlags) fakeFunc {
	return func(reqs []netlink.Message) ([]netlink.Message, error) {
		var out []netlink.Message
		for i := 1; i <= n; i++ {
			out = append(out, flowMsg(testFlow("192.0.2.1", "192.0.2.2", uint16(i), 80), netlink.Multi))
		}
		return append(out, doneMsg(doneFlags)), nil
	}
}

// sports returns the source ports of what a dump yields and its error.
func sports(seq func(yield func(*Flow, error) bool)) ([]uint16, error) {
	var ports []uint16
	for f, err := range seq {
		if err != nil {
			return ports, err
		}
		ports = append(ports, f.TupleOrig.Proto.SrcPort)
	}
	return ports, nil
}

func fakeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFakeAck(t *testing.T) {
	var got []netlink.Message
	c, _ := dialFake(t, checkRequest(t, MsgNew, netlink.Acknowledge|netlink.Create|netlink.Excl, func(reqs []netlink.Message) ([]netlink.Message, error) {
		got = append(got, reqs...)
		return []netlink.Message{ackMsg(reqs[0], 0, "", 0)}, nil
	}))
	f := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)
	if err := c.Create(fakeCtx(t), f); err != nil {
		t.Fatalf("create: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	// The request carries the nfgenmsg of the flow's family and the flow.
	if d := got[0].Data; len(d) < 4 || d[0] != unix.AF_INET || d[1] != nfnl.Version0 {
		t.Fatalf("nfgenmsg % x", d[:min(4, len(d))])
	}
	var back Flow
	if err := back.UnmarshalAttributes(got[0].Data[4:]); err != nil {
		t.Fatal(err)
	}
	if back.TupleOrig.Src() != netip.MustParseAddr("192.0.2.1") || back.TupleOrig.Proto.SrcPort != 1000 || back.Timeout != 120 {
		t.Fatalf("request carries %+v", back.TupleOrig)
	}
}

// findAttr returns the offset, from the start of the netlink header, of
// the first top-level attribute of type typ in request m.
func findAttr(m netlink.Message, typ uint16) uint32 {
	b := m.Data[4:]
	off := 16 + 4
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if binary.NativeEndian.Uint16(b[2:])&0x3fff == typ {
			return uint32(off)
		}
		n := (l + 3) &^ 3
		if l < 4 || n > len(b) {
			break
		}
		b, off = b[n:], off+n
	}
	return 0
}

func TestFakeErrorExtAck(t *testing.T) {
	const text = "Attribute failed policy validation"
	const ctaMark = 8 // CTA_MARK
	c, _ := dialFake(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		off := findAttr(reqs[0], ctaMark)
		if off == 0 {
			return nil, errors.New("request without CTA_MARK")
		}
		return []netlink.Message{ackMsg(reqs[0], unix.ERANGE, text, off)}, nil
	})
	f := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)
	f.SetMark(3)
	err := c.Update(fakeCtx(t), f)
	var ce *Error
	var oe *netlink.OpError
	if !errors.As(err, &ce) || !errors.As(err, &oe) {
		t.Fatalf("got %v, want *Error wrapping *netlink.OpError", err)
	}
	if !errors.Is(err, unix.ERANGE) || ce.Op != "update" || oe.Message != text || ce.Attr != "mark" {
		t.Fatalf("got op %q attr %q message %q (%v), want update, mark, %q, ERANGE", ce.Op, ce.Attr, oe.Message, err, text)
	}
	if !strings.Contains(err.Error(), "(at attribute mark)") {
		t.Fatalf("error text %q does not name the attribute", err)
	}
}

func TestFakeMultipartWithoutDone(t *testing.T) {
	c, k := dialFake(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		return []netlink.Message{flowMsg(testFlow("192.0.2.1", "192.0.2.2", 1, 80), netlink.Multi)}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	ports, err := sports(c.Dump(ctx, nil))
	if !errors.Is(err, context.DeadlineExceeded) || len(ports) != 1 {
		t.Fatalf("got %v and %v, want one flow then context.DeadlineExceeded", ports, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("dump ended after %v", d)
	}
	// The socket still holds the rest of a reply: it must not be reused.
	if n := c.nl.Idle(); n != 0 {
		t.Fatalf("%d sockets back in the pool after an unfinished reply", n)
	}
	before := k.dials()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	sports(c.Dump(ctx2, nil))
	if k.dials() != before+1 {
		t.Fatalf("the next dump opened %d sockets, want 1", k.dials()-before)
	}
}

func TestFakeDumpInterrupted(t *testing.T) {
	c, _ := dialFake(t, checkRequest(t, MsgGet, netlink.Dump, dumpFlows(3, netlink.DumpInterrupted)))
	ports, err := sports(c.Dump(fakeCtx(t), nil))
	if len(ports) != 3 || !errors.Is(err, ErrDumpInterrupted) {
		t.Fatalf("got %v, %v; want 3 flows then ErrDumpInterrupted", ports, err)
	}
	// List repeats an interrupted dump and reports the last attempt.
	flows, err := c.List(fakeCtx(t), &Selector{Family: unix.AF_INET})
	if len(flows) != 3 || !errors.Is(err, ErrDumpInterrupted) {
		t.Fatalf("list: %d flows, %v", len(flows), err)
	}
}

func TestFakeWrongSequence(t *testing.T) {
	c, _ := dialFake(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		stale := flowMsg(testFlow("192.0.2.9", "192.0.2.2", 9, 80), netlink.Multi)
		stale.Header.Sequence = reqs[0].Header.Sequence + 1000
		rest, _ := dumpFlows(2, 0)(reqs)
		return append([]netlink.Message{stale}, rest...), nil
	})
	ports, err := sports(c.Dump(fakeCtx(t), nil))
	if err != nil || len(ports) != 2 || ports[0] != 1 || ports[1] != 2 {
		t.Fatalf("got %v, %v; want ports [1 2]", ports, err)
	}
}

func TestFakeForeignPort(t *testing.T) {
	// A message that names another sender is not the kernel's answer,
	// whatever its sequence number.
	c, _ := dialFake(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		forged := flowMsg(testFlow("192.0.2.66", "192.0.2.2", 66, 80), netlink.Multi)
		forged.Header.PID = 4242
		forgedErr := ackMsg(reqs[0], unix.EPERM, "", 0)
		forgedErr.Header.PID = 4242
		rest, _ := dumpFlows(2, 0)(reqs)
		return append([]netlink.Message{forged, forgedErr}, rest...), nil
	})
	ports, err := sports(c.Dump(fakeCtx(t), nil))
	if err != nil || len(ports) != 2 || ports[0] != 1 || ports[1] != 2 {
		t.Fatalf("got %v, %v; want ports [1 2]", ports, err)
	}
	// The same for a request answered by an ACK.
	c2, _ := dialFake(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		forged := ackMsg(reqs[0], unix.ENOENT, "", 0)
		forged.Header.PID = 4242
		return []netlink.Message{forged, ackMsg(reqs[0], 0, "", 0)}, nil
	})
	if err := c2.Delete(fakeCtx(t), testFlow("192.0.2.1", "192.0.2.2", 1, 80)); err != nil {
		t.Fatalf("delete: %v", err)
	}
}

func TestFakeTruncated(t *testing.T) {
	tests := []struct {
		name  string
		reply func(netlink.Message) []netlink.Message
	}{
		{"length beyond the datagram", func(req netlink.Message) []netlink.Message {
			m := flowMsg(testFlow("192.0.2.1", "192.0.2.2", 1, 80), netlink.Multi)
			m.Header.Length = uint32(16 + len(m.Data) + 100)
			return []netlink.Message{m}
		}},
		{"length below the header", func(req netlink.Message) []netlink.Message {
			m := flowMsg(testFlow("192.0.2.1", "192.0.2.2", 1, 80), netlink.Multi)
			m.Header.Length = 8
			return []netlink.Message{m}
		}},
		{"no nfgenmsg", func(req netlink.Message) []netlink.Message {
			return []netlink.Message{{Header: netlink.Header{Type: netlink.HeaderType(MsgNew), Flags: netlink.Multi}, Data: []byte{2, 0}}}
		}},
		{"attribute beyond the message", func(req netlink.Message) []netlink.Message {
			m := flowMsg(testFlow("192.0.2.1", "192.0.2.2", 1, 80), netlink.Multi)
			binary.NativeEndian.PutUint16(m.Data[4:], 200)
			return []netlink.Message{m}
		}},
		{"error without errno", func(req netlink.Message) []netlink.Message {
			return []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: []byte{1}}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := dialFake(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
				return tt.reply(reqs[0]), nil
			})
			ports, err := sports(c.Dump(fakeCtx(t), nil))
			var ce *Error
			if !errors.As(err, &ce) || ce.Op != "dump" || len(ports) != 0 {
				t.Fatalf("got %v, %v; want no flow and a dump *Error", ports, err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("dump waited for its deadline: %v", err)
			}
			t.Logf("%v", err)
		})
	}
}

// TestFakeCancelMidway cancels calls while the kernel has not answered:
// each returns context.Canceled, and its socket is not reused.
func TestFakeCancelMidway(t *testing.T) {
	silent := func(reqs []netlink.Message) ([]netlink.Message, error) { return nil, nil }
	tests := []struct {
		name string
		call func(context.Context, *Conn) error
	}{
		{"get", func(ctx context.Context, c *Conn) error {
			_, err := c.Get(ctx, testFlow("192.0.2.1", "192.0.2.2", 1, 80))
			return err
		}},
		{"create", func(ctx context.Context, c *Conn) error {
			return c.Create(ctx, testFlow("192.0.2.1", "192.0.2.2", 1, 80))
		}},
		{"create-many", func(ctx context.Context, c *Conn) error { _, err := c.CreateMany(ctx, manyFlows(10)); return err }},
		{"delete-many", func(ctx context.Context, c *Conn) error { _, err := c.DeleteMany(ctx, manyFlows(10)); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, k := dialFake(t, silent)
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			start := time.Now()
			err := tt.call(ctx, c)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("returned after %v", d)
			}
			if c.nl.Idle() != 0 || k.dials() != 1 {
				t.Fatalf("%d idle sockets after %d dials; the abandoned socket must be closed", c.nl.Idle(), k.dials())
			}
		})
	}
}

// TestFakeCancelBulkWindow cancels a bulk call after the kernel answered its
// first window: the result counts that window, and the call stops.
func TestFakeCancelBulkWindow(t *testing.T) {
	for _, op := range []string{"create", "delete"} {
		t.Run(op, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			windows, first := 0, 0
			c, _ := dialFake(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
				mu.Lock()
				defer mu.Unlock()
				windows++
				if windows > 1 {
					cancel()
					return nil, nil
				}
				first = len(reqs)
				// Only the last request of a window asks for an ACK.
				return []netlink.Message{ackMsg(reqs[len(reqs)-1], 0, "", 0)}, nil
			})
			flows := manyFlows(3000)
			var res BulkResult
			var err error
			if op == "create" {
				res, err = c.CreateMany(ctx, flows)
			} else {
				res, err = c.DeleteMany(ctx, flows)
			}
			mu.Lock()
			defer mu.Unlock()
			if !errors.Is(err, context.Canceled) || windows != 2 || first == 0 || first >= len(flows) || res.Done != first {
				t.Fatalf("got %+v, %v after %d windows (first of %d); want Done %d and context.Canceled", res, err, windows, first, first)
			}
		})
	}
}

// appendRequest appends an nlmsghdr and nfgenmsg for a request whose
// attributes attrs appends.
func appendRequest(b []byte, typ MsgType, flags netlink.HeaderFlags, seq uint32, family uint8, attrs func([]byte) []byte) []byte {
	return nfnl.AppendRequest(b, &nfnl.Req{Type: netlink.HeaderType(typ), Flags: flags, Family: family, Attrs: attrs}, seq)
}
