package ctnetlink

import (
	"context"
	"errors"

	"github.com/mdlayher/netlink"

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
	nl *nfnl.Conn

	caps capCache
}

// Dial opens a Conn. It opens one socket right away, so that a missing
// privilege, namespace or kernel module shows up here.
func Dial(cfg *Config) (*Conn, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	nl, err := nfnl.Dial(&nfnl.Config{NetNS: c.NetNS, NetNSPath: c.NetNSPath, ReadBuffer: c.ReadBuffer, MaxIdle: c.MaxIdle})
	if err != nil {
		// Our own operation name replaces nfnl's.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return nil, &Error{Op: "dial", Err: err}
	}
	return &Conn{nl: nl}, nil
}

// Close closes the Conn's sockets. Calls still running finish with an error
// when they next touch their socket; their sockets are closed as they end.
func (c *Conn) Close() error { return c.nl.Close() }

// get takes an idle socket or dials a new one.
func (c *Conn) get() (*nfnl.Socket, error) { return c.nl.Get() }

// put returns a socket to the pool, or closes it if it holds an unfinished
// reply or the pool is full.
func (c *Conn) put(s *nfnl.Socket) { c.nl.Put(s) }

// reply is one message of a reply, handed to a request's callback. Attrs
// aliases the receive buffer and is valid only during the callback.
type reply = nfnl.Reply

// errStop ends a request early from a callback without an error.
var errStop = nfnl.ErrStop

// request sends one request on s and feeds every reply message to fn until
// the kernel's ACK, error or NLMSG_DONE. It reports NLM_F_DUMP_INTR as
// ErrDumpInterrupted after the whole reply was read.
func request(ctx context.Context, s *nfnl.Socket, typ MsgType, flags netlink.HeaderFlags, family uint8, attrs func([]byte) []byte, fn func(*reply) error) error {
	err := s.Request(ctx, nfnl.Req{Type: netlink.HeaderType(typ), Flags: flags, Family: family, Attrs: attrs}, fn)
	if err == nfnl.ErrDumpInterrupted {
		return ErrDumpInterrupted
	}
	return err
}

// kernelError turns a decoded NLMSG_ERROR into the *netlink.OpError that
// callers of mdlayher/netlink know, keeping the extended ACK.
func kernelError(e *nfnl.Error) error { return e.OpError() }
