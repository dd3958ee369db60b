package nfnl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// SocketConfig configures a Socket. A nil *SocketConfig means all defaults.
type SocketConfig struct {
	// NetNS is a file descriptor of the network namespace to open the
	// socket in. The default, 0, is the namespace of the calling thread.
	NetNS int
	// ReadBuffer is the receive buffer size in bytes; 0 keeps the kernel's
	// default. See Socket.SetReadBuffer.
	ReadBuffer int
	// Groups is a bit mask of multicast groups to join at once, group g
	// being bit g-1.
	Groups uint32
}

// Socket is one NETLINK_NETFILTER socket with its buffers: the transport
// under Conn, and the socket of multicast listeners. It is connected to the
// kernel, so the kernel refuses unicasts of other sockets to it, and it
// decodes only messages whose sender is the kernel.
//
// A Socket is not safe for concurrent use, except that Close may be called
// at any time to end a pending receive.
type Socket struct {
	l    link
	nl   *netlink.Conn // nil for a fake kernel's socket
	port uint32        // the socket's port id, the nlmsg_pid of unicast replies
	buf  []byte
	out  []byte
	seq  uint32
	rep  Reply

	// dirty marks a socket whose last request ended before its reply did:
	// Conn closes it rather than reuse it.
	dirty bool

	// closed is set by Close, so that a receive it interrupts reports
	// net.ErrClosed.
	closed atomic.Bool
}

// recvBufSize holds the largest datagram the kernel sends on a netlink
// socket (dumps fill skbs of up to 32 KiB) with room to spare.
const recvBufSize = 64 << 10

// RecvBufSize is the size of a Socket's receive buffer: no datagram of the
// kernel is larger.
const RecvBufSize = recvBufSize

func newSocket(l link, port uint32) *Socket {
	return &Socket{l: l, port: port, buf: make([]byte, recvBufSize)}
}

// DialSocket opens a Socket.
func DialSocket(cfg *SocketConfig) (*Socket, error) {
	var c SocketConfig
	if cfg != nil {
		c = *cfg
	}
	l, port, err := dialNetlink(c.NetNS, c.Groups)
	if err != nil {
		return nil, err
	}
	s := newSocket(l, port)
	s.nl = l.nl
	// Error messages name the failing attribute when the kernel can.
	_ = l.nl.SetOption(netlink.ExtendedAcknowledge, true)
	if c.ReadBuffer > 0 {
		if err := s.SetReadBuffer(c.ReadBuffer); err != nil {
			l.close()
			return nil, err
		}
	}
	return s, nil
}

// NewFileSocket returns a Socket that reads and writes f, a non-blocking
// SOCK_SEQPACKET socket whose peer plays the kernel, as in fake-kernel
// tests. Every datagram counts as the kernel's; port is the port id the
// peer writes into the nlmsg_pid of its replies.
func NewFileSocket(f *os.File, port uint32) (*Socket, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	l := &fileLink{f: f}
	l.init(raw, func(fd uintptr) { l.n, l.rerr = unix.Read(int(fd), l.buf) })
	return newSocket(l, port), nil
}

// Close closes the socket. A pending receive returns with an error.
func (s *Socket) Close() error {
	s.closed.Store(true)
	return s.l.close()
}

// Port returns the socket's netlink port id.
func (s *Socket) Port() uint32 { return s.port }

// Seq returns the sequence number of the last request sent.
func (s *Socket) Seq() uint32 { return s.seq }

// Sent returns the bytes of the last request or window of requests sent.
// It aliases the send buffer and is valid until the next send.
func (s *Socket) Sent() []byte { return s.out }

// Discard marks the socket as holding an unfinished reply, so that
// Conn.Put closes it rather than reuse it.
func (s *Socket) Discard() { s.dirty = true }

// Watch makes the end of ctx, and its deadline, unblock a pending receive
// on s. The returned func undoes it; it must be called before s is used
// with another context.
func (s *Socket) Watch(ctx context.Context) (stop func()) { return s.l.watch(ctx) }

// SetReadDeadline sets the deadline of receives, as net.Conn does.
func (s *Socket) SetReadDeadline(t time.Time) error { return s.l.setReadDeadline(t) }

// Send writes one or more complete netlink messages in one datagram.
func (s *Socket) Send(b []byte) error { return s.l.send(b) }

// Receive reads the next datagram of the kernel and returns it; it aliases
// the socket's buffer and is valid until the next receive. Datagrams of
// other senders are skipped. With block false it returns unix.EAGAIN when
// none is queued. An overrun of the receive buffer is returned as
// unix.ENOBUFS, and a closed socket as an error matching net.ErrClosed.
// When a watched ctx ends it returns ctx.Err(); when the read deadline
// passes, os.ErrDeadlineExceeded (or context.DeadlineExceeded if it is the
// deadline of a watched ctx).
func (s *Socket) Receive(ctx context.Context, block bool) ([]byte, error) {
	for {
		n, from, err := s.l.recv(ctx, s.buf, block)
		if err != nil {
			if s.closed.Load() {
				// The runtime's "use of closed file" matches no exported
				// error; say what it means.
				return nil, fmt.Errorf("%w: %w", net.ErrClosed, err)
			}
			return nil, err
		}
		if n == 0 {
			// Netlink never sends an empty datagram; a closed peer reads as one.
			return nil, errEmptyRead
		}
		if from == 0 {
			return s.buf[:n], nil
		}
		// Not the kernel's: another process sent it to our port.
	}
}

var errEmptyRead = errors.New("empty read from netlink socket")

// fromKernel reports whether a message with header h comes from the kernel
// for s: the kernel writes 0 (multicast) or the requester's port id into
// nlmsg_pid, and any other value names another sender.
func (s *Socket) fromKernel(h *netlink.Header) bool { return h.PID == 0 || h.PID == s.port }

// SetOption sets a netlink socket option; a fake kernel's socket has none.
func (s *Socket) SetOption(o netlink.ConnOption, on bool) error {
	if s.nl == nil {
		return nil
	}
	return s.nl.SetOption(o, on)
}

// JoinGroup joins multicast group g.
func (s *Socket) JoinGroup(g uint32) error {
	if s.nl == nil {
		return errors.ErrUnsupported
	}
	return s.nl.JoinGroup(g)
}

// SetBPF attaches a socket filter program.
func (s *Socket) SetBPF(prog []bpf.RawInstruction) error {
	if s.nl == nil {
		return errors.ErrUnsupported
	}
	return s.nl.SetBPF(prog)
}

// SetReadBuffer sets the receive buffer to n bytes with SO_RCVBUFFORCE,
// which needs CAP_NET_ADMIN and ignores net.core.rmem_max, or else with
// SO_RCVBUF, which the kernel caps at rmem_max.
func (s *Socket) SetReadBuffer(n int) error {
	var serr error
	err := s.l.control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		if serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set receive buffer to %d bytes: %w", n, serr)
	}
	return nil
}

// ReadBuffer returns the receive buffer size the kernel granted, as
// SO_RCVBUF reports it (twice the size asked for).
func (s *Socket) ReadBuffer() (int, error) {
	var n int
	var serr error
	err := s.l.control(func(fd uintptr) {
		n, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if err == nil {
		err = serr
	}
	return n, err
}

// skMemInfoDrops is SK_MEMINFO_DROPS, the index of the drop counter in the
// array SO_MEMINFO returns (include/uapi/linux/sock_diag.h).
const skMemInfoDrops = 8

// Drops returns the kernel's count of messages it could not queue on the
// socket (sk_drops, from SO_MEMINFO, Linux 4.12 and later). The counter is
// 32 bits wide and wraps.
func (s *Socket) Drops() (uint32, error) {
	var info [16]uint32
	size := uint32(unsafe.Sizeof(info))
	var serr error
	err := s.l.control(func(fd uintptr) {
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 {
			serr = errno
		}
	})
	if err == nil {
		err = serr
	}
	if err == nil && size <= skMemInfoDrops*4 {
		err = fmt.Errorf("SO_MEMINFO returned %d bytes, no drop counter", size)
	}
	if err != nil {
		return 0, err
	}
	return info[skMemInfoDrops], nil
}

// AppendRequest appends the nlmsghdr, the nfgenmsg and the attributes of
// req with sequence number seq to b, and returns the extended slice.
func AppendRequest(b []byte, req *Req, seq uint32) []byte {
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, uint16(req.Type))
	b = binary.NativeEndian.AppendUint16(b, uint16(req.Flags|Request))
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = Header{Family: req.Family, Version: Version0, ResourceID: req.ResourceID}.Append(b)
	if req.Attrs != nil {
		b = req.Attrs(b)
	}
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// NextMessage splits the first netlink message off b, a datagram or what
// is left of it: it returns the message's header, its payload and the
// bytes after it, all aliasing b. It fails when b holds no whole message.
func NextMessage(b []byte) (h netlink.Header, data, rest []byte, err error) {
	if len(b) < nlmsgHeaderLen {
		return h, nil, nil, fmt.Errorf("%d trailing bytes, too short for a netlink header", len(b))
	}
	h = netlink.Header{
		Length:   binary.NativeEndian.Uint32(b),
		Type:     netlink.HeaderType(binary.NativeEndian.Uint16(b[4:])),
		Flags:    netlink.HeaderFlags(binary.NativeEndian.Uint16(b[6:])),
		Sequence: binary.NativeEndian.Uint32(b[8:]),
		PID:      binary.NativeEndian.Uint32(b[12:]),
	}
	if h.Length < nlmsgHeaderLen || int(h.Length) > len(b) {
		return h, nil, nil, fmt.Errorf("netlink message length %d out of range (%d bytes left)", h.Length, len(b))
	}
	data = b[nlmsgHeaderLen:h.Length]
	next := min((int(h.Length)+3)&^3, len(b))
	return h, data, b[next:], nil
}

// nextSeq advances and returns the sequence number, never 0.
func (s *Socket) nextSeq() uint32 {
	s.seq++
	if s.seq == 0 {
		s.seq++
	}
	return s.seq
}

// Request sends req and calls fn, if not nil, with every reply message, as
// Conn.Do describes.
func (s *Socket) Request(ctx context.Context, req Req, fn func(*Reply) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := s.l.watch(ctx)
	defer stop()
	seq := s.nextSeq()
	s.out = AppendRequest(s.out[:0], &req, seq)
	if err := s.l.send(s.out); err != nil {
		s.dirty = true
		return err
	}
	// Until the reply ends, the socket holds state for it.
	s.dirty = true
	interrupted := false
	for {
		b, err := s.Receive(ctx, true)
		if err != nil {
			return err
		}
		for len(b) > 0 {
			h, data, rest, err := NextMessage(b)
			if err != nil {
				return err
			}
			b = rest
			if h.Sequence != seq || !s.fromKernel(&h) {
				// A late answer to an earlier request on this socket, or a
				// message that does not come from the kernel.
				continue
			}
			if h.Flags&DumpInterrupted != 0 {
				interrupted = true
			}
			switch h.Type {
			case netlink.Error, netlink.Done:
				return s.finish(&h, data, interrupted)
			case netlink.Noop, netlink.Overrun:
				continue
			}
			if fn == nil {
				continue
			}
			hdr, attrs, perr := ParseHeader(data)
			if perr != nil {
				return perr
			}
			s.rep = Reply{Header: h, Family: hdr.Family, ResourceID: hdr.ResourceID, Attrs: attrs}
			if err := fn(&s.rep); err != nil {
				if err == ErrStop {
					return nil
				}
				return err
			}
			if req.Flags&(netlink.Dump|netlink.Acknowledge) == 0 && h.Flags&netlink.Multi == 0 {
				// A single reply to a request without ACK ends here.
				s.dirty = false
				return nil
			}
		}
	}
}

// finish ends a reply with its NLMSG_ERROR or NLMSG_DONE message h,
// whose payload is data: nil or ErrDumpInterrupted when the request
// succeeded, the kernel's error otherwise.
func (s *Socket) finish(h *netlink.Header, data []byte, interrupted bool) error {
	if len(data) >= 4 && binary.NativeEndian.Uint32(data) == 0 && h.Flags&netlink.AcknowledgeTLVs == 0 {
		// Success, the common case, decoded without allocating.
		s.dirty = false
		if interrupted {
			return ErrDumpInterrupted
		}
		return nil
	}
	e, err := DecodeError(netlink.Message{Header: *h, Data: data})
	if err != nil {
		return err
	}
	s.dirty = false
	if e.Errno != 0 {
		return e.OpError()
	}
	if interrupted {
		return ErrDumpInterrupted
	}
	return nil
}

// OpError returns the *netlink.OpError that callers of mdlayher/netlink
// know for a kernel error, keeping the extended ACK's message and offset.
func (e *Error) OpError() error {
	return &netlink.OpError{Op: "receive", Err: e.Errno, Message: e.Message, Offset: int(e.Offset)}
}
