package ctnetlink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/nfnl"
)

// Config configures a Conn. A nil *Config means all defaults.
type Config struct {
	// NetNS is a file descriptor of the network namespace to work in, for
	// example of /var/run/netns/NAME or /proc/PID/ns/net. Dial duplicates
	// it, so the caller may close its own descriptor as soon as Dial
	// returns: every socket the Conn opens later is opened in that same
	// namespace. The default, 0, is the namespace the process's threads
	// are in (the caller's, unless a thread changed it). Entering another
	// namespace needs CAP_SYS_ADMIN; Dial fails if it cannot.
	NetNS int

	// NetNSPath names the network namespace to work in instead of NetNS:
	// a path such as /var/run/netns/NAME or /proc/PID/ns/net, or a bare
	// name NAME, which means /var/run/netns/NAME as ip-netns(8) creates
	// it. Dial opens it once and keeps it open until Close. Dial fails if
	// the path cannot be opened, if it is not a network namespace, or if
	// NetNS is set as well.
	NetNSPath string

	// ReadBuffer is the socket receive buffer size in bytes. The default,
	// 0, keeps the kernel's default (net.core.rmem_default). Dial tries
	// SO_RCVBUFFORCE first, which needs CAP_NET_ADMIN and ignores
	// net.core.rmem_max, then falls back to SO_RCVBUF, which the kernel caps
	// at rmem_max.
	ReadBuffer int

	// MaxIdle is how many sockets the Conn keeps open for reuse between
	// calls. The default, 0, means 2. Calls that run at the same time each
	// use a socket of their own.
	MaxIdle int
}

// Conn is a client of ctnetlink in one network namespace.
//
// A Conn is safe for concurrent use by multiple goroutines. Each call uses a
// netlink socket of its own, taken from a small pool, so calls do not wait
// for each other, and a dump can be iterated while the loop body calls other
// methods of the same Conn.
type Conn struct {
	cfg Config

	// netns is the Conn's own descriptor of its namespace, or 0; dial
	// opens a socket in it.
	netns int
	dial  func() (*sock, error)

	mu     sync.Mutex
	idle   []*sock
	closed bool
	// dials counts sockets being opened; Close waits for them before it
	// closes netns, so that no dial uses a closed (or reused) descriptor.
	dials sync.WaitGroup

	caps capCache
}

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
	ns, err := openNetNS(c.cfg.NetNS, c.cfg.NetNSPath)
	if err != nil {
		return nil, &Error{Op: "dial", Err: err}
	}
	c.netns = ns
	c.dial = func() (*sock, error) { return dialSock(c.netns, c.cfg.ReadBuffer, 0) }
	s, err := c.dial()
	if err != nil {
		c.closeNetNS()
		return nil, &Error{Op: "dial", Err: err}
	}
	c.put(s)
	return c, nil
}

func (c *Conn) closeNetNS() error {
	if c.netns <= 0 {
		return nil
	}
	err := unix.Close(c.netns)
	c.netns = -1
	if err != nil {
		return fmt.Errorf("close network namespace: %w", err)
	}
	return nil
}

// Close closes the Conn's sockets. Calls still running finish with an error
// when they next touch their socket; their sockets are closed as they end.
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
		err = errors.Join(err, s.close())
	}
	c.dials.Wait()
	return errors.Join(err, c.closeNetNS())
}

var errClosed = errors.New("use of closed Conn")

// get takes an idle socket or dials a new one.
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
	c.dials.Add(1)
	c.mu.Unlock()
	defer c.dials.Done()
	return c.dial()
}

// put returns a socket to the pool, or closes it if it holds an unfinished
// reply or the pool is full.
func (c *Conn) put(s *sock) {
	if s.dirty {
		s.close()
		return
	}
	c.mu.Lock()
	if c.closed || len(c.idle) >= c.cfg.MaxIdle {
		c.mu.Unlock()
		s.close()
		return
	}
	c.idle = append(c.idle, s)
	c.mu.Unlock()
}

// sock is one NETLINK_NETFILTER socket with its receive buffer.
type sock struct {
	nl   *netlink.Conn // nil for a socket of a fake kernel in tests
	conn sockConn      // nl, or the fake's end of a socket pair
	raw  syscall.RawConn
	// port is the socket's netlink port id, which the kernel writes into
	// the nlmsg_pid of its unicast replies.
	port uint32
	buf  []byte
	out  []byte
	seq  uint32
	rep  reply // the message handed to request callbacks, reused

	// readFn is the raw read callback, made once so that a receive does
	// not allocate; n and rerr carry its results.
	readFn func(fd uintptr) bool
	n      int
	rerr   error

	// dirty marks a socket whose last request was abandoned before its
	// reply ended (a cancelled or abandoned dump): it is closed, not reused.
	dirty bool
}

// recvBufSize holds the largest datagram the kernel sends on a netlink
// socket (dumps fill skbs of up to 32 KiB) with room to spare.
const recvBufSize = 64 << 10

// sockConn is what a sock needs of its socket besides the raw descriptor:
// *netlink.Conn, or in tests an *os.File of a fake kernel's socket pair.
type sockConn interface {
	SetReadDeadline(time.Time) error
	Close() error
}

// newSock returns a sock that reads and writes raw and uses conn for
// deadlines and to close.
func newSock(conn sockConn, raw syscall.RawConn, port uint32) *sock {
	s := &sock{conn: conn, raw: raw, port: port, buf: make([]byte, recvBufSize)}
	s.readFn = func(fd uintptr) bool {
		s.n, s.rerr = unix.Read(int(fd), s.buf)
		return s.rerr != unix.EAGAIN
	}
	return s
}

func dialSock(netns, rcvbuf int, groups uint32) (*sock, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns, Groups: groups})
	if err != nil {
		return nil, err
	}
	raw, err := nl.SyscallConn()
	if err != nil {
		nl.Close()
		return nil, err
	}
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
		return nil, err
	}
	s := newSock(nl, raw, port)
	s.nl = nl
	// Error messages name the failing attribute when the kernel can.
	_ = nl.SetOption(netlink.ExtendedAcknowledge, true)
	if rcvbuf > 0 {
		if err := s.setReadBuffer(rcvbuf); err != nil {
			nl.Close()
			return nil, err
		}
	}
	return s, nil
}

// setReadBuffer sets SO_RCVBUFFORCE, or SO_RCVBUF without the privilege.
func (s *sock) setReadBuffer(n int) error {
	var serr error
	err := s.raw.Control(func(fd uintptr) {
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

// readBuffer returns the receive buffer size the kernel granted.
func (s *sock) readBuffer() (int, error) {
	var n int
	var serr error
	err := s.raw.Control(func(fd uintptr) {
		n, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if err == nil {
		err = serr
	}
	return n, err
}

func (s *sock) close() error { return s.conn.Close() }

// setOption sets a netlink socket option; a fake kernel's socket has none.
func (s *sock) setOption(o netlink.ConnOption, on bool) error {
	if s.nl == nil {
		return nil
	}
	return s.nl.SetOption(o, on)
}

// watch makes ctx cancellation and its deadline interrupt a blocked receive
// on s by moving the socket's read deadline. The returned func undoes it, and
// waits for a cancellation that is under way, so that it cannot move the
// deadline of a later request on the same socket.
func (s *sock) watch(ctx context.Context) (stop func()) {
	_ = s.conn.SetReadDeadline(time.Time{})
	if dl, ok := ctx.Deadline(); ok {
		_ = s.conn.SetReadDeadline(dl)
	}
	if ctx.Done() == nil {
		return func() { _ = s.conn.SetReadDeadline(time.Time{}) }
	}
	fired := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !cancel() {
			<-fired
		}
		_ = s.conn.SetReadDeadline(time.Time{})
	}
}

// send writes one or more complete netlink messages.
func (s *sock) send(b []byte) error {
	var werr error
	err := s.raw.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), b)
		return werr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return werr
}

// recv reads one datagram into s.buf and returns it.
func (s *sock) recv(ctx context.Context) ([]byte, error) {
	err := s.raw.Read(s.readFn)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			// The socket's deadline is the context's: it can expire
			// before the context's own timer has run.
			if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
				return nil, context.DeadlineExceeded
			}
		}
		return nil, err
	}
	if s.rerr != nil {
		return nil, s.rerr
	}
	if s.n == 0 {
		// Netlink never sends an empty datagram; a closed peer reads as one.
		return nil, errEmptyRead
	}
	return s.buf[:s.n], nil
}

var errEmptyRead = errors.New("empty read from netlink socket")

// fromKernel reports whether a message with header h comes from the kernel
// for s: the kernel writes 0 (multicast) or the requester's port id into
// nlmsg_pid, and any other value names another sender.
func (s *sock) fromKernel(h *header) bool { return h.PID == 0 || h.PID == s.port }

const nlmsgHeaderLen = 16

// header is a decoded nlmsghdr.
type header struct {
	Len   uint32
	Type  uint16
	Flags uint16
	Seq   uint32
	PID   uint32
}

// nextMsg splits the first netlink message off b.
func nextMsg(b []byte) (h header, data, rest []byte, err error) {
	if len(b) < nlmsgHeaderLen {
		return h, nil, nil, fmt.Errorf("%d trailing bytes, too short for a netlink header", len(b))
	}
	h = header{
		Len:   binary.NativeEndian.Uint32(b),
		Type:  binary.NativeEndian.Uint16(b[4:]),
		Flags: binary.NativeEndian.Uint16(b[6:]),
		Seq:   binary.NativeEndian.Uint32(b[8:]),
		PID:   binary.NativeEndian.Uint32(b[12:]),
	}
	if h.Len < nlmsgHeaderLen || int(h.Len) > len(b) {
		return h, nil, nil, fmt.Errorf("netlink message length %d out of range (%d bytes left)", h.Len, len(b))
	}
	data = b[nlmsgHeaderLen:h.Len]
	next := (int(h.Len) + 3) &^ 3
	if next > len(b) {
		next = len(b)
	}
	return h, data, b[next:], nil
}

// appendRequest appends an nlmsghdr and nfgenmsg for a request whose
// attributes attrs appends, and fixes up the length.
func appendRequest(b []byte, typ MsgType, flags netlink.HeaderFlags, seq uint32, family uint8, attrs func([]byte) []byte) []byte {
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, uint16(typ))
	b = binary.NativeEndian.AppendUint16(b, uint16(flags|netlink.Request))
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = nfnl.Header{Family: family, Version: nfnl.Version0}.Append(b)
	if attrs != nil {
		b = attrs(b)
	}
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// reply is one message of a reply, handed to a request's callback. Data
// aliases the receive buffer and is valid only during the callback.
type reply struct {
	Header header
	Family uint8
	ResID  uint16
	Attrs  []byte
}

// errStop ends a request early from a callback without an error.
var errStop = errors.New("stop")

// request sends one request and feeds every reply message to fn until the
// kernel's ACK, error or NLMSG_DONE. It reports NLM_F_DUMP_INTR as
// ErrDumpInterrupted after the whole reply was read.
func (s *sock) request(ctx context.Context, typ MsgType, flags netlink.HeaderFlags, family uint8, attrs func([]byte) []byte, fn func(*reply) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := s.watch(ctx)
	defer stop()

	s.seq++
	seq := s.seq
	s.out = appendRequest(s.out[:0], typ, flags, seq, family, attrs)
	if err := s.send(s.out); err != nil {
		return err
	}
	// Until the reply ends, the socket holds state for it.
	s.dirty = true
	interrupted := false
	for {
		b, err := s.recv(ctx)
		if err != nil {
			return err
		}
		for len(b) > 0 {
			h, data, rest, err := nextMsg(b)
			if err != nil {
				return err
			}
			b = rest
			if h.Seq != seq || !s.fromKernel(&h) {
				// A late answer to an earlier request on this socket, or a
				// message that does not come from the kernel.
				continue
			}
			if h.Flags&uint16(netlink.DumpInterrupted) != 0 {
				interrupted = true
			}
			switch netlink.HeaderType(h.Type) {
			case netlink.Error, netlink.Done:
				e, derr := nfnl.DecodeError(netlink.Message{
					Header: netlink.Header{Length: h.Len, Type: netlink.HeaderType(h.Type), Flags: netlink.HeaderFlags(h.Flags), Sequence: h.Seq, PID: h.PID},
					Data:   data,
				})
				if derr != nil {
					return derr
				}
				s.dirty = false
				if e.Errno != 0 {
					return kernelError(e)
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
			hdr, attrs, perr := nfnl.ParseHeader(data)
			if perr != nil {
				return perr
			}
			s.rep = reply{Header: h, Family: hdr.Family, ResID: hdr.ResourceID, Attrs: attrs}
			if err := fn(&s.rep); err != nil {
				if err == errStop {
					return nil
				}
				return err
			}
			if flags&netlink.Dump == 0 && h.Flags&uint16(netlink.Multi) == 0 && flags&netlink.Acknowledge == 0 {
				// A single reply to a request without ACK ends here.
				s.dirty = false
				return nil
			}
		}
	}
}

// kernelError turns a decoded NLMSG_ERROR into the *netlink.OpError that
// callers of mdlayher/netlink know, keeping the extended ACK.
func kernelError(e *nfnl.Error) error {
	return &netlink.OpError{Op: "receive", Err: e.Errno, Message: e.Message, Offset: int(e.Offset)}
}
