package cttimeout

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/nfnl"
)

// Config configures a Conn; it is nfnl's. A nil *Config means all defaults:
// the calling thread's network namespace.
type Config = nfnl.Config

// Conn is a client of cttimeout in one network namespace.
//
// A Conn is safe for concurrent use by multiple goroutines; each call uses
// a socket of its own.
type Conn struct {
	nl *nfnl.Conn
}

// Policy is a named timeout policy, or, from DefaultGet, the defaults of one
// protocol (with no Name).
type Policy struct {
	// Name is the policy's name, at most 31 bytes.
	Name string
	// Family is the layer 3 protocol, unix.NFPROTO_IPV4 or NFPROTO_IPV6.
	Family uint16
	// Protocol is the layer 4 protocol (unix.IPPROTO_TCP and so on, or
	// ProtoGeneric).
	Protocol uint8
	// Timeouts are the policy's timeouts. The kernel reports every state
	// of the protocol. States that Create or Update leave out get the
	// protocol's current defaults; those DefaultSet leaves out keep their
	// value.
	Timeouts Timeouts
	// Use is the kernel's reference count: 1 while no rule or flow uses
	// the policy. It is ignored in requests.
	Use uint32
	// Unknown counts the attributes the decoder skipped because this
	// build does not know them.
	Unknown int
}

// Dial opens a Conn. A missing privilege or namespace shows up here.
func Dial(cfg *Config) (*Conn, error) {
	c, err := nfnl.Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("cttimeout: %w", err)
	}
	return &Conn{nl: c}, nil
}

// Close closes the Conn.
func (c *Conn) Close() error { return c.nl.Close() }

func msgType(m MsgType) netlink.HeaderType { return netlink.HeaderType(m) }

// opError names the operation and explains the errors callers meet most.
func opError(op string, err error) error {
	var hint string
	switch {
	case errors.Is(err, unix.EBUSY):
		hint = "policy in use by a rule or a flow (iptables CT --timeout), or, for create, a policy of that name exists: "
	case errors.Is(err, unix.ENOENT):
		hint = "no such policy: "
	case errors.Is(err, unix.EOPNOTSUPP):
		hint = "no timeout support for this protocol in the kernel: "
	}
	return fmt.Errorf("cttimeout: %s: %s%w", op, hint, err)
}

// encodePolicy appends the request attributes of p.
func encodePolicy(b []byte, p *Policy, name bool) ([]byte, error) {
	data, err := encodeTimeouts(p.Protocol, p.Timeouts)
	if err != nil {
		return nil, err
	}
	var m Message
	if name {
		if p.Name == "" || len(p.Name) > NameMax-1 {
			return nil, fmt.Errorf("name %q: want 1 to %d bytes", p.Name, NameMax-1)
		}
		m.SetName(p.Name)
	}
	m.SetL3Proto(p.Family)
	m.SetL4Proto(p.Protocol)
	m.SetData(data)
	return m.AppendAttributes(b), nil
}

// decodePolicy decodes one reply.
func decodePolicy(b []byte) (*Policy, error) {
	var m Message
	if err := m.UnmarshalAttributes(b); err != nil {
		return nil, err
	}
	p := &Policy{Name: m.Name, Family: m.L3Proto, Protocol: m.L4Proto, Use: m.Use, Unknown: int(m.Unknown)}
	if m.Has(MessageAttrData) {
		t, unknown, err := decodeTimeouts(m.L4Proto, m.Data)
		if err != nil {
			return nil, err
		}
		p.Timeouts, p.Unknown = t, p.Unknown+unknown
	}
	return p, nil
}

// write sends a request that the kernel answers with an ACK only.
func (c *Conn) write(ctx context.Context, typ MsgType, flags netlink.HeaderFlags, attrs []byte) error {
	return c.nl.Do(ctx, nfnl.Req{
		Type:  msgType(typ),
		Flags: flags | nfnl.Acknowledge,
		Attrs: func(b []byte) []byte { return append(b, attrs...) },
	}, nil)
}

// Create creates policy p. It fails with os.ErrExist if a policy of that
// name exists.
func (c *Conn) Create(ctx context.Context, p *Policy) error {
	attrs, err := encodePolicy(nil, p, true)
	if err != nil {
		return fmt.Errorf("cttimeout: create %q: %w", p.Name, err)
	}
	if err := c.write(ctx, MsgNew, nfnl.Create|nfnl.Excl, attrs); err != nil {
		return opError(fmt.Sprintf("create %q", p.Name), err)
	}
	return nil
}

// Update replaces the timeouts of the existing policy p.Name
// (NLM_F_REPLACE): states p leaves out go back to the protocol's defaults,
// not to their previous value. Its protocols must be those it was created
// with, or the kernel answers EINVAL.
func (c *Conn) Update(ctx context.Context, p *Policy) error {
	attrs, err := encodePolicy(nil, p, true)
	if err != nil {
		return fmt.Errorf("cttimeout: update %q: %w", p.Name, err)
	}
	if err := c.write(ctx, MsgNew, nfnl.Replace, attrs); err != nil {
		return opError(fmt.Sprintf("update %q", p.Name), err)
	}
	return nil
}

// Delete deletes the policy name. It fails with unix.EBUSY while a rule or a
// flow uses it and with os.ErrNotExist if there is no such policy.
func (c *Conn) Delete(ctx context.Context, name string) error {
	var m Message
	m.SetName(name)
	if err := c.write(ctx, MsgDelete, 0, m.AppendAttributes(nil)); err != nil {
		return opError(fmt.Sprintf("delete %q", name), err)
	}
	return nil
}

// Get returns the policy name, or an error matching os.ErrNotExist.
func (c *Conn) Get(ctx context.Context, name string) (*Policy, error) {
	var m Message
	m.SetName(name)
	return c.getOne(ctx, fmt.Sprintf("get %q", name), MsgGet, &m)
}

// getOne sends request m of type typ and decodes the one policy the kernel
// answers with; op names the operation in errors.
func (c *Conn) getOne(ctx context.Context, op string, typ MsgType, m *Message) (*Policy, error) {
	attrs := m.AppendAttributes(nil)
	var p *Policy
	err := c.nl.Do(ctx, nfnl.Req{
		Type:  msgType(typ),
		Flags: nfnl.Acknowledge,
		Attrs: func(b []byte) []byte { return append(b, attrs...) },
	}, func(r *nfnl.Reply) error {
		var err error
		p, err = decodePolicy(r.Attrs)
		return err
	})
	if err == nil && p == nil {
		err = errors.New("no reply")
	}
	if err != nil {
		return nil, opError(op, err)
	}
	return p, nil
}

// List returns every policy of the namespace. Breaking out of the loop ends
// the dump.
func (c *Conn) List(ctx context.Context) iter.Seq2[*Policy, error] {
	return func(yield func(*Policy, error) bool) {
		stopped := false
		err := c.nl.Do(ctx, nfnl.Req{Type: msgType(MsgGet), Flags: nfnl.Dump}, func(r *nfnl.Reply) error {
			p, err := decodePolicy(r.Attrs)
			if err != nil {
				err = opError("list", err)
			}
			if !yield(p, err) {
				stopped = true
				return nfnl.ErrStop
			}
			return nil
		})
		if err != nil && !stopped {
			yield(nil, opError("list", err))
		}
	}
}

// DefaultGet returns the default timeouts of protocol proto in family.
func (c *Conn) DefaultGet(ctx context.Context, family uint16, proto uint8) (*Policy, error) {
	var m Message
	m.SetL3Proto(family)
	m.SetL4Proto(proto)
	return c.getOne(ctx, fmt.Sprintf("default-get %d/%d", family, proto), MsgDefaultGet, &m)
}

// DefaultSet sets default timeouts of p.Protocol in p.Family; states it
// leaves out keep their value. p.Name is ignored.
func (c *Conn) DefaultSet(ctx context.Context, p *Policy) error {
	attrs, err := encodePolicy(nil, p, false)
	if err == nil {
		err = c.write(ctx, MsgDefaultSet, 0, attrs)
	}
	if err != nil {
		return opError(fmt.Sprintf("default-set %d/%d", p.Family, p.Protocol), err)
	}
	return nil
}
