package nfnl

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// requireKernelEnv names the variable that turns a skipped kernel test into a
// failure, for CI machines that must run them.
const requireKernelEnv = "CTSPEC_REQUIRE_KERNEL"

// skipKernel skips t with the reason, or fails it when CTSPEC_REQUIRE_KERNEL=1.
func skipKernel(t *testing.T, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if os.Getenv(requireKernelEnv) == "1" {
		t.Fatalf("%s (%s=1 makes this a failure)", reason, requireKernelEnv)
	}
	t.Skip(reason)
}

// netfilterSocket returns a bound NETLINK_NETFILTER socket in a new network
// namespace of its own, closed when t ends.
func netfilterSocket(t *testing.T) int {
	t.Helper()
	nstest.RequireRoot(t)

	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread leaves the test's namespace and is never unlocked, so
		// the runtime ends it when this goroutine returns and nothing else
		// ever runs in the new namespace. The socket keeps the namespace
		// alive until it is closed.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{-1, fmt.Errorf("unshare(CLONE_NEWNET): %w", err)}
			return
		}
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			ch <- result{-1, fmt.Errorf("socket(NETLINK_NETFILTER): %w", err)}
			return
		}
		ch <- result{fd, nil}
	}()
	r := <-ch
	switch {
	case errors.Is(r.err, unix.EPERM):
		skipKernel(t, "cannot create a network namespace: %v", r.err)
	case errors.Is(r.err, unix.EPROTONOSUPPORT):
		skipKernel(t, "kernel without nfnetlink: %v", r.err)
	case r.err != nil:
		t.Fatal(r.err)
	}
	t.Cleanup(func() { _ = unix.Close(r.fd) })

	if err := unix.Bind(r.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := unix.SetsockoptTimeval(r.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5}); err != nil {
		t.Fatalf("setting SO_RCVTIMEO: %v", err)
	}
	return r.fd
}

// send writes msgs to the kernel in one datagram.
func send(t *testing.T, fd int, msgs ...netlink.Message) {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		mb, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("marshalling %+v: %v", m.Header, err)
		}
		b = append(b, mb...)
	}
	if err := unix.Sendto(fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatalf("sendto: %v", err)
	}
}

// receive reads one datagram and splits it into messages.
func receive(t *testing.T, fd int) []netlink.Message {
	t.Helper()
	buf := make([]byte, 1<<16)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		t.Fatalf("recvfrom: %v", err)
	}
	var msgs []netlink.Message
	for b := buf[:n]; len(b) >= nlmsgHeaderLen; {
		m := parseMessage(b)
		msgs = append(msgs, m)
		l := align(int(m.Header.Length))
		if l < nlmsgHeaderLen || l > len(b) {
			break
		}
		b = b[l:]
	}
	return msgs
}

// receiveError reads one datagram that must hold exactly one NLMSG_ERROR and
// decodes it.
func receiveError(t *testing.T, fd int) *Error {
	t.Helper()
	msgs := receive(t, fd)
	if len(msgs) != 1 {
		t.Fatalf("want one reply, got %d: %+v", len(msgs), msgs)
	}
	e, err := DecodeError(msgs[0])
	if err != nil {
		t.Fatalf("decoding the kernel's reply: %v", err)
	}
	t.Logf("kernel replied: seq %d: %v", e.Sequence, e)
	return e
}

func TestKernelErrorReply(t *testing.T) {
	tests := []struct {
		name   string
		capAck bool
	}{
		{name: "request echoed"},
		{name: "NETLINK_CAP_ACK", capAck: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := netfilterSocket(t)
			if tt.capAck {
				if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1); err != nil {
					skipKernel(t, "kernel without NETLINK_CAP_ACK: %v", err)
				}
			}
			// Extended acknowledgements are optional here: older kernels
			// refuse the option, and the reply decodes either way.
			_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)

			// Message type 0xff is beyond any subsystem's messages.
			payload := Header{Family: unix.AF_INET, Version: Version0}.Append(nil)
			req := netlink.Header{
				Length:   uint32(nlmsgHeaderLen + len(payload)),
				Type:     Type(SubsysCTNetlink, 0xff),
				Flags:    Request | Acknowledge,
				Sequence: 0x1234,
			}
			send(t, fd, netlink.Message{Header: req, Data: payload})

			e := receiveError(t, fd)
			// nfnetlink_rcv_msg finds no callback for the message type
			// (nfnetlink_find_client returns NULL) and returns -EINVAL
			// without an extended-ACK message or offset.
			want := &Error{
				Errno:    unix.EINVAL,
				Sequence: req.Sequence,
				Request:  req,
				Capped:   tt.capAck,
			}
			if !tt.capAck {
				want.Payload = payload
			}
			if diff := cmp.Diff(want, e); diff != "" {
				t.Fatalf("unexpected Error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKernelBatch(t *testing.T) {
	t.Run("subsystem without batches", func(t *testing.T) {
		fd := netfilterSocket(t)
		b := NewBatch(SubsysCTNetlink)
		b.Add(netlink.Message{
			Header: netlink.Header{Type: Type(SubsysCTNetlink, 0xff)},
			Data:   Header{Family: unix.AF_INET, Version: Version0}.Append(nil),
		})
		const first = 500
		send(t, fd, b.Messages(first)...)

		// The kernel answers the begin marker and drops the rest.
		e := receiveError(t, fd)
		if e.Errno == 0 {
			t.Fatal("kernel accepted a batch for a subsystem without batch support")
		}
		if diff := cmp.Diff(uint32(first), e.Sequence); diff != "" {
			t.Fatalf("unexpected sequence number (-want +got):\n%s", diff)
		}
		if i, ok := b.Index(e.Sequence); ok {
			t.Fatalf("Index mapped the begin marker to request %d", i)
		}
	})

	t.Run("errors map to requests", func(t *testing.T) {
		fd := netfilterSocket(t)
		b := NewBatch(SubsysNFTables)
		for range 2 {
			// Message type 0xff is no nf_tables message, so the
			// transaction fails and changes nothing.
			b.Add(netlink.Message{
				Header: netlink.Header{Type: Type(SubsysNFTables, 0xff)},
				Data:   Header{Family: unix.AF_INET, Version: Version0}.Append(nil),
			})
		}
		const first = 1000
		send(t, fd, b.Messages(first)...)

		var got []int
		for range b.Len() {
			e := receiveError(t, fd)
			if e.Sequence == first && e.Errno == unix.EOPNOTSUPP {
				skipKernel(t, "kernel without nf_tables batches: %v", e)
			}
			if e.Errno == 0 {
				t.Fatalf("kernel accepted request with sequence number %d", e.Sequence)
			}
			i, ok := b.Index(e.Sequence)
			if !ok {
				t.Fatalf("reply with sequence number %d answers no request", e.Sequence)
			}
			got = append(got, i)
		}
		if diff := cmp.Diff([]int{0, 1}, got); diff != "" {
			t.Fatalf("unexpected requests (-want +got):\n%s", diff)
		}
	})
}
