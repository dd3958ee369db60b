package ctnetlink

import (
	"net/netip"
)

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

func newMatcherIndex(matchers []Selector, scan []int) *matcherIndex {
	x := &matcherIndex{origDstPort: map[addrPortKey][]int{}, replySrcPort: map[addrPortKey][]int{}}
	for i := range x.byAddr {
		x.byAddr[i] = map[netip.Addr][]int{}
	}
	for _, i := range scan {
		m := &matchers[i]
		proto, hasProto := m.Proto.single()
		if a, ok := singleHost(&m.OrigDst); ok && hasProto && proto != 0 {
			if port, ok := m.OrigDstPort.single(); ok {
				k := addrPortKey{a, port, proto}
				x.origDstPort[k] = append(x.origDstPort[k], i)
				continue
			}
		}
		if a, ok := singleHost(&m.ReplySrc); ok && hasProto && proto != 0 {
			if port, ok := m.ReplySrcPort.single(); ok {
				k := addrPortKey{a, port, proto}
				x.replySrcPort[k] = append(x.replySrcPort[k], i)
				continue
			}
		}
		placed := false
		for j, c := range []*OneOf[netip.Prefix]{&m.OrigDst, &m.OrigSrc, &m.ReplySrc, &m.ReplyDst} {
			if a, ok := singleHost(c); ok {
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
