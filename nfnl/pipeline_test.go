package nfnl

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// filePort is the port id of the sockets of fileSocket.
const filePort = 0x7a11

// fileSocket returns a Socket of NewFileSocket whose peer, a fake kernel,
// hands the requests of every datagram to serve and writes back the
// datagram serve returns, if any.
func fileSocket(t *testing.T, serve func(reqs []netlink.Message) []byte) *Socket {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	s, err := NewFileSocket(os.NewFile(uintptr(fds[0]), "fake-netlink"), filePort)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer unix.Close(fds[1])
		buf := make([]byte, 1<<20)
		for {
			n, err := unix.Read(fds[1], buf)
			if err != nil || n == 0 {
				return
			}
			var reqs []netlink.Message
			for b := buf[:n]; len(b) > 0; {
				h, data, rest, err := NextMessage(b)
				if err != nil {
					return
				}
				reqs = append(reqs, netlink.Message{Header: h, Data: append([]byte(nil), data...)})
				b = rest
			}
			if out := serve(reqs); out != nil {
				if _, err := unix.Write(fds[1], out); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		s.Close()
		wg.Wait()
	})
	return s
}

// answer marshals the kernel's answer to req with errno, sent to port pid.
func answer(t *testing.T, req netlink.Message, errno unix.Errno, pid uint32) []byte {
	t.Helper()
	m := (&Error{Errno: errno, Sequence: req.Header.Sequence, Request: req.Header, Capped: true}).Encode()
	m.Header.PID = pid
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPipelineRun sends a window of five requests to a fake kernel that
// fails requests 1 and 3 and acknowledges the last, and slips in answers
// that must be ignored: one from another port, one of a sequence number
// before the window.
func TestPipelineRun(t *testing.T) {
	var flags []netlink.HeaderFlags
	s := fileSocket(t, func(reqs []netlink.Message) []byte {
		var out []byte
		for i, r := range reqs {
			flags = append(flags, r.Header.Flags)
			id := binary.BigEndian.Uint16(r.Data[2:])
			switch {
			case id == 1 || id == 3:
				out = append(out, answer(t, r, unix.EEXIST, filePort)...)
			case id == 2:
				out = append(out, answer(t, r, unix.ENOENT, 4242)...)
				early := r
				early.Header.Sequence = reqs[0].Header.Sequence - 1
				out = append(out, answer(t, early, unix.EPERM, filePort)...)
			case i == len(reqs)-1:
				out = append(out, answer(t, r, 0, filePort)...)
			}
		}
		return out
	})
	p, err := NewPipeline(s)
	if err != nil {
		t.Fatal(err)
	}
	if p.Window < 16 {
		t.Errorf("window %d, want at least 16", p.Window)
	}
	type result struct {
		Index int
		Errno unix.Errno
		ID    uint16
	}
	var got []result
	ctx := context.Background()
	n, err := p.Run(ctx, 5, func(i int, r *Req) {
		*r = Req{Type: 0x100, Family: unix.AF_INET, ResourceID: uint16(i)}
	}, func(i int, e *Error, req []byte) {
		var id uint16
		if req != nil {
			_, data, _, err := NextMessage(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			id = binary.BigEndian.Uint16(data[2:])
		}
		got = append(got, result{i, e.Errno, id})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("sent %d requests, want 5", n)
	}
	want := []result{{1, unix.EEXIST, 1}, {3, unix.EEXIST, 3}, {4, 0, 4}, {-1, 0, 0}, {-1, 0, 0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	wantFlags := []netlink.HeaderFlags{Request, Request, Request, Request, Request | Acknowledge}
	if diff := cmp.Diff(wantFlags, flags); diff != "" {
		t.Errorf("request flags (-want +got):\n%s", diff)
	}
	if s.dirty {
		t.Error("socket still marked dirty after a whole window")
	}
}

// TestPipelineCancel checks that cancelling ctx unblocks a window whose
// answer never comes, and that the socket is then not reusable.
func TestPipelineCancel(t *testing.T) {
	s := fileSocket(t, func([]netlink.Message) []byte { return nil })
	p, err := NewPipeline(s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := s.Watch(ctx)
	defer stop()
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = p.Run(ctx, 3, func(i int, r *Req) { *r = Req{Type: 0x100} }, func(int, *Error, []byte) {
		t.Error("an answer without a kernel")
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if !s.dirty {
		t.Error("socket not marked dirty after an unfinished window")
	}
}

// TestRequestForeignPID checks that replies whose nlmsg_pid is neither 0
// nor the socket's port id are skipped, even when the datagram's sender
// looks like the kernel.
func TestRequestForeignPID(t *testing.T) {
	s := fileSocket(t, func(reqs []netlink.Message) []byte {
		r := reqs[0]
		var out []byte
		for _, m := range []struct {
			pid uint32
			v   uint32
		}{{4242, 9}, {filePort, 1}, {0, 2}} {
			b, err := netlink.Message{Header: netlink.Header{Length: 16 + 12, Type: 0x100, Flags: netlink.Multi, Sequence: r.Header.Sequence, PID: m.pid}, Data: object(m.v)}.MarshalBinary()
			if err != nil {
				t.Error(err)
			}
			out = append(out, b...)
		}
		out = append(out, answer(t, r, unix.EPERM, 4242)...)
		done, err := netlink.Message{Header: netlink.Header{Length: 16 + 4, Type: netlink.Done, Flags: netlink.Multi, Sequence: r.Header.Sequence, PID: filePort}, Data: []byte{0, 0, 0, 0}}.MarshalBinary()
		if err != nil {
			t.Error(err)
		}
		return append(out, done...)
	})
	var got []uint32
	err := s.Request(context.Background(), Req{Type: 0x101, Flags: Dump}, func(r *Reply) error {
		got = append(got, binary.BigEndian.Uint32(r.Attrs[4:]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint32{1, 2}, got); diff != "" {
		t.Errorf("replies (-want +got):\n%s", diff)
	}
}

// TestReceiveNonBlocking checks that Receive without blocking reports an
// empty queue as EAGAIN.
func TestReceiveNonBlocking(t *testing.T) {
	s := fileSocket(t, func([]netlink.Message) []byte { return nil })
	if _, err := s.Receive(context.Background(), false); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("error %v, want EAGAIN", err)
	}
}
