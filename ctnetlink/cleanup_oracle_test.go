package ctnetlink

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// oracleSelects reports whether matcher m selects flow f, worked out from
// what each field means in the kernel, on the attributes the flow carries.
//
// It is the expected side of the cleanup tests, so it shares no code with
// the path under test: it never calls Matcher.Match, TupleFilter.Match,
// DumpFilter.Match, the matcher index, the planner, nor the helpers they
// use (Flow.Family, Flow.ZoneID, Tuple.Src, Tuple.Dst, markMatch,
// labelsMatch, Prefix.Contains). Each field is written out another way:
// labels bit by bit, prefixes byte by byte, zones per direction.
func oracleSelects(m *Matcher, f *Flow) bool {
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
	if m.Proto != 0 && m.Proto != proto {
		return false
	}
	if !oracleEndpoints(&m.Orig, o) || !oracleEndpoints(&m.Reply, r) {
		return false
	}

	// ICMP fields exist in ICMP and ICMPv6 tuples only, each in its own
	// attributes.
	if m.ICMPType != nil || m.ICMPCode != nil || m.ICMPID != nil {
		var typ, code uint8
		var id uint16
		switch proto {
		case unix.IPPROTO_ICMP:
			typ, code, id = o.Proto.ICMPType, o.Proto.ICMPCode, o.Proto.ICMPID
		case unix.IPPROTO_ICMPV6:
			typ, code, id = o.Proto.ICMPv6Type, o.Proto.ICMPv6Code, o.Proto.ICMPv6ID
		default:
			return false
		}
		if m.ICMPType != nil && *m.ICMPType != typ ||
			m.ICMPCode != nil && *m.ICMPCode != code ||
			m.ICMPID != nil && *m.ICMPID != id {
			return false
		}
	}

	// Mark: (ct->mark & mask) == value, the mask all ones when only the
	// value is given (ctnetlink_filter_match with CTA_MARK_MASK absent).
	if m.Mark != 0 || m.MarkMask != 0 {
		mask := uint32(0xffffffff)
		if m.MarkMask != 0 {
			mask = m.MarkMask
		}
		for bit := 0; bit < 32; bit++ {
			if mask>>bit&1 == 1 && f.Mark>>bit&1 != m.Mark>>bit&1 {
				return false
			}
			if mask>>bit&1 == 0 && m.Mark>>bit&1 == 1 {
				return false // a value bit outside the mask never matches
			}
		}
	}

	// Zones: a flow has one zone id and the directions it applies to.
	// The kernel sends CTA_ZONE when the zone applies to both directions
	// and CTA_TUPLE_ZONE inside the tuple of the one direction it applies
	// to. The zone filter (nf_ct_zone_equal_any) compares the id whatever
	// the direction; a direction's zone (nf_ct_zone_id) is the id when the
	// zone applies to that direction and 0 otherwise.
	var id, origZone, replyZone uint16
	switch {
	case f.Has(FlowAttrZone):
		id, origZone, replyZone = f.Zone, f.Zone, f.Zone
	case o.Has(TupleAttrZone):
		id, origZone = o.Zone, o.Zone
	case r.Has(TupleAttrZone):
		id, replyZone = r.Zone, r.Zone
	}
	if m.Zone != nil && *m.Zone != id {
		return false
	}
	if m.OrigZone != nil && *m.OrigZone != origZone {
		return false
	}
	if m.ReplyZone != nil && *m.ReplyZone != replyZone {
		return false
	}

	// Status: (ct->status & mask) == value.
	if m.StatusMask != 0 && uint32(f.Status)&uint32(m.StatusMask) != uint32(m.Status) {
		return false
	}

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

	// Protocol states: the flow is of that protocol and in one of the
	// listed states, wherever it stands in the list.
	if len(m.TCPStates) > 0 {
		in := false
		for i := len(m.TCPStates) - 1; i >= 0; i-- {
			in = in || m.TCPStates[i] == f.ProtoInfo.TCP.State
		}
		if proto != unix.IPPROTO_TCP || !in {
			return false
		}
	}
	if len(m.SCTPStates) > 0 {
		in := false
		for i := len(m.SCTPStates) - 1; i >= 0; i-- {
			in = in || m.SCTPStates[i] == f.ProtoInfo.SCTP.State
		}
		if proto != unix.IPPROTO_SCTP || !in {
			return false
		}
	}
	if len(m.DCCPStates) > 0 {
		in := false
		for i := len(m.DCCPStates) - 1; i >= 0; i-- {
			in = in || m.DCCPStates[i] == f.ProtoInfo.DCCP.State
		}
		if proto != unix.IPPROTO_DCCP || !in {
			return false
		}
	}

	if m.Helper != "" {
		if f.Help == nil || f.Help.Name != m.Helper {
			return false
		}
	}
	return m.Func == nil || m.Func(f)
}

// oracleEndpoints matches one direction's addresses and ports.
func oracleEndpoints(e *Endpoints, t *Tuple) bool {
	src, dst := t.IP.V4Src, t.IP.V4Dst
	if !src.IsValid() {
		src, dst = t.IP.V6Src, t.IP.V6Dst
	}
	if e.Src.IsValid() && !oracleInPrefix(e.Src, src) {
		return false
	}
	if e.Dst.IsValid() && !oracleInPrefix(e.Dst, dst) {
		return false
	}
	if e.SrcPort != nil && *e.SrcPort != t.Proto.SrcPort {
		return false
	}
	if e.DstPort != nil && *e.DstPort != t.Proto.DstPort {
		return false
	}
	return true
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
func oracleSelectsAny(ms []Matcher, f *Flow) bool {
	for i := range ms {
		if oracleSelects(&ms[i], f) {
			return true
		}
	}
	return false
}
