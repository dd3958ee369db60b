package ctnetlink

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// flushFilter returns the selector of a kernel flush that removes exactly
// what m selects, if the kernel evaluates every condition m sets: m itself,
// with the family its addresses imply.
func (m *Selector) flushFilter(k Capabilities) (Selector, bool) {
	if m.Types.set() || m.userSpaceOnly() || m.ReplySrc.set() || m.ReplyDst.set() || m.ReplySrcPort.set() || m.ReplyDstPort.set() {
		return Selector{}, false
	}
	for _, c := range []struct {
		set, single, can bool
	}{
		{m.Mark.set(), len(m.Mark.Values) == 1 && !m.Mark.Negate, k.FlushMark},
		{m.Status.set(), len(m.Status.Values) == 1 && !m.Status.Negate, k.FlushStatus},
		{m.Zone.set(), len(m.Zone.Values) == 1 && !m.Zone.Negate, k.FlushZone},
	} {
		if c.set && !(c.single && c.can) {
			return Selector{}, false
		}
	}
	f := *m
	tuple := m.tupleConds()
	if tuple {
		fam, ok := m.flushTuple(k)
		if !ok {
			return Selector{}, false
		}
		if fam != 0 {
			if f.Family != 0 && f.Family != fam {
				return Selector{}, false
			}
			f.Family = fam
		}
	}
	if f.Family != 0 && !tuple {
		// A flush applies its family only together with a tuple filter
		// (seen on 6.18): alone, or with mark, status or zone, it
		// removes the flows of both families.
		return Selector{}, false
	}
	return f, true
}

// flushTuple reports whether the kernel evaluates m's conditions on the
// protocol, original addresses, ports and ICMP fields correctly in a
// flush, and returns the family of the addresses.
func (m *Selector) flushTuple(k Capabilities) (uint8, bool) {
	if !k.FlushTuple {
		return 0, false
	}
	for _, c := range []struct{ set, single bool }{
		{m.Proto.set(), len(m.Proto.Values) == 1 && !m.Proto.Negate},
		{m.OrigSrcPort.set(), len(m.OrigSrcPort.Values) == 1 && !m.OrigSrcPort.Negate},
		{m.OrigDstPort.set(), len(m.OrigDstPort.Values) == 1 && !m.OrigDstPort.Negate},
		{m.ICMPType.set(), len(m.ICMPType.Values) == 1 && !m.ICMPType.Negate},
		{m.ICMPCode.set(), len(m.ICMPCode.Values) == 1 && !m.ICMPCode.Negate},
		{m.ICMPID.set(), len(m.ICMPID.Values) == 1 && !m.ICMPID.Negate},
	} {
		if c.set && !c.single {
			return 0, false
		}
	}
	var fam uint8
	for _, c := range []*OneOf[netip.Prefix]{&m.OrigSrc, &m.OrigDst} {
		if !c.set() {
			continue
		}
		a, ok := singleHost(c)
		if !ok {
			return 0, false
		}
		f := uint8(unix.AF_INET6)
		if a.Is4() {
			f = unix.AF_INET
		}
		if fam != 0 && fam != f {
			return 0, false
		}
		fam = f
	}
	proto, _ := m.Proto.single()
	if (m.OrigSrcPort.set() || m.OrigDstPort.set()) && proto != unix.IPPROTO_TCP && proto != unix.IPPROTO_UDP {
		// Seen on 6.18: a flush with SCTP ports removes every SCTP
		// flow. Ports are trusted to the kernel for TCP and UDP only.
		return 0, false
	}
	if m.icmpConds() && proto != unix.IPPROTO_ICMP && proto != unix.IPPROTO_ICMPV6 {
		// Seen on 6.18: a flush with ICMP fields and no ICMP
		// protocol fails with EINVAL.
		return 0, false
	}
	if fam == unix.AF_INET6 {
		// Seen on 6.18: a flush with an IPv6 address in its tuple
		// filter removes nearly every IPv6 flow.
		return 0, false
	}
	return fam, true
}

// Plan is what Cleanup does, worked out before it does it.
type Plan struct {
	// Capabilities are the kernel filters detected on the Conn.
	Capabilities Capabilities
	// Flushes are the matchers the kernel evaluates itself: one flush
	// request per matcher (per matcher and address family on kernels
	// without Capabilities.FlushUnspec).
	Flushes []PlannedFlush
	// Notes explain choices of the planner, such as matchers the kernel
	// could flush that go to the scan instead.
	Notes []string
	// Scan holds the indexes of the matchers evaluated over one shared
	// dump, and how they are looked up.
	Scan PlannedScan
}

// PlannedFlush is one kernel flush request.
type PlannedFlush struct {
	// Matcher is the index of the selector the flush carries out.
	Matcher int
	// Filter is what the kernel flushes: the selector, with the family
	// of the request.
	Filter Selector
}

// PlannedScan is the shared dump pass.
type PlannedScan struct {
	// Matchers are the indexes of the matchers the scan evaluates; empty
	// means no dump runs.
	Matchers []int
	// Dump is the kernel-side filter that narrows the dump.
	Dump Selector
	// Indexed counts matchers looked up by hash, per key kind; Linear
	// counts those tested against every flow.
	Indexed map[string]int
	Linear  int
}

func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", p.Capabilities)
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	fmt.Fprintf(&b, "kernel flushes: %d\n", len(p.Flushes))
	for _, f := range p.Flushes {
		fmt.Fprintf(&b, "  matcher %d: flush %s\n", f.Matcher, describeFlush(&f.Filter))
	}
	if len(p.Scan.Matchers) == 0 {
		b.WriteString("scan: none\n")
		return b.String()
	}
	fmt.Fprintf(&b, "scan: one dump (%s) for %d matchers: ", describeFlush(&p.Scan.Dump), len(p.Scan.Matchers))
	for _, k := range []string{"orig-dst+port", "reply-src+port", "orig-dst", "orig-src", "reply-src", "reply-dst"} {
		if n := p.Scan.Indexed[k]; n > 0 {
			fmt.Fprintf(&b, "%d by %s, ", n, k)
		}
	}
	fmt.Fprintf(&b, "%d tested against every flow\n", p.Scan.Linear)
	return b.String()
}

func describeFlush(f *Selector) string {
	var parts []string
	switch f.Family {
	case unix.AF_INET:
		parts = append(parts, "ipv4")
	case unix.AF_INET6:
		parts = append(parts, "ipv6")
	default:
		parts = append(parts, "ipv4+ipv6")
	}
	if m, ok := f.Mark.single(); ok {
		parts = append(parts, fmt.Sprintf("mark %#x/%#x", m.Mark, m.mask()))
	}
	if m, ok := f.Status.single(); ok {
		parts = append(parts, fmt.Sprintf("status %v/%v", m.Status, m.mask()))
	}
	if z, ok := f.Zone.single(); ok {
		parts = append(parts, fmt.Sprintf("zone %d", z))
	}
	if f.tupleConds() {
		parts = append(parts, "orig tuple "+describeTuple(f))
	}
	return strings.Join(parts, ", ")
}

func describeTuple(f *Selector) string {
	var parts []string
	if p, ok := f.Proto.single(); ok {
		parts = append(parts, fmt.Sprintf("proto %d", p))
	}
	if a, ok := singleHost(&f.OrigSrc); ok {
		parts = append(parts, "src "+a.String())
	}
	if a, ok := singleHost(&f.OrigDst); ok {
		parts = append(parts, "dst "+a.String())
	}
	if p, ok := f.OrigSrcPort.single(); ok {
		parts = append(parts, fmt.Sprintf("sport %d", p))
	}
	if p, ok := f.OrigDstPort.single(); ok {
		parts = append(parts, fmt.Sprintf("dport %d", p))
	}
	return "(" + strings.Join(parts, " ") + ")"
}

func (c *Conn) plan(ctx context.Context, matchers []Selector, o *CleanupOptions) (*Plan, *matcherIndex, error) {
	for i := range matchers {
		if err := matchers[i].checkValues(); err != nil {
			return nil, nil, &Error{Op: "cleanup", Err: fmt.Errorf("matcher %d: %w", i, err)}
		}
	}
	k, err := c.Capabilities(ctx)
	if err != nil {
		return nil, nil, err
	}
	noKernel := o.NoKernelFilters
	// A flush cannot report the flows it removed to OnDelete.
	flush := !noKernel && o.OnDelete == nil
	p := &Plan{Capabilities: k, Scan: PlannedScan{Indexed: map[string]int{}}}
	var scan, flushable []int
	for i := range matchers {
		if flush {
			if f, ok := matchers[i].flushFilter(k); ok {
				flushable = append(flushable, i)
				if f.Family != 0 || (k.FlushUnspec && !f.tupleConds()) {
					p.Flushes = append(p.Flushes, PlannedFlush{Matcher: i, Filter: f})
					continue
				}
				// One request per family: the kernel evaluates a tuple
				// filter for one family at a time, and some kernels
				// refuse a flush of both families at once.
				for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
					ff := f
					ff.Family = fam
					p.Flushes = append(p.Flushes, PlannedFlush{Matcher: i, Filter: ff})
				}
				continue
			}
		}
		scan = append(scan, i)
	}
	// Each flush walks the whole table in the kernel, about a tenth of
	// what the shared dump costs. Past a few, one dump is cheaper: then
	// every matcher goes to the scan, where matchers are looked up by hash.
	limit := maxFlushes
	if len(scan) > 0 {
		limit = maxFlushesBesideScan
	}
	if len(p.Flushes) > limit {
		p.Notes = append(p.Notes, fmt.Sprintf("%d matchers the kernel could flush go to the scan: %d flush requests would each walk the whole table (the limit is %d)", len(flushable), len(p.Flushes), limit))
		p.Flushes = nil
		scan = append(scan, flushable...)
		slices.Sort(scan)
	}
	p.Scan.Matchers = scan
	idx := newMatcherIndex(matchers, scan)
	for kind, n := range idx.counts() {
		p.Scan.Indexed[kind] = n
	}
	p.Scan.Linear = len(idx.linear)
	p.Scan.Dump = commonDumpFilter(matchers, scan, k, noKernel)
	return p, idx, nil
}

// maxFlushes is the most kernel flush requests a Cleanup sends when no
// shared dump runs, maxFlushesBesideScan the most it sends beside one. A
// flush walks the table in the kernel at a tenth of the cost of the shared
// dump (250,000 flows: 55 ms against 550 ms on a 2-core machine); a matcher
// moved into the scan costs only its hash lookups and its deletes.
const (
	maxFlushes           = 8
	maxFlushesBesideScan = 2
)

// commonDumpFilter narrows the shared dump by what every scanned matcher
// requires.
func commonDumpFilter(matchers []Selector, scan []int, k Capabilities, noKernel bool) Selector {
	var d Selector
	if len(scan) == 0 || noKernel {
		return d
	}
	first := &matchers[scan[0]]
	mark, sameMark := first.Mark.single()
	sameMark = sameMark && k.DumpMark
	proto, sameProto := first.Proto.single()
	sameProto = sameProto && k.DumpTuple
	status, sameStatus := first.Status.single()
	sameStatus = sameStatus && k.DumpStatus
	sameFamily := first.Family != 0
	for _, i := range scan[1:] {
		m := &matchers[i]
		sameFamily = sameFamily && m.Family == first.Family
		v, ok := m.Mark.single()
		sameMark = sameMark && ok && v == mark
		p, ok := m.Proto.single()
		sameProto = sameProto && ok && p == proto
		s, ok := m.Status.single()
		sameStatus = sameStatus && ok && s == status
	}
	if sameFamily {
		d.Family = first.Family
	}
	if sameMark {
		d.Mark = Is(mark)
	}
	if sameProto {
		// The kernel sends only flows of this protocol, which is most of
		// a dump's cost when the others are many.
		d.Proto = Is(proto)
	}
	if sameStatus {
		d.Status = Is(status)
	}
	return d
}
