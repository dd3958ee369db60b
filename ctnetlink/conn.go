package ctnetlink

import (
	"context"
	"errors"

	"github.com/mdlayher/netlink"

	"github.com/ctspec/ctspec/nfnl"
)

// Config configures a Conn; it is nfnl's (namespace, receive buffer, pool
// size), where each field documents its default. A nil *Config means all
// defaults: the calling thread's network namespace.
type Config = nfnl.Config

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
	nl, err := nfnl.Dial(cfg)
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
