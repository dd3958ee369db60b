package ctnetlink

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// oracleSelects reports whether selector m selects flow f, worked out
// from what each field means in the kernel, on the attributes the flow
// carries.
//
// It is the expected side of the cleanup and selector tests, so it shares
// no code with the paths under test: it never calls Selector.Match, the
// kernel or BPF lowering, the matcher index, the planner, nor the helpers
// they use (Flow.Family, Flow.ZoneID, Tuple.Src, Tuple.Dst, OneOf's
// methods, labelsMatch, Prefix.Contains). Each field is written out another
// way: labels bit by bit, prefixes byte by byte, zones per direction.
func oracleSelects(m *Selector, f *Flow) bool {
	o, r := &f.TupleOrig, &f.TupleReply
	proto := o.Proto.Num

	// Family is the flow's layer 3 protocol (nf_ct_l3num): which address
	// attributes its original tuple carries.
	if m.Family != 0 {
		fam := uint8(0)
		if o.IP.V4Src.IsValid() {
			fam = unix.AF_INET
		} else if o.IP.V6Src.IsValid() {
			fam = unix.AF_INET6
		}
		if fam != m.Family {
			return false
		}
	}
	if !oracleIn(m.Proto.Values, m.Proto.Negate, true, func(v uint8) bool { return v == proto }) {
		return false
	}
	if !oracleTuple(&m.OrigSrc, &m.OrigDst, &m.OrigSrcPort, &m.OrigDstPort, o) ||
		!oracleTuple(&m.ReplySrc, &m.ReplyDst, &m.ReplySrcPort, &m.ReplyDstPort, r) {
		return false
	}

	// ICMP fields exist in ICMP and ICMPv6 tuples only, each in its own
	// attributes; other flows have no value for them.
	var typ, code uint8
	var id uint16
	icmp := true
	switch proto {
	case unix.IPPROTO_ICMP:
		typ, code, id = o.Proto.ICMPType, o.Proto.ICMPCode, o.Proto.ICMPID
	case unix.IPPROTO_ICMPV6:
		typ, code, id = o.Proto.ICMPv6Type, o.Proto.ICMPv6Code, o.Proto.ICMPv6ID
	default:
		icmp = false
	}
	if !oracleIn(m.ICMPType.Values, m.ICMPType.Negate, icmp, func(v uint8) bool { return v == typ }) ||
		!oracleIn(m.ICMPCode.Values, m.ICMPCode.Negate, icmp, func(v uint8) bool { return v == code }) ||
		!oracleIn(m.ICMPID.Values, m.ICMPID.Negate, icmp, func(v uint16) bool { return v == id }) {
		return false
	}

	return oracleMeta(m, f) && oracleLabelsStates(m, f, proto) && (m.Func == nil || m.Func(f))
}

// oracleMeta is oracleSelects for mark, status and zones.
func oracleMeta(m *Selector, f *Flow) bool {
	o, r := &f.TupleOrig, &f.TupleReply
	// Mark: (ct->mark & mask) == (value & mask), the mask all ones when
	// it is 0, bit by bit.
	if !oracleIn(m.Mark.Values, m.Mark.Negate, true, func(v MarkMatch) bool {
		for bit := 0; bit < 32; bit++ {
			if (v.Mask == 0 || v.Mask>>bit&1 == 1) && f.Mark>>bit&1 != v.Mark>>bit&1 {
				return false
			}
		}
		return true
	}) {
		return false
	}

	// Status: (ct->status & mask) == (value & mask), the mask the value's
	// bits when it is 0: every bit of the value set.
	if !oracleIn(m.Status.Values, m.Status.Negate, true, func(v StatusMatch) bool {
		if v.Mask == 0 {
			return uint32(f.Status)|uint32(v.Status) == uint32(f.Status)
		}
		return (uint32(f.Status)^uint32(v.Status))&uint32(v.Mask) == 0
	}) {
		return false
	}

	// Zones: a flow has one zone id and the directions it applies to.
	// The kernel sends CTA_ZONE when the zone applies to both directions
	// and CTA_TUPLE_ZONE inside the tuple of the one direction it applies
	// to. The zone filter (nf_ct_zone_equal_any) compares the id whatever
	// the direction; a direction's zone (nf_ct_zone_id) is the id when the
	// zone applies to that direction and 0 otherwise.
	var zid, origZone, replyZone uint16
	switch {
	case f.Has(FlowAttrZone):
		zid, origZone, replyZone = f.Zone, f.Zone, f.Zone
	case o.Has(TupleAttrZone):
		zid, origZone = o.Zone, o.Zone
	case r.Has(TupleAttrZone):
		zid, replyZone = r.Zone, r.Zone
	}
	if !oracleIn(m.Zone.Values, m.Zone.Negate, true, func(v uint16) bool { return v == zid }) ||
		!oracleIn(m.OrigZone.Values, m.OrigZone.Negate, true, func(v uint16) bool { return v == origZone }) ||
		!oracleIn(m.ReplyZone.Values, m.ReplyZone.Negate, true, func(v uint16) bool { return v == replyZone }) {
		return false
	}

	return true
}

// oracleLabelsStates is oracleSelects for labels, protocol states and
// helper.
func oracleLabelsStates(m *Selector, f *Flow, proto uint8) bool {
	// Labels, label n being bit n%8 of byte n/8: every label of LabelsAll
	// is set on the flow, and at least one of LabelsAny is.
	hasLabel := func(n int) bool { return n/8 < len(f.Labels) && f.Labels[n/8]&(1<<(n%8)) != 0 }
	for n := 0; n < 8*len(m.LabelsAll); n++ {
		if m.LabelsAll[n/8]&(1<<(n%8)) != 0 && !hasLabel(n) {
			return false
		}
	}
	if len(m.LabelsAny) > 0 {
		found := false
		for n := 0; n < 8*len(m.LabelsAny); n++ {
			if m.LabelsAny[n/8]&(1<<(n%8)) != 0 && hasLabel(n) {
				found = true
			}
		}
		if !found {
			return false
		}
	}

	// Protocol states: only a flow of the protocol has a state.
	if !oracleIn(m.TCPStates.Values, m.TCPStates.Negate, proto == unix.IPPROTO_TCP, func(v TCPState) bool { return v == f.ProtoInfo.TCP.State }) ||
		!oracleIn(m.SCTPStates.Values, m.SCTPStates.Negate, proto == unix.IPPROTO_SCTP, func(v SCTPState) bool { return v == f.ProtoInfo.SCTP.State }) ||
		!oracleIn(m.DCCPStates.Values, m.DCCPStates.Negate, proto == unix.IPPROTO_DCCP, func(v DCCPState) bool { return v == f.ProtoInfo.DCCP.State }) {
		return false
	}

	if m.Helper != "" {
		if f.Help == nil || f.Help.Name != m.Helper {
			return false
		}
	}
	return true
}

// oracleIn evaluates one condition: no values is no condition; otherwise
// the flow has a value (has) equal to one of values, turned around by
// negate. The values are walked from the end.
func oracleIn[T any](values []T, negate, has bool, eq func(T) bool) bool {
	if len(values) == 0 {
		return true
	}
	in := false
	for i := len(values) - 1; i >= 0; i-- {
		in = in || has && eq(values[i])
	}
	return in != negate
}

// oracleTuple matches one direction's addresses and ports. A tuple without
// a port attribute has no port.
func oracleTuple(srcC, dstC *OneOf[netip.Prefix], sportC, dportC *OneOf[uint16], t *Tuple) bool {
	src, dst := t.IP.V4Src, t.IP.V4Dst
	if !src.IsValid() {
		src, dst = t.IP.V6Src, t.IP.V6Dst
	}
	return oracleIn(srcC.Values, srcC.Negate, true, func(p netip.Prefix) bool { return oracleInPrefix(p, src) }) &&
		oracleIn(dstC.Values, dstC.Negate, true, func(p netip.Prefix) bool { return oracleInPrefix(p, dst) }) &&
		oracleIn(sportC.Values, sportC.Negate, t.Proto.Has(TupleProtoAttrSrcPort), func(p uint16) bool { return p == t.Proto.SrcPort }) &&
		oracleIn(dportC.Values, dportC.Negate, t.Proto.Has(TupleProtoAttrDstPort), func(p uint16) bool { return p == t.Proto.DstPort })
}

// oracleInPrefix reports whether a lies in p: same family, and the first
// p.Bits() bits equal.
func oracleInPrefix(p netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() || p.Addr().Is4() != a.Is4() {
		return false
	}
	pb, ab := p.Addr().AsSlice(), a.AsSlice()
	for bit := 0; bit < p.Bits(); bit++ {
		if (pb[bit/8]^ab[bit/8])&(0x80>>(bit%8)) != 0 {
			return false
		}
	}
	return true
}

// oracleSelectsAny reports whether any of the matchers selects f: Cleanup
// deletes the union of what its matchers select.
func oracleSelectsAny(ms []Selector, f *Flow) bool {
	for i := range ms {
		if oracleSelects(&ms[i], f) {
			return true
		}
	}
	return false
}
