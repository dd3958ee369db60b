package nfnl

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
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
	netns int // our descriptor of the namespace, or 0
	dial  func() (*Socket, error)

	mu     sync.Mutex
	idle   []*Socket
	closed bool
	// dials counts sockets being opened; Close waits for them before it
	// closes netns, so that no dial uses a closed (or reused) descriptor.
	dials sync.WaitGroup
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
		return nil, fmt.Errorf("nfnl: dial: %w", err)
	}
	c.netns = ns
	c.dial = func() (*Socket, error) {
		return DialSocket(&SocketConfig{NetNS: c.netns, ReadBuffer: c.cfg.ReadBuffer})
	}
	s, err := c.dial()
	if err != nil {
		c.closeNetNS()
		return nil, fmt.Errorf("nfnl: dial: %w", err)
	}
	c.Put(s)
	return c, nil
}

// NewConn returns a Conn whose sockets come from dial, such as sockets of
// NewFileSocket in fake-kernel tests. cfg gives MaxIdle; its other fields
// are not used.
func NewConn(cfg *Config, dial func() (*Socket, error)) *Conn {
	c := &Conn{dial: dial}
	if cfg != nil {
		c.cfg = *cfg
	}
	if c.cfg.MaxIdle <= 0 {
		c.cfg.MaxIdle = 2
	}
	return c
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

// NetNS returns the Conn's descriptor of its network namespace, valid until
// Close, or 0 for the namespace of the process.
func (c *Conn) NetNS() int { return max(c.netns, 0) }

// Close closes the Conn's idle sockets and its namespace descriptor. Calls
// still running finish with an error when they next touch their socket;
// their sockets are closed as they end.
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
		err = errors.Join(err, s.Close())
	}
	c.dials.Wait()
	return errors.Join(err, c.closeNetNS())
}

// ErrClosed is returned by calls on a closed Conn.
var ErrClosed = errors.New("use of closed Conn")

// Get takes an idle socket of the pool, or opens a new one. The caller
// owns it until it hands it back with Put.
func (c *Conn) Get() (*Socket, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
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

// Put returns a socket to the pool, or closes it if it holds an unfinished
// reply (see Socket.Discard) or the pool is full.
func (c *Conn) Put(s *Socket) {
	if s.dirty {
		s.Close()
		return
	}
	c.mu.Lock()
	if c.closed || len(c.idle) >= c.cfg.MaxIdle {
		c.mu.Unlock()
		s.Close()
		return
	}
	c.idle = append(c.idle, s)
	c.mu.Unlock()
}

// Do sends req and calls fn, if not nil, with every reply message the
// kernel sends for it, until the ACK, the error or the NLMSG_DONE that ends
// it. Only datagrams whose sender is the kernel (source port id 0), and
// messages with the request's sequence number and an nlmsg_pid of 0 or the
// socket's port id, are considered; others are skipped.
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
	s, err := c.Get()
	if err != nil {
		return err
	}
	err = s.Request(ctx, req, fn)
	c.Put(s)
	return err
}

// Idle returns how many open sockets the pool holds for reuse.
func (c *Conn) Idle() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.idle)
}
