package nfnl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Config configures a Conn. A nil *Config means all defaults.
type Config struct {
	// NetNS is a file descriptor of the network namespace to work in, for
	// example of /var/run/netns/NAME or /proc/PID/ns/net. The default, 0,
	// is the namespace of the calling thread. Dial duplicates the
	// descriptor, so the caller may close theirs once Dial returns.
	// Entering another namespace needs CAP_SYS_ADMIN; Dial fails if it
	// cannot.
	NetNS int

	// ReadBuffer is the socket receive buffer size in bytes. The default,
	// 0, keeps the kernel's default (net.core.rmem_default). Dial tries
	// SO_RCVBUFFORCE first, which needs CAP_NET_ADMIN, then falls back to
	// SO_RCVBUF, which the kernel caps at net.core.rmem_max.
	ReadBuffer int

	// MaxIdle is how many sockets the Conn keeps open for reuse between
	// calls. The default, 0, means 2. Calls that run at the same time each
	// use a socket of their own.
	MaxIdle int
}

// Conn is a request/reply client of NETLINK_NETFILTER in one network
// namespace. It knows no subsystem: callers build the attributes of a
// request and decode those of each reply.
//
// A Conn is safe for concurrent use by multiple goroutines. Each call uses a
// socket of its own, taken from a small pool, so calls do not wait for each
// other.
type Conn struct {
	cfg   Config
	netns int // our duplicate of cfg.NetNS, or 0
	dial  func() (link, error)

	mu     sync.Mutex
	idle   []*sock
	closed bool
}

// link is what a sock needs of a netlink socket; tests replace it with a
// fake kernel.
type link interface {
	send(b []byte) error
	// watch makes the end of ctx unblock recv until the returned func is
	// called.
	watch(ctx context.Context) (stop func())
	// recv reads one datagram into buf and returns its length and the
	// port id of its sender, 0 for the kernel. It returns ctx.Err() when
	// ctx, being watched, ends while it waits.
	recv(ctx context.Context, buf []byte) (n int, from uint32, err error)
	close() error
}

// Req is one nfnetlink request.
type Req struct {
	// Type is the netlink message type, the subsystem id in its high byte
	// (see [Type]).
	Type netlink.HeaderType
	// Flags are added to NLM_F_REQUEST. With Acknowledge the kernel ends a
	// successful request with an ACK; with Dump it ends the dump with
	// NLMSG_DONE. Without either, the first reply ends the request.
	Flags netlink.HeaderFlags
	// Family and ResourceID fill the nfgenmsg header.
	Family     uint8
	ResourceID uint16
	// Attrs, if not nil, appends the request's attributes to b and returns
	// the result.
	Attrs func(b []byte) []byte
}

// Reply is one message of a reply. Attrs aliases the receive buffer and is
// valid only during the callback that receives it; the Reply itself is
// reused for the next message.
type Reply struct {
	Header netlink.Header
	Family uint8
	// ResourceID is the nfgenmsg res_id, in host byte order.
	ResourceID uint16
	Attrs      []byte
}

// ErrDumpInterrupted reports that the kernel flagged a reply with
// NLM_F_DUMP_INTR: the objects changed during the dump, which may have
// missed some or shown some twice. Every reply message was still delivered;
// repeat the dump for a consistent view.
var ErrDumpInterrupted = errors.New("nfnl: dump interrupted by a concurrent change, results may be inconsistent")

// ErrStop, returned by a reply callback, ends the request early without an
// error. The socket is then closed rather than reused.
var ErrStop = errors.New("nfnl: stop")

var errClosed = errors.New("nfnl: use of closed Conn")

// Dial opens a Conn. It opens one socket right away, so that a missing
// privilege, namespace or kernel module shows up here.
func Dial(cfg *Config) (*Conn, error) {
	c := &Conn{}
	if cfg != nil {
		c.cfg = *cfg
	}
	if c.cfg.MaxIdle <= 0 {
		c.cfg.MaxIdle = 2
	}
	if c.cfg.NetNS > 0 {
		fd, err := unix.FcntlInt(uintptr(c.cfg.NetNS), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("nfnl: dial: duplicate netns descriptor %d: %w", c.cfg.NetNS, err)
		}
		c.netns = fd
	}
	c.dial = func() (link, error) { return dialNetlink(c.netns, c.cfg.ReadBuffer) }
	s, err := c.newSock()
	if err != nil {
		c.closeNetNS()
		return nil, fmt.Errorf("nfnl: dial: %w", err)
	}
	c.put(s)
	return c, nil
}

// newConn returns a Conn whose sockets come from dial; tests use it.
func newConn(dial func() (link, error)) *Conn {
	return &Conn{cfg: Config{MaxIdle: 2}, dial: dial}
}

func (c *Conn) closeNetNS() {
	if c.netns > 0 {
		unix.Close(c.netns)
		c.netns = 0
	}
}

// Close closes the Conn's idle sockets and its namespace descriptor. Calls
// still running finish normally; their sockets are closed as they end.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	var err error
	for _, s := range idle {
		err = errors.Join(err, s.l.close())
	}
	c.closeNetNS()
	return err
}

// sock is one socket with its buffers.
type sock struct {
	l   link
	buf []byte
	out []byte
	seq uint32
	rep Reply
	// dirty marks a socket whose last request ended before its reply did:
	// it is closed, not reused.
	dirty bool
}

// recvBufSize holds the largest datagram the kernel sends on a netlink
// socket (dumps fill skbs of up to 32 KiB) with room to spare.
const recvBufSize = 64 << 10

func (c *Conn) newSock() (*sock, error) {
	l, err := c.dial()
	if err != nil {
		return nil, err
	}
	return &sock{l: l, buf: make([]byte, recvBufSize), seq: uint32(time.Now().UnixNano())}, nil
}

// get takes an idle socket or opens a new one.
func (c *Conn) get() (*sock, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed
	}
	if n := len(c.idle); n > 0 {
		s := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()
	return c.newSock()
}

// put returns a socket to the pool, or closes it if it holds an unfinished
// reply or the pool is full.
func (c *Conn) put(s *sock) {
	if s.dirty {
		s.l.close()
		return
	}
	c.mu.Lock()
	if c.closed || len(c.idle) >= c.cfg.MaxIdle {
		c.mu.Unlock()
		s.l.close()
		return
	}
	c.idle = append(c.idle, s)
	c.mu.Unlock()
}

// Do sends req and calls fn, if not nil, with every reply message the
// kernel sends for it, until the ACK, the error or the NLMSG_DONE that ends
// it. Only datagrams whose sender is the kernel (source port id 0) and
// messages with the request's sequence number are considered; others are
// skipped. (The nlmsg_pid of the kernel's replies is the requester's port
// id, not 0, so the sender is taken from the datagram's source address.)
//
// A kernel error is returned as a *netlink.OpError that keeps the extended
// ACK's message and offset and unwraps to the unix.Errno, so errors.Is works
// with os.ErrNotExist and the like. A reply flagged NLM_F_DUMP_INTR makes Do
// return ErrDumpInterrupted after every message was delivered. An error
// returned by fn ends the request and is returned as is. Cancelling ctx
// unblocks a pending receive and makes Do return ctx.Err().
func (c *Conn) Do(ctx context.Context, req Req, fn func(*Reply) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := c.get()
	if err != nil {
		return err
	}
	err = s.request(ctx, req, fn)
	c.put(s)
	return err
}

// appendRequest appends the nlmsghdr, the nfgenmsg and the attributes of req.
func appendRequest(b []byte, req *Req, seq uint32) []byte {
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

// nextMsg splits the first netlink message off b.
func nextMsg(b []byte) (h netlink.Header, data, rest []byte, err error) {
	if len(b) < nlmsgHeaderLen {
		return h, nil, nil, fmt.Errorf("nfnl: %d trailing bytes, too short for a netlink header", len(b))
	}
	h = netlink.Header{
		Length:   binary.NativeEndian.Uint32(b),
		Type:     netlink.HeaderType(binary.NativeEndian.Uint16(b[4:])),
		Flags:    netlink.HeaderFlags(binary.NativeEndian.Uint16(b[6:])),
		Sequence: binary.NativeEndian.Uint32(b[8:]),
		PID:      binary.NativeEndian.Uint32(b[12:]),
	}
	if h.Length < nlmsgHeaderLen || int(h.Length) > len(b) {
		return h, nil, nil, fmt.Errorf("nfnl: netlink message length %d out of range (%d bytes left)", h.Length, len(b))
	}
	data = b[nlmsgHeaderLen:h.Length]
	next := min((int(h.Length)+3)&^3, len(b))
	return h, data, b[next:], nil
}

// request runs one request on s.
func (s *sock) request(ctx context.Context, req Req, fn func(*Reply) error) error {
	s.seq++
	if s.seq == 0 {
		s.seq++
	}
	seq := s.seq
	stop := s.l.watch(ctx)
	defer stop()
	s.out = appendRequest(s.out[:0], &req, seq)
	if err := s.l.send(s.out); err != nil {
		s.dirty = true
		return err
	}
	s.dirty = true
	interrupted := false
	for {
		n, from, err := s.l.recv(ctx, s.buf)
		if err != nil {
			return err
		}
		if from != 0 {
			// Not the kernel's: another process sent it to our port.
			continue
		}
		b := s.buf[:n]
		for len(b) > 0 {
			h, data, rest, err := nextMsg(b)
			if err != nil {
				return err
			}
			b = rest
			if h.Sequence != seq {
				// A late answer to an earlier request on this socket.
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
					return &netlink.OpError{Op: "receive", Err: e.Errno, Message: e.Message, Offset: int(e.Offset)}
				}
				if interrupted {
					return ErrDumpInterrupted
				}
				return nil
			case netlink.Noop, netlink.Overrun:
				continue
			}
			hdr, attrs, perr := ParseHeader(data)
			if perr != nil {
				return perr
			}
			if fn != nil {
				s.rep = Reply{Header: h, Family: hdr.Family, ResourceID: hdr.ResourceID, Attrs: attrs}
				if err := fn(&s.rep); err != nil {
					if err == ErrStop {
						return nil
					}
					return err
				}
			}
			if req.Flags&(netlink.Dump|netlink.Acknowledge) == 0 && h.Flags&netlink.Multi == 0 {
				// A single reply to a request without ACK ends here.
				s.dirty = false
				if interrupted {
					return ErrDumpInterrupted
				}
				return nil
			}
		}
	}
}

// nlLink is a real NETLINK_NETFILTER socket.
type nlLink struct {
	nl  *netlink.Conn
	raw syscall.RawConn

	// readFn is the raw read callback, made once so that a receive does not
	// allocate; buf, n and rerr carry its arguments and results.
	readFn func(fd uintptr) bool
	buf    []byte
	from   unix.RawSockaddrNetlink
	n      int
	rerr   error
}

func dialNetlink(netns, rcvbuf int) (*nlLink, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, err
	}
	l := &nlLink{nl: nl}
	l.readFn = l.recvfrom
	if l.raw, err = nl.SyscallConn(); err != nil {
		nl.Close()
		return nil, err
	}
	// Error messages name the failing attribute when the kernel can.
	_ = nl.SetOption(netlink.ExtendedAcknowledge, true)
	if rcvbuf > 0 {
		var serr error
		err := l.raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf)
			if serr != nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
			}
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			nl.Close()
			return nil, fmt.Errorf("set receive buffer to %d bytes: %w", rcvbuf, err)
		}
	}
	return l, nil
}

func (l *nlLink) close() error { return l.nl.Close() }

func (l *nlLink) send(b []byte) error {
	var werr error
	err := l.raw.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), b)
		return werr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return werr
}

// watch makes ctx's deadline the read deadline and its cancellation move
// the deadline into the past, which unblocks a waiting read. The returned
// func undoes it and waits for a cancellation under way, so that it cannot
// move the deadline of a later request.
func (l *nlLink) watch(ctx context.Context) func() {
	dl, _ := ctx.Deadline()
	_ = l.nl.SetReadDeadline(dl)
	if ctx.Done() == nil {
		return func() { _ = l.nl.SetReadDeadline(time.Time{}) }
	}
	fired := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		_ = l.nl.SetReadDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !cancel() {
			<-fired
		}
		_ = l.nl.SetReadDeadline(time.Time{})
	}
}

// recv reads one datagram and its sender's address; it does not allocate.
func (l *nlLink) recv(ctx context.Context, buf []byte) (int, uint32, error) {
	l.buf = buf
	err := l.raw.Read(l.readFn)
	l.buf = nil
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		return 0, 0, err
	}
	if l.rerr != nil {
		return 0, 0, l.rerr
	}
	if l.from.Family != unix.AF_NETLINK {
		return 0, 0, fmt.Errorf("nfnl: datagram from address family %d", l.from.Family)
	}
	return l.n, l.from.Pid, nil
}

// recvfrom is recvfrom(2) into l.buf and l.from, without the allocation of
// unix.Recvfrom's Sockaddr.
func (l *nlLink) recvfrom(fd uintptr) bool {
	if len(l.buf) == 0 {
		l.n, l.rerr = 0, unix.EINVAL
		return true
	}
	salen := uint32(unix.SizeofSockaddrNetlink)
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&l.buf[0])), uintptr(len(l.buf)), 0,
		uintptr(unsafe.Pointer(&l.from)), uintptr(unsafe.Pointer(&salen)))
	if e != 0 {
		l.n, l.rerr = 0, e
		return e != unix.EAGAIN
	}
	l.n, l.rerr = int(n), nil
	return true
}
