package ctnetlink

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// Match reports whether s selects flow f: every field that is set passes,
// then Func, if any, returns true. Types, which concerns events, is not
// tested. A nil Selector selects every flow. Match is the definition of a
// Selector: the kernel's filters and the BPF program of a Listener select
// no flow that Match rejects.
func (s *Selector) Match(f *Flow) bool {
	if s == nil {
		return true
	}
	if s.Family != 0 && s.Family != f.Family() {
		return false
	}
	orig, reply := &f.TupleOrig, &f.TupleReply
	if !s.Proto.test(func(p uint8) bool { return p == orig.Proto.Num }) {
		return false
	}
	if !matchPrefix(&s.OrigSrc, orig.Src()) || !matchPrefix(&s.OrigDst, orig.Dst()) ||
		!matchPrefix(&s.ReplySrc, reply.Src()) || !matchPrefix(&s.ReplyDst, reply.Dst()) {
		return false
	}
	if !matchPorts(&s.OrigSrcPort, &s.OrigDstPort, orig) || !matchPorts(&s.ReplySrcPort, &s.ReplyDstPort, reply) {
		return false
	}
	if !s.matchICMP(orig) || !s.matchMeta(f) || !s.matchStates(f) {
		return false
	}
	return s.Func == nil || s.Func(f)
}

// MatchEvent reports whether s selects ev: its type is in Types, and the
// flow of a flow event passes Match. Expectation events pass every
// condition but Types.
func (s *Selector) MatchEvent(ev *Event) bool {
	if s == nil {
		return true
	}
	if !s.Types.test(func(t EventType) bool { return t == ev.Type }) {
		return false
	}
	return ev.Flow == nil || s.Match(ev.Flow)
}

// matchPrefix evaluates an address condition: a is in one of the prefixes.
// An invalid address is in none.
func matchPrefix(c *OneOf[netip.Prefix], a netip.Addr) bool {
	return c.test(func(p netip.Prefix) bool { return a.IsValid() && p.Contains(a) })
}

// matchPorts evaluates the port conditions of one tuple. A tuple without
// ports has no value for them.
func matchPorts(src, dst *OneOf[uint16], t *Tuple) bool {
	p := &t.Proto
	return src.has(p.SrcPort, p.Has(TupleProtoAttrSrcPort)) && dst.has(p.DstPort, p.Has(TupleProtoAttrDstPort))
}

// matchICMP evaluates the ICMP conditions on the original tuple t: only
// ICMP and ICMPv6 tuples have a value for them.
func (s *Selector) matchICMP(t *Tuple) bool {
	if !s.icmpConds() {
		return true
	}
	p := &t.Proto
	switch p.Num {
	case unix.IPPROTO_ICMP:
		return s.ICMPType.has(p.ICMPType, p.Has(TupleProtoAttrICMPType)) &&
			s.ICMPCode.has(p.ICMPCode, p.Has(TupleProtoAttrICMPCode)) &&
			s.ICMPID.has(p.ICMPID, p.Has(TupleProtoAttrICMPID))
	case unix.IPPROTO_ICMPV6:
		return s.ICMPType.has(p.ICMPv6Type, p.Has(TupleProtoAttrICMPv6Type)) &&
			s.ICMPCode.has(p.ICMPv6Code, p.Has(TupleProtoAttrICMPv6Code)) &&
			s.ICMPID.has(p.ICMPv6ID, p.Has(TupleProtoAttrICMPv6ID))
	}
	return s.ICMPType.has(0, false) && s.ICMPCode.has(0, false) && s.ICMPID.has(0, false)
}

// matchMeta evaluates mark, status, zones, labels and helper.
func (s *Selector) matchMeta(f *Flow) bool {
	if !s.Mark.test(func(m MarkMatch) bool { return f.Mark&m.mask() == m.Mark&m.mask() }) {
		return false
	}
	if !s.Status.test(func(m StatusMatch) bool { return f.Status&m.mask() == m.Status&m.mask() }) {
		return false
	}
	if !s.Zone.has(f.ZoneID(), true) {
		return false
	}
	origZone, replyZone := f.TupleOrig.Zone, f.TupleReply.Zone
	if f.Has(FlowAttrZone) {
		origZone, replyZone = f.Zone, f.Zone
	}
	if !s.OrigZone.has(origZone, true) || !s.ReplyZone.has(replyZone, true) {
		return false
	}
	if (len(s.LabelsAll) > 0 || len(s.LabelsAny) > 0) && !labelsMatch(f.Labels, s.LabelsAll, s.LabelsAny) {
		return false
	}
	return s.Helper == "" || f.Help != nil && s.Helper == f.Help.Name
}

// matchStates evaluates the protocol states: only flows of the protocol
// have a state.
func (s *Selector) matchStates(f *Flow) bool {
	p := f.TupleOrig.Proto.Num
	return s.TCPStates.has(f.ProtoInfo.TCP.State, p == unix.IPPROTO_TCP) &&
		s.SCTPStates.has(f.ProtoInfo.SCTP.State, p == unix.IPPROTO_SCTP) &&
		s.DCCPStates.has(f.ProtoInfo.DCCP.State, p == unix.IPPROTO_DCCP)
}

// labelsMatch reports whether the label bitmap have has every bit of all
// and, if anyOf has a bit, at least one bit of anyOf.
func labelsMatch(have, all, anyOf []byte) bool {
	for i, b := range all {
		if b != 0 && (i >= len(have) || have[i]&b != b) {
			return false
		}
	}
	if len(anyOf) == 0 {
		return true
	}
	for i, b := range anyOf {
		if i < len(have) && have[i]&b != 0 {
			return true
		}
	}
	return false
}
