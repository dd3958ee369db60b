package ctnetlink

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"os"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// An expectation tells conntrack that a future connection matching its
// tuple and mask is related to an existing flow, its master: the FTP data
// connection announced on the control connection, for example.
// Connection-tracking helpers create them from the traffic they parse;
// user space lists, creates and deletes them with the IPCTNL_MSG_EXP_*
// messages of the expectation subsystem (NFNL_SUBSYS_CTNETLINK_EXP).
//
// Which kernels know which attribute of an Expect:
//
//   - Master, Tuple, Mask, Timeout, ID and HelpName: every kernel with
//     ctnetlink.
//   - Zone: Linux 2.6.34 and later, with CONFIG_NF_CONNTRACK_ZONES. The
//     kernel reads it in requests and never reports it.
//   - Flags: Linux 2.6.37 and later.
//   - Class, NAT and Fn: Linux 3.4 and later. NAT needs CONFIG_NF_NAT;
//     without it a request with NAT fails with EOPNOTSUPP.
//
// Kernels ignore request attributes they do not know.

// Family returns the expectation's address family, unix.AF_INET or
// unix.AF_INET6, from its tuple (or its master tuple), or 0.
func (e *Expect) Family() uint8 {
	if fam := e.Tuple.Family(); fam != 0 {
		return fam
	}
	return e.Master.Family()
}

// expectFamily returns the family of e for the nfgenmsg header. The kernel
// parses every tuple of an expectation request in that family.
func expectFamily(e *Expect) uint8 {
	if fam := e.Family(); fam != 0 {
		return fam
	}
	return unix.AF_INET
}

// NewExpectMask returns the mask of an expectation of layer 4 protocol
// proto, for Expect.Mask. A new connection matches the expectation when its
// source address and source port (the ICMP id for ICMP), ANDed with the
// mask, equal the expectation's tuple's, and its destination address and
// port equal the tuple's exactly.
//
// srcAddr is the source address mask, of the tuple's family: for example
// 255.255.255.255 to match one source address, or netip.IPv4Unspecified()
// to match any. srcPort is the source port mask: 0xffff to match one port,
// 0 to match any. The destination fields of the mask are all ones, which is
// how the kernel reports them.
func NewExpectMask(proto uint8, srcAddr netip.Addr, srcPort uint16) Tuple {
	var ones [16]byte
	for i := range ones {
		ones[i] = 0xff
	}
	dst := netip.AddrFrom16(ones)
	if srcAddr.Is4() || srcAddr.Is4In6() {
		dst = netip.AddrFrom4([4]byte(ones[:4]))
	}
	var t Tuple
	t.SetSrc(srcAddr)
	t.SetDst(dst)
	t.Proto.SetNum(proto)
	switch proto {
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		t.SetICMP(0xff, 0xff, srcPort)
	default:
		t.Proto.SetSrcPort(srcPort)
		t.Proto.SetDstPort(0xffff)
	}
	return t
}

// DumpExpect streams the expectations of one address family, unix.AF_INET
// or unix.AF_INET6, or of both with 0 (IPCTNL_MSG_EXP_GET with
// NLM_F_DUMP). The yielded *Expect is reused for the next expectation: copy
// it to keep it. The kernel reports no Zone for expectations.
//
// Breaking out of the loop ends the dump, and other methods of the Conn may
// be called from the loop body. A failure is the last value yielded: an
// *Error with Op "dump-expect", or one that matches ErrDumpInterrupted.
func (c *Conn) DumpExpect(ctx context.Context, family uint8) iter.Seq2[*Expect, error] {
	const op = "dump-expect"
	return func(yield func(*Expect, error) bool) {
		s, err := c.get()
		if err != nil {
			yield(nil, &Error{Op: op, Err: err})
			return
		}
		defer c.put(s)
		var e Expect
		stopped := false
		err = request(ctx, s, MsgExpGet, netlink.Dump, family, nil, func(r *reply) error {
			if err := e.UnmarshalAttributes(r.Attrs); err != nil {
				return err
			}
			if !yield(&e, nil) {
				stopped = true
				return errStop
			}
			return nil
		})
		if stopped {
			s.Discard() // the rest of the dump is still queued
			return
		}
		if err != nil {
			yield(nil, opError(op, err, s.Sent(), schemaExpect))
		}
	}
}

// ListExpect returns the expectations of one address family, or of both
// with 0. A dump that the kernel flags as interrupted is repeated, up to
// three times, before ListExpect returns the last attempt's expectations
// with ErrDumpInterrupted.
func (c *Conn) ListExpect(ctx context.Context, family uint8) ([]Expect, error) {
	return collect[Expect](nil, func() iter.Seq2[*Expect, error] { return c.DumpExpect(ctx, family) })
}

// expectKey keeps the attributes that identify an expectation: its tuple,
// and the zone and id when q has them.
func expectKey(q *Expect) (k Expect) {
	k.SetTuple(q.Tuple)
	if q.Has(ExpectAttrZone) {
		k.SetZone(q.Zone)
	}
	if q.Has(ExpectAttrID) {
		k.SetID(q.ID)
	}
	return k
}

var errNoExpectTuple = errors.New("expectation has no tuple")

// check returns what is wrong with the tuples of e that a request sends,
// as Flow.check does for a flow: with master, the master's tuple as well.
func (e *Expect) check(master bool) error {
	if err := strayError("Expect", e.strayField()); err != nil {
		return err
	}
	if e.Has(ExpectAttrTuple) {
		if err := e.Tuple.checkFull("tuple"); err != nil {
			return err
		}
	}
	if master && e.Has(ExpectAttrMaster) {
		if err := e.Master.checkFull("master"); err != nil {
			return err
		}
		if e.Has(ExpectAttrTuple) && e.Tuple.Family() != e.Master.Family() {
			return invalid("tuple and master of different families")
		}
	}
	return nil
}

// GetExpect returns the expectation that q identifies
// (IPCTNL_MSG_EXP_GET): the one that a connection with tuple q.Tuple would
// match, among the expectations of zone q.Zone (default 0), and, when q
// carries an id, only if its id is q.ID. Any tuple inside the expectation's
// mask finds it, not only the tuple the kernel reports.
//
// An Expect from a dump carries no zone: set Zone on it to look up an
// expectation outside zone 0. GetExpect fails with an error that matches
// os.ErrNotExist when no expectation matches.
func (c *Conn) GetExpect(ctx context.Context, q *Expect) (*Expect, error) {
	const op = "get-expect"
	if !q.Has(ExpectAttrTuple) {
		return nil, &Error{Op: op, Err: errNoExpectTuple}
	}
	if err := q.check(false); err != nil {
		return nil, &Error{Op: op, Err: err}
	}
	k := expectKey(q)
	var out *Expect
	err := c.do(ctx, op, MsgExpGet, netlink.Acknowledge, expectFamily(q), schemaExpect, k.AppendAttributes, func(r *reply) error {
		e := new(Expect)
		if err := e.UnmarshalAttributes(r.Attrs); err != nil {
			return err
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, &Error{Op: op, Err: errors.New("kernel acknowledged without an expectation")}
	}
	return out, nil
}

// CreateExpect adds expectation e (IPCTNL_MSG_EXP_NEW with NLM_F_CREATE and
// NLM_F_EXCL). e needs Master, the original tuple of a flow in zone e.Zone
// (default 0), Tuple, and Mask (see NewExpectMask).
//
// The master flow must have a connection-tracking helper attached: by a
// rule (nftables "ct helper set", iptables "-j CT --helper"), or when it was
// created, with Flow.Help.Name. Otherwise the kernel refuses with
// EOPNOTSUPP. The helper's policy limits how many expectations one master
// may have; beyond it the kernel removes the master's oldest expectation of
// the same class (the FTP helper keeps one).
//
// The optional attributes:
//
//   - HelpName names a registered helper, such as "ftp", that the expected
//     connection gets when it arrives, and whose classes Class must be one
//     of. Kernels differ when it is missing or names no registered helper:
//     the 6.18 source refuses an unknown name with EOPNOTSUPP and, without
//     a name, ignores Class, while the 6.18.44 stable kernel the tests ran
//     on takes the master's helper in both cases.
//   - Class is the helper's expectation class; one the helper does not have
//     fails with EINVAL.
//   - Flags may hold ExpectFlagsPermanent and ExpectFlagsInactive; the
//     kernel clears ExpectFlagsUserspace.
//   - NAT saves an address and port for the NAT of the expected connection.
//   - Fn names a kernel function to run when a connection matches, such as
//     "nat-follow-master"; an unknown name fails with EINVAL.
//
// The kernel ignores Timeout when it creates an expectation: it starts the
// expectation with the timeout of the master's helper policy (300 seconds
// for FTP). When e carries a Timeout, CreateExpect then sets it with a
// second request, as UpdateExpect does.
//
// CreateExpect fails with an error that matches os.ErrExist when an
// expectation matching e.Tuple exists, and os.ErrNotExist when the master
// flow does not. One whose tuple and mask overlap another master's
// expectation fails with EBUSY, one beyond the table's limit with EMFILE.
func (c *Conn) CreateExpect(ctx context.Context, e *Expect) error {
	const op = "create-expect"
	if err := e.check(true); err != nil {
		return &Error{Op: op, Err: err}
	}
	err := c.do(ctx, op, MsgExpNew, netlink.Acknowledge|netlink.Create|netlink.Excl, expectFamily(e), schemaExpect, e.AppendAttributes, nil)
	if err != nil || !e.Has(ExpectAttrTimeout) {
		return err
	}
	return c.updateExpect(ctx, op, e)
}

// UpdateExpect sets the timeout of the expectation that e.Tuple matches in
// zone e.Zone to e.Timeout seconds (IPCTNL_MSG_EXP_NEW without
// NLM_F_CREATE). The timeout is the only thing the kernel changes in an
// existing expectation, and it does not check the id. UpdateExpect fails
// with an error that matches os.ErrNotExist when no expectation matches,
// and with ETIME when the one that matches is expiring.
func (c *Conn) UpdateExpect(ctx context.Context, e *Expect) error {
	return c.updateExpect(ctx, "update-expect", e)
}

func (c *Conn) updateExpect(ctx context.Context, op string, e *Expect) error {
	if !e.Has(ExpectAttrTuple) {
		return &Error{Op: op, Err: errNoExpectTuple}
	}
	if err := e.check(true); err != nil {
		return &Error{Op: op, Err: err}
	}
	// The kernel requires a mask and a master in every IPCTNL_MSG_EXP_NEW,
	// though it reads neither when it updates.
	var k Expect
	k.SetTuple(e.Tuple)
	k.SetMask(e.Mask)
	k.SetMaster(e.Master)
	k.SetTimeout(e.Timeout)
	if e.Has(ExpectAttrZone) {
		k.SetZone(e.Zone)
	}
	return c.do(ctx, op, MsgExpNew, netlink.Acknowledge, expectFamily(e), schemaExpect, k.AppendAttributes, nil)
}

// DeleteExpect removes expectations (IPCTNL_MSG_EXP_DELETE).
//
// With q.Tuple it removes the expectation that a connection with that tuple
// would match in zone q.Zone (default 0) and, when q carries an id, only if
// its id is q.ID, so that an expectation created again with the same tuple
// is not removed by mistake. It fails with an error that matches
// os.ErrNotExist when there is no such expectation.
//
// Without a tuple but with q.HelpName, it removes every expectation whose
// master has that helper, in all zones and both address families, and
// succeeds also when there is none.
//
// A q with neither fails without a request: FlushExpect removes all.
func (c *Conn) DeleteExpect(ctx context.Context, q *Expect) error {
	const op = "delete-expect"
	if err := strayError("Expect", q.strayField()); err != nil {
		return &Error{Op: op, Err: err}
	}
	switch {
	case q.Has(ExpectAttrTuple):
		if err := q.check(false); err != nil {
			return &Error{Op: op, Err: err}
		}
		k := expectKey(q)
		return c.do(ctx, op, MsgExpDelete, netlink.Acknowledge, expectFamily(q), schemaExpect, k.AppendAttributes, nil)
	case q.Has(ExpectAttrHelpName):
		var k Expect
		k.SetHelpName(q.HelpName)
		return c.do(ctx, op, MsgExpDelete, netlink.Acknowledge, unix.AF_UNSPEC, schemaExpect, k.AppendAttributes, nil)
	}
	return &Error{Op: op, Err: errors.New("expectation has neither a tuple nor a helper name")}
}

// FlushExpect removes the expectations of one address family,
// unix.AF_INET or unix.AF_INET6, or all expectations with 0.
//
// The kernel's flush (IPCTNL_MSG_EXP_DELETE without attributes) ignores the
// family and removes every expectation, so with 0 FlushExpect sends it, and
// with a family it lists that family's expectations and deletes each by
// tuple and id. That is not atomic: an expectation created meanwhile may
// stay, and one that expires or is matched meanwhile is skipped. As the
// kernel reports no zone for expectations, a flush of one family reaches
// only those of zone 0.
func (c *Conn) FlushExpect(ctx context.Context, family uint8) error {
	const op = "flush-expect"
	if family == unix.AF_UNSPEC {
		return c.do(ctx, op, MsgExpDelete, netlink.Acknowledge, unix.AF_UNSPEC, schemaExpect, nil, nil)
	}
	var keys []Expect
	for e, err := range c.DumpExpect(ctx, family) {
		if err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				ce.Op = op
			}
			return err
		}
		k := expectKey(e)
		k.SetID(e.ID)
		keys = append(keys, k)
	}
	for i := range keys {
		err := c.do(ctx, op, MsgExpDelete, netlink.Acknowledge, family, schemaExpect, keys[i].AppendAttributes, nil)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// CPUExpectStats is the per-CPU expectation statistics of one CPU.
type CPUExpectStats struct {
	CPU uint16
	ExpectStatsCPU
}

// ExpectStatsCPU returns the per-CPU expectation statistics of the
// namespace (IPCTNL_MSG_EXP_GET_STATS_CPU), one entry per possible CPU: how
// many expectations each CPU created, removed for any reason (deleted,
// expired, evicted, matched), and saw matched by a new connection. Linux 3.7
// and later.
func (c *Conn) ExpectStatsCPU(ctx context.Context) ([]CPUExpectStats, error) {
	var out []CPUExpectStats
	err := c.do(ctx, "expect-stats-cpu", MsgExpGetStatsCPU, netlink.Dump, unix.AF_UNSPEC, schemaExpectStatsCPU, nil, func(r *reply) error {
		if t := MsgType(r.Header.Type); t != expStatsCPUReply && t != MsgExpGetStatsCPU {
			return fmt.Errorf("reply of unexpected type %#04x", uint16(t))
		}
		var st CPUExpectStats
		st.CPU = r.ResourceID
		if err := st.UnmarshalAttributes(r.Attrs); err != nil {
			return err
		}
		out = append(out, st)
		return nil
	})
	return out, err
}

// expStatsCPUReply is the type of the kernel's answers to
// IPCTNL_MSG_EXP_GET_STATS_CPU: it builds them with the conntrack
// subsystem's id instead of the expectation subsystem's, so they arrive as
// 0x0103 rather than 0x0203.
const expStatsCPUReply = MsgType(NFNLSubsysCTNetlink<<8 | uint16(MsgExpGetStatsCPU)&0xff)
