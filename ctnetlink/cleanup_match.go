package ctnetlink

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// Endpoints matches the addresses and ports of one direction's tuple. A
// field takes part when set: a valid prefix, a non-nil port.
type Endpoints struct {
	Src, Dst         netip.Prefix
	SrcPort, DstPort *uint16
}

// Matcher selects flows for Cleanup. Every field that is set must match
// (AND); Cleanup deletes the flows that any of its matchers selects (OR).
// The zero Matcher selects every flow.
//
// The fields are what the planner understands: they decide whether the
// kernel can flush the matcher's flows by itself, narrow the shared dump in
// the kernel, and index the matcher so that a flow is tested only against
// the matchers it may concern. Func adds what the fields cannot express.
type Matcher struct {
	// Family is unix.AF_INET or unix.AF_INET6; 0 matches both.
	Family uint8
	// Proto is the layer 4 protocol number; 0 matches any.
	Proto uint8
	// Orig and Reply match the original and reply tuples.
	Orig, Reply Endpoints
	// ICMPType, ICMPCode and ICMPID match the original tuple's ICMP or
	// ICMPv6 fields; flows of other protocols, which have none, do not
	// match.
	ICMPType, ICMPCode *uint8
	ICMPID             *uint16
	// Mark matches flows whose mark ANDed with MarkMask equals Mark. It
	// applies when either is non-zero; a zero MarkMask means all bits.
	Mark, MarkMask uint32
	// Zone matches the flow's zone id as the kernel's filters read it (see
	// Flow.ZoneID), so a flow whose zone applies to one direction only
	// matches that zone, not zone 0; OrigZone and ReplyZone match the
	// zone each direction is in: the flow's zone when it applies to that
	// direction (CTA_ZONE for both, CTA_TUPLE_ZONE for one), else 0.
	Zone, OrigZone, ReplyZone *uint16
	// LabelsAll matches flows that have every bit set here; LabelsAny
	// flows that have at least one. Both are bitmaps in the kernel's
	// layout: label n is bit n%8 of byte n/8.
	LabelsAll, LabelsAny []byte
	// Status matches flows whose status ANDed with StatusMask equals Status,
	// when StatusMask is non-zero.
	Status, StatusMask Status
	// TCPStates, SCTPStates and DCCPStates match flows in any of the listed
	// protocol states.
	TCPStates  []TCPState
	SCTPStates []SCTPState
	DCCPStates []DCCPState
	// Helper matches the name of the flow's helper.
	Helper string
	// Func, if not nil, is ANDed with the fields: a flow that every set
	// field matches is selected only if Func also returns true. It is
	// called last, in user space, from the goroutine that called Cleanup
	// (never concurrently for one Cleanup), and must not keep f, which
	// the dump reuses for the next flow, nor change it.
	//
	// A matcher with Func never becomes a kernel flush, since the kernel
	// cannot evaluate it; it joins the shared dump, where its fields still
	// narrow the dump and index it. Setting the fields that Func implies
	// (for example Proto and Orig.Dst when Func checks a NAT mapping of
	// such flows) makes that pass cheaper without changing what is
	// selected.
	Func func(f *Flow) bool
}

// Match reports whether the matcher selects flow f: every field that is
// set matches, then Func, if any, returns true.
func (m *Matcher) Match(f *Flow) bool {
	if m.Family != 0 && m.Family != f.Family() {
		return false
	}
	if m.Proto != 0 && m.Proto != f.TupleOrig.Proto.Num {
		return false
	}
	if !m.Orig.match(&f.TupleOrig) || !m.Reply.match(&f.TupleReply) {
		return false
	}
	if m.ICMPType != nil || m.ICMPCode != nil || m.ICMPID != nil {
		if p := f.TupleOrig.Proto.Num; p != unix.IPPROTO_ICMP && p != unix.IPPROTO_ICMPV6 {
			return false // only ICMP and ICMPv6 tuples have these fields
		}
		tf := TupleFilter{Proto: f.TupleOrig.Proto.Num, ICMPType: m.ICMPType, ICMPCode: m.ICMPCode, ICMPID: m.ICMPID}
		if !tf.Match(&f.TupleOrig) {
			return false
		}
	}
	if !markMatch(f.Mark, m.Mark, m.MarkMask) {
		return false
	}
	if m.Zone != nil && *m.Zone != f.ZoneID() {
		return false
	}
	origZone, replyZone := f.TupleOrig.Zone, f.TupleReply.Zone
	if f.Has(FlowAttrZone) {
		origZone, replyZone = f.Zone, f.Zone
	}
	if m.OrigZone != nil && *m.OrigZone != origZone {
		return false
	}
	if m.ReplyZone != nil && *m.ReplyZone != replyZone {
		return false
	}
	if m.StatusMask != 0 && f.Status&m.StatusMask != m.Status {
		return false
	}
	if len(m.LabelsAll) > 0 || len(m.LabelsAny) > 0 {
		if !labelsMatch(f.Labels, m.LabelsAll, m.LabelsAny) {
			return false
		}
	}
	if len(m.TCPStates) > 0 && (f.TupleOrig.Proto.Num != unix.IPPROTO_TCP || !contains(m.TCPStates, f.ProtoInfo.TCP.State)) {
		return false
	}
	if len(m.SCTPStates) > 0 && (f.TupleOrig.Proto.Num != unix.IPPROTO_SCTP || !contains(m.SCTPStates, f.ProtoInfo.SCTP.State)) {
		return false
	}
	if len(m.DCCPStates) > 0 && (f.TupleOrig.Proto.Num != unix.IPPROTO_DCCP || !contains(m.DCCPStates, f.ProtoInfo.DCCP.State)) {
		return false
	}
	if m.Helper != "" && (f.Help == nil || m.Helper != f.Help.Name) {
		return false
	}
	return m.Func == nil || m.Func(f)
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

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

func (e *Endpoints) match(t *Tuple) bool {
	if e.Src.IsValid() && !e.Src.Contains(t.Src()) {
		return false
	}
	if e.Dst.IsValid() && !e.Dst.Contains(t.Dst()) {
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

func (e *Endpoints) empty() bool {
	return !e.Src.IsValid() && !e.Dst.IsValid() && e.SrcPort == nil && e.DstPort == nil
}

func hostAddr(p netip.Prefix) (netip.Addr, bool) {
	if p.IsValid() && p.Bits() == p.Addr().BitLen() {
		return p.Addr(), true
	}
	return netip.Addr{}, false
}

// matcherIndex finds the matchers that may select a flow: by hash on the
// most selective exact field each matcher has, or by testing every flow.
type matcherIndex struct {
	origDstPort  map[addrPortKey][]int
	replySrcPort map[addrPortKey][]int
	byAddr       [4]map[netip.Addr][]int // orig-dst, orig-src, reply-src, reply-dst
	linear       []int
}

type addrPortKey struct {
	addr  netip.Addr
	port  uint16
	proto uint8
}

var addrIndexNames = [4]string{"orig-dst", "orig-src", "reply-src", "reply-dst"}

func newMatcherIndex(matchers []Matcher, scan []int) *matcherIndex {
	x := &matcherIndex{origDstPort: map[addrPortKey][]int{}, replySrcPort: map[addrPortKey][]int{}}
	for i := range x.byAddr {
		x.byAddr[i] = map[netip.Addr][]int{}
	}
	for _, i := range scan {
		m := &matchers[i]
		if a, ok := hostAddr(m.Orig.Dst); ok && m.Orig.DstPort != nil && m.Proto != 0 {
			k := addrPortKey{a, *m.Orig.DstPort, m.Proto}
			x.origDstPort[k] = append(x.origDstPort[k], i)
			continue
		}
		if a, ok := hostAddr(m.Reply.Src); ok && m.Reply.SrcPort != nil && m.Proto != 0 {
			k := addrPortKey{a, *m.Reply.SrcPort, m.Proto}
			x.replySrcPort[k] = append(x.replySrcPort[k], i)
			continue
		}
		placed := false
		for j, p := range []netip.Prefix{m.Orig.Dst, m.Orig.Src, m.Reply.Src, m.Reply.Dst} {
			if a, ok := hostAddr(p); ok {
				x.byAddr[j][a] = append(x.byAddr[j][a], i)
				placed = true
				break
			}
		}
		if !placed {
			x.linear = append(x.linear, i)
		}
	}
	return x
}

func (x *matcherIndex) counts() map[string]int {
	out := map[string]int{}
	add := func(name string, n int) {
		if n > 0 {
			out[name] += n
		}
	}
	for _, l := range x.origDstPort {
		add("orig-dst+port", len(l))
	}
	for _, l := range x.replySrcPort {
		add("reply-src+port", len(l))
	}
	for j, m := range x.byAddr {
		for _, l := range m {
			add(addrIndexNames[j], len(l))
		}
	}
	return out
}

// candidates appends the matchers that may select f, in ascending order of
// index within each lookup.
func (x *matcherIndex) candidates(f *Flow, out []int) []int {
	proto := f.TupleOrig.Proto.Num
	if len(x.origDstPort) > 0 {
		out = append(out, x.origDstPort[addrPortKey{f.TupleOrig.Dst(), f.TupleOrig.Proto.DstPort, proto}]...)
	}
	if len(x.replySrcPort) > 0 {
		out = append(out, x.replySrcPort[addrPortKey{f.TupleReply.Src(), f.TupleReply.Proto.SrcPort, proto}]...)
	}
	addrs := [4]netip.Addr{f.TupleOrig.Dst(), f.TupleOrig.Src(), f.TupleReply.Src(), f.TupleReply.Dst()}
	for j, m := range x.byAddr {
		if len(m) > 0 {
			out = append(out, m[addrs[j]]...)
		}
	}
	return append(out, x.linear...)
}
