package ctnetlink

import (
	"context"
	"errors"
	"iter"
	"net/netip"
	"slices"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// DumpFilter selects the flows of a dump. The zero value selects every
// flow of both address families. Fields combine with AND.
//
// The kernel applies each filter field, so unwanted flows never cross the
// socket, and the client checks each returned flow against the filter again,
// so a kernel that ignores a field it does not know never yields a flow the
// filter excludes. Which kernel applies what:
//
//   - Family: every kernel.
//   - Mark/MarkMask: Linux 2.6.37 and later (built with CONFIG_NF_CONNTRACK_MARK).
//   - Status/StatusMask: Linux 6.3 and later; older kernels ignore it and the
//     client filters.
//   - Zone: Linux 6.8 and later; older kernels ignore it and the client filters.
//   - Orig: CTA_FILTER, Linux 5.8 and later; older kernels ignore it and the
//     client filters.
//   - Reply: evaluated by the client only. The kernel's CTA_FILTER parses the
//     reply tuple with the original direction's field flags, so it cannot be
//     trusted with a reply filter on its own.
type DumpFilter struct {
	// Family is unix.AF_INET or unix.AF_INET6, or 0 for both. When 0 and a
	// tuple filter names an address, the address's family is used.
	Family uint8

	// Mark selects flows whose mark, ANDed with MarkMask, equals Mark. The
	// filter applies when Mark or MarkMask is non-zero; a zero MarkMask
	// then means all bits.
	Mark, MarkMask uint32

	// Status selects flows whose status bits, ANDed with StatusMask, equal
	// Status. It applies when StatusMask is non-zero.
	Status, StatusMask Status

	// Zone, if not nil, selects flows of that conntrack zone id (see
	// Flow.ZoneID): the kernel's zone filter compares the id whatever
	// direction the zone applies to.
	Zone *uint16

	// Orig and Reply, if not nil, select flows by their original and reply
	// tuples.
	Orig, Reply *TupleFilter
}

// TupleFilter matches fields of one direction's tuple. A field takes part
// only when it is set: a valid address, a non-zero protocol, a non-nil port.
type TupleFilter struct {
	Src, Dst netip.Addr
	// Proto is the layer 4 protocol number (unix.IPPROTO_TCP, ...).
	Proto uint8
	// SrcPort and DstPort need Proto.
	SrcPort, DstPort *uint16
	// ICMPType, ICMPCode and ICMPID need Proto to be ICMP or ICMPv6.
	ICMPType, ICMPCode *uint8
	ICMPID             *uint16
}

func (tf *TupleFilter) family() uint8 {
	for _, a := range []netip.Addr{tf.Src, tf.Dst} {
		if a.Is4() {
			return unix.AF_INET
		}
		if a.IsValid() {
			return unix.AF_INET6
		}
	}
	return 0
}

// request fills t with the filter's fields and returns the CTA_FILTER flags
// that name them.
func (tf *TupleFilter) request(t *Tuple) FilterFlags {
	var fl FilterFlags
	setAddr := func(a netip.Addr, v4, v6 *netip.Addr, bit FilterFlags) {
		if !a.IsValid() {
			return
		}
		if a.Is4() {
			*v4 = a
		} else {
			*v6 = a
		}
		fl |= bit
	}
	setAddr(tf.Src, &t.IP.V4Src, &t.IP.V6Src, FilterFlagsIPSrc)
	setAddr(tf.Dst, &t.IP.V4Dst, &t.IP.V6Dst, FilterFlagsIPDst)
	if tf.Proto != 0 {
		t.Proto.SetNum(tf.Proto)
		fl |= FilterFlagsProtoNum
	}
	if tf.SrcPort != nil {
		t.Proto.SetSrcPort(*tf.SrcPort)
		fl |= FilterFlagsProtoSrcPort
	}
	if tf.DstPort != nil {
		t.Proto.SetDstPort(*tf.DstPort)
		fl |= FilterFlagsProtoDstPort
	}
	icmp6 := tf.Proto == unix.IPPROTO_ICMPV6
	if tf.ICMPType != nil {
		if icmp6 {
			t.Proto.SetICMPv6Type(*tf.ICMPType)
			fl |= FilterFlagsProtoICMPv6Type
		} else {
			t.Proto.SetICMPType(*tf.ICMPType)
			fl |= FilterFlagsProtoICMPType
		}
	}
	if tf.ICMPCode != nil {
		if icmp6 {
			t.Proto.SetICMPv6Code(*tf.ICMPCode)
			fl |= FilterFlagsProtoICMPv6Code
		} else {
			t.Proto.SetICMPCode(*tf.ICMPCode)
			fl |= FilterFlagsProtoICMPCode
		}
	}
	if tf.ICMPID != nil {
		if icmp6 {
			t.Proto.SetICMPv6ID(*tf.ICMPID)
			fl |= FilterFlagsProtoICMPv6ID
		} else {
			t.Proto.SetICMPID(*tf.ICMPID)
			fl |= FilterFlagsProtoICMPID
		}
	}
	return fl
}

// Match reports whether tuple t has every field the filter sets.
func (tf *TupleFilter) Match(t *Tuple) bool {
	if tf.Src.IsValid() && tf.Src != t.Src() {
		return false
	}
	if tf.Dst.IsValid() && tf.Dst != t.Dst() {
		return false
	}
	if tf.Proto != 0 && tf.Proto != t.Proto.Num {
		return false
	}
	if tf.SrcPort != nil && *tf.SrcPort != t.Proto.SrcPort {
		return false
	}
	if tf.DstPort != nil && *tf.DstPort != t.Proto.DstPort {
		return false
	}
	icmp6 := t.Proto.Num == unix.IPPROTO_ICMPV6
	if (tf.ICMPType != nil || tf.ICMPCode != nil || tf.ICMPID != nil) && !icmp6 && t.Proto.Num != unix.IPPROTO_ICMP {
		// ICMP fields select ICMP flows only; other protocols carry none.
		return false
	}
	pick8 := func(v4, v6 uint8) uint8 {
		if icmp6 {
			return v6
		}
		return v4
	}
	if tf.ICMPType != nil && *tf.ICMPType != pick8(t.Proto.ICMPType, t.Proto.ICMPv6Type) {
		return false
	}
	if tf.ICMPCode != nil && *tf.ICMPCode != pick8(t.Proto.ICMPCode, t.Proto.ICMPv6Code) {
		return false
	}
	if tf.ICMPID != nil {
		id := t.Proto.ICMPID
		if icmp6 {
			id = t.Proto.ICMPv6ID
		}
		if *tf.ICMPID != id {
			return false
		}
	}
	return true
}

// Match reports whether flow fl passes the filter.
func (f *DumpFilter) Match(fl *Flow) bool {
	if f == nil {
		return true
	}
	if f.Family != 0 && f.Family != fl.Family() {
		return false
	}
	if !markMatch(fl.Mark, f.Mark, f.MarkMask) {
		return false
	}
	if f.StatusMask != 0 && fl.Status&f.StatusMask != f.Status {
		return false
	}
	if f.Zone != nil && *f.Zone != fl.ZoneID() {
		return false
	}
	if f.Orig != nil && !f.Orig.Match(&fl.TupleOrig) {
		return false
	}
	if f.Reply != nil && !f.Reply.Match(&fl.TupleReply) {
		return false
	}
	return true
}

// request returns the nfgenmsg family and the request attributes.
func (f *DumpFilter) request() (uint8, *Flow) {
	if f == nil {
		return unix.AF_UNSPEC, nil
	}
	var q Flow
	family := f.Family
	if f.Mark != 0 || f.MarkMask != 0 {
		q.SetMark(f.Mark)
		mask := f.MarkMask
		if mask == 0 {
			mask = ^uint32(0)
		}
		q.SetMarkMask(mask)
	}
	if f.StatusMask != 0 {
		q.SetStatus(f.Status)
		q.SetStatusMask(f.StatusMask)
	}
	if f.Zone != nil {
		q.SetZone(*f.Zone)
	}
	if f.Orig != nil {
		if family == 0 {
			family = f.Orig.family()
		}
		if fl := f.Orig.request(&q.TupleOrig); fl != 0 {
			q.Filter = &Filter{}
			q.Filter.SetOrigFlags(fl)
			q.Filter.SetReplyFlags(0)
		}
	}
	if f.Reply != nil && family == 0 {
		family = f.Reply.family()
	}
	return family, &q
}

// Dump streams the flows of the conntrack table that pass filter (nil for
// all). The yielded *Flow is reused for the next flow: copy it to keep it.
//
// The dump reads the kernel's answer as it comes, so a table of any size
// needs memory for one flow. Breaking out of the loop ends the dump. If the
// table changed during the dump, the last value yielded is the error
// ErrDumpInterrupted; any other failure is an *Error. Other methods of the
// Conn may be called from the loop body.
func (c *Conn) Dump(ctx context.Context, filter *DumpFilter) iter.Seq2[*Flow, error] {
	return c.dumpFlows(ctx, "dump", MsgGet, filter)
}

// DumpZero is Dump that also zeroes the counters of every flow it returns
// (IPCTNL_MSG_CT_GET_CTRZERO). The flows carry the counters read before the
// reset.
func (c *Conn) DumpZero(ctx context.Context, filter *DumpFilter) iter.Seq2[*Flow, error] {
	return c.dumpFlows(ctx, "dump-zero", MsgGetCtrZero, filter)
}

// DumpDying streams the flows on the dying list: deleted, but still
// referenced (IPCTNL_MSG_CT_GET_DYING).
func (c *Conn) DumpDying(ctx context.Context) iter.Seq2[*Flow, error] {
	return c.dumpFlows(ctx, "dump-dying", MsgGetDying, nil)
}

// DumpUnconfirmed streams the flows on the unconfirmed list: created for a
// packet not yet through the stack (IPCTNL_MSG_CT_GET_UNCONFIRMED). Recent
// kernels keep no such list and return none.
func (c *Conn) DumpUnconfirmed(ctx context.Context) iter.Seq2[*Flow, error] {
	return c.dumpFlows(ctx, "dump-unconfirmed", MsgGetUnconfirmed, nil)
}

func (c *Conn) dumpFlows(ctx context.Context, op string, typ MsgType, filter *DumpFilter) iter.Seq2[*Flow, error] {
	return func(yield func(*Flow, error) bool) {
		if err := filter.check(); err != nil {
			yield(nil, &Error{Op: op, Err: err})
			return
		}
		s, err := c.get()
		if err != nil {
			yield(nil, &Error{Op: op, Err: err})
			return
		}
		defer c.put(s)
		family, q := filter.request()
		var attrs func([]byte) []byte
		if q != nil {
			attrs = q.AppendAttributes
		}
		families := []uint8{family}
		if family == unix.AF_UNSPEC && q != nil && q.Has(FlowAttrFilter) {
			// The kernel evaluates a tuple filter for one family at a time.
			families = []uint8{unix.AF_INET, unix.AF_INET6}
		}
		var f Flow
		for _, fam := range families {
			stopped := false
			err = request(ctx, s, typ, netlink.Dump, fam, attrs, func(r *reply) error {
				if err := f.UnmarshalAttributes(r.Attrs); err != nil {
					return err
				}
				if !filter.Match(&f) {
					return nil
				}
				// Flows already read are not handed out after a cancellation.
				if err := ctx.Err(); err != nil {
					return err
				}
				if !yield(&f, nil) {
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
				if errors.Is(err, ErrDumpInterrupted) {
					yield(nil, &Error{Op: op, Err: err})
				} else {
					yield(nil, opError(op, err, s.Sent(), schemaFlow))
				}
				return
			}
		}
	}
}

// List returns the flows that pass filter. A dump that the kernel flags as
// interrupted by a table change is repeated, up to three times, before List
// returns the last attempt's flows with ErrDumpInterrupted.
func (c *Conn) List(ctx context.Context, filter *DumpFilter) ([]Flow, error) {
	var flows []Flow
	var err error
	if filter == nil {
		// The table's size is a good capacity hint for an unfiltered list;
		// growing a slice of large elements costs more than the dump.
		if st, serr := c.Stats(ctx); serr == nil {
			flows = make([]Flow, 0, int(st.Entries)+int(st.Entries)/16+16)
		}
	}
	flows, err = collect(flows, func() iter.Seq2[*Flow, error] { return c.Dump(ctx, filter) })
	return flows, err
}

// collect copies what dump yields into out, repeating a dump that the kernel
// flags as interrupted up to three times; the last attempt's values come
// back with ErrDumpInterrupted.
func collect[T any](out []T, dump func() iter.Seq2[*T, error]) ([]T, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		out, err = out[:0], nil
		for v, verr := range dump() {
			if verr != nil {
				err = verr
				break
			}
			if len(out) == cap(out) {
				// Double: append's gentler growth for large elements
				// copies a big table several times over.
				out = slices.Grow(out, max(len(out), 64))
			}
			out = append(out, *v)
		}
		if !errors.Is(err, ErrDumpInterrupted) {
			break
		}
	}
	return out, err
}

// markMatch applies a mark filter: it selects marks that, ANDed with mask,
// equal want. A filter with both zero selects every mark; a zero mask with a
// non-zero want means all bits.
func markMatch(mark, want, mask uint32) bool {
	if want == 0 && mask == 0 {
		return true
	}
	if mask == 0 {
		mask = ^uint32(0)
	}
	return mark&mask == want
}
