package nfnl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
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
}

// link is what a Socket needs of its descriptor; tests replace it with a
// fake kernel.
type link interface {
	send(b []byte) error
	// watch makes the end of ctx unblock recv until the returned func is
	// called.
	watch(ctx context.Context) (stop func())
	// recv reads one datagram into buf and returns its length and the port
	// id of its sender, 0 for the kernel. With block false it returns
	// unix.EAGAIN rather than wait. When ctx, being watched, ends while it
	// waits, it returns ctx.Err().
	recv(ctx context.Context, buf []byte, block bool) (n int, from uint32, err error)
	setReadDeadline(t time.Time) error
	control(fn func(fd uintptr)) error
	close() error
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
func (s *Socket) Close() error { return s.l.close() }

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
				if len(data) >= 4 && binary.NativeEndian.Uint32(data) == 0 && h.Flags&netlink.AcknowledgeTLVs == 0 {
					// Success, the common case, decoded without allocating.
					s.dirty = false
					if interrupted {
						return ErrDumpInterrupted
					}
					return nil
				}
				e, derr := DecodeError(netlink.Message{Header: h, Data: data})
				if derr != nil {
					return derr
				}
				s.dirty = false
				if e.Errno != 0 {
					return e.OpError()
				}
				if interrupted {
					return ErrDumpInterrupted
				}
				return nil
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

// OpError returns the *netlink.OpError that callers of mdlayher/netlink
// know for a kernel error, keeping the extended ACK's message and offset.
func (e *Error) OpError() error {
	return &netlink.OpError{Op: "receive", Err: e.Errno, Message: e.Message, Offset: int(e.Offset)}
}

// rawLink reads and writes a non-blocking descriptor through the runtime's
// poller, without allocating.
type rawLink struct {
	raw syscall.RawConn
	// read reads one datagram of the descriptor into buf, setting n and
	// rerr; readBlock and readNow wrap it as raw read callbacks, made once
	// so that a receive does not allocate.
	read               func(fd uintptr)
	readBlock, readNow func(fd uintptr) bool
	buf                []byte
	n                  int
	rerr               error
}

func (r *rawLink) init(raw syscall.RawConn, read func(fd uintptr)) {
	r.raw, r.read = raw, read
	r.readBlock = func(fd uintptr) bool { r.read(fd); return r.rerr != unix.EAGAIN }
	r.readNow = func(fd uintptr) bool { r.read(fd); return true }
}

// recvRaw reads one datagram into buf. With block false it returns
// unix.EAGAIN rather than wait.
func (r *rawLink) recvRaw(ctx context.Context, buf []byte, block bool) (int, error) {
	if len(buf) == 0 {
		return 0, unix.EINVAL
	}
	r.buf = buf
	fn := r.readNow
	if block {
		fn = r.readBlock
	}
	r.n, r.rerr = 0, nil
	err := r.raw.Read(fn)
	r.buf = nil
	if err != nil {
		return 0, deadlineError(ctx, err)
	}
	return r.n, r.rerr
}

func (r *rawLink) control(fn func(fd uintptr)) error { return r.raw.Control(fn) }

// send writes b in one datagram.
func (r *rawLink) send(b []byte) error {
	var werr error
	err := r.raw.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), b)
		return werr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return werr
}

// nlLink is a real NETLINK_NETFILTER socket.
type nlLink struct {
	rawLink
	nl   *netlink.Conn
	from unix.RawSockaddrNetlink
}

func dialNetlink(netns int, groups uint32) (*nlLink, uint32, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns, Groups: groups})
	if err != nil {
		return nil, 0, err
	}
	l := &nlLink{nl: nl}
	raw, err := nl.SyscallConn()
	if err != nil {
		nl.Close()
		return nil, 0, err
	}
	l.init(raw, l.recvfrom)
	var port uint32
	var serr error
	err = raw.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		if sa, serr = unix.Getsockname(int(fd)); serr != nil {
			return
		}
		if nsa, ok := sa.(*unix.SockaddrNetlink); ok {
			port = nsa.Pid
		}
		// Connected to the kernel, the socket refuses unicasts from
		// other sockets (the kernel answers their sender ECONNREFUSED),
		// so no other process can slip messages into a reply.
		serr = unix.Connect(int(fd), &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		nl.Close()
		return nil, 0, err
	}
	return l, port, nil
}

func (l *nlLink) close() error                      { return l.nl.Close() }
func (l *nlLink) setReadDeadline(t time.Time) error { return l.nl.SetReadDeadline(t) }
func (l *nlLink) watch(ctx context.Context) func()  { return watchDeadline(l.nl, ctx) }

// recv reads one datagram and its sender's address; it does not allocate.
func (l *nlLink) recv(ctx context.Context, buf []byte, block bool) (int, uint32, error) {
	n, err := l.recvRaw(ctx, buf, block)
	if err != nil {
		return 0, 0, err
	}
	if l.from.Family != unix.AF_NETLINK {
		return 0, 0, fmt.Errorf("datagram from address family %d", l.from.Family)
	}
	return n, l.from.Pid, nil
}

// recvfrom is recvfrom(2) into l.buf and l.from, without the allocation of
// unix.Recvfrom's Sockaddr.
func (l *nlLink) recvfrom(fd uintptr) {
	salen := uint32(unix.SizeofSockaddrNetlink)
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&l.buf[0])), uintptr(len(l.buf)), 0,
		uintptr(unsafe.Pointer(&l.from)), uintptr(unsafe.Pointer(&salen)))
	if e != 0 {
		l.n, l.rerr = 0, e
		return
	}
	l.n, l.rerr = int(n), nil
}

// fileLink is a fake kernel's socket pair end: every datagram counts as the
// kernel's.
type fileLink struct {
	rawLink
	f *os.File
}

func (l *fileLink) close() error                      { return l.f.Close() }
func (l *fileLink) setReadDeadline(t time.Time) error { return l.f.SetReadDeadline(t) }
func (l *fileLink) watch(ctx context.Context) func()  { return watchDeadline(l.f, ctx) }

func (l *fileLink) recv(ctx context.Context, buf []byte, block bool) (int, uint32, error) {
	n, err := l.recvRaw(ctx, buf, block)
	return n, 0, err
}

// deadlineError turns the expiry of a watched ctx's deadline into ctx's
// error.
func deadlineError(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		// The socket's deadline is the context's: it can expire before the
		// context's own timer has run.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return context.DeadlineExceeded
		}
	}
	return err
}

// watchDeadline makes ctx's deadline the read deadline of d and its
// cancellation move the deadline into the past, which unblocks a waiting
// read. The returned func undoes it and waits for a cancellation under way,
// so that it cannot move the deadline of a later request.
func watchDeadline(d interface{ SetReadDeadline(time.Time) error }, ctx context.Context) func() {
	dl, _ := ctx.Deadline()
	_ = d.SetReadDeadline(dl)
	if ctx.Done() == nil {
		return func() { _ = d.SetReadDeadline(time.Time{}) }
	}
	fired := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		_ = d.SetReadDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !cancel() {
			<-fired
		}
		_ = d.SetReadDeadline(time.Time{})
	}
}
