package ctnetlink

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// flushFilter returns the kernel flush that does exactly what m selects,
// if the kernel can evaluate every field m sets.
func (m *Matcher) flushFilter(k Capabilities) (*FlushFilter, bool) {
	if m.userSpaceOnly() {
		return nil, false
	}
	if (m.Mark != 0 || m.MarkMask != 0) && !k.FlushMark {
		return nil, false
	}
	if m.StatusMask != 0 && !k.FlushStatus {
		return nil, false
	}
	if m.Zone != nil && !k.FlushZone {
		return nil, false
	}
	f := &FlushFilter{Family: m.Family, Mark: m.Mark, MarkMask: m.MarkMask, Status: m.Status, StatusMask: m.StatusMask, Zone: m.Zone}
	if m.Proto != 0 || !m.Orig.empty() || m.ICMPType != nil || m.ICMPCode != nil || m.ICMPID != nil {
		tf, ok := m.flushTuple(k)
		if !ok {
			return nil, false
		}
		if fam := tf.family(); fam != 0 {
			if f.Family != 0 && f.Family != fam {
				return nil, false
			}
			f.Family = fam
		}
		f.Orig = tf
	}
	if f.Family != 0 && f.Orig == nil {
		// A flush applies its family only together with a tuple filter
		// (seen on 6.18): alone, or with mark, status or zone, it
		// removes the flows of both families.
		return nil, false
	}
	return f, true
}

// userSpaceOnly reports whether m sets a field that no kernel flush
// evaluates.
func (m *Matcher) userSpaceOnly() bool {
	return m.Func != nil || !m.Reply.empty() || m.OrigZone != nil || m.ReplyZone != nil || len(m.LabelsAll) > 0 || len(m.LabelsAny) > 0 ||
		len(m.TCPStates) > 0 || len(m.SCTPStates) > 0 || len(m.DCCPStates) > 0 || m.Helper != ""
}

// flushTuple returns the tuple filter of a flush for m's protocol, original
// addresses, ports and ICMP fields, if the kernel evaluates them correctly.
func (m *Matcher) flushTuple(k Capabilities) (*TupleFilter, bool) {
	if !k.FlushTuple {
		return nil, false
	}
	tf := &TupleFilter{Proto: m.Proto, SrcPort: m.Orig.SrcPort, DstPort: m.Orig.DstPort, ICMPType: m.ICMPType, ICMPCode: m.ICMPCode, ICMPID: m.ICMPID}
	var ok bool
	if m.Orig.Src.IsValid() {
		if tf.Src, ok = hostAddr(m.Orig.Src); !ok {
			return nil, false
		}
	}
	if m.Orig.Dst.IsValid() {
		if tf.Dst, ok = hostAddr(m.Orig.Dst); !ok {
			return nil, false
		}
	}
	if (tf.SrcPort != nil || tf.DstPort != nil) && tf.Proto != unix.IPPROTO_TCP && tf.Proto != unix.IPPROTO_UDP {
		// Seen on 6.18: a flush with SCTP ports removes every SCTP
		// flow. Ports are trusted to the kernel for TCP and UDP only.
		return nil, false
	}
	if (tf.ICMPType != nil || tf.ICMPCode != nil || tf.ICMPID != nil) && tf.Proto != unix.IPPROTO_ICMP && tf.Proto != unix.IPPROTO_ICMPV6 {
		// Seen on 6.18: a flush with ICMP fields and no ICMP
		// protocol fails with EINVAL.
		return nil, false
	}
	if tf.family() == unix.AF_INET6 {
		// Seen on 6.18: a flush with an IPv6 address in its tuple
		// filter removes nearly every IPv6 flow.
		return nil, false
	}
	return tf, true
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
	Matcher int
	Filter  FlushFilter
}

// PlannedScan is the shared dump pass.
type PlannedScan struct {
	// Matchers are the indexes of the matchers the scan evaluates; empty
	// means no dump runs.
	Matchers []int
	// Dump is the kernel-side filter that narrows the dump.
	Dump DumpFilter
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
	fmt.Fprintf(&b, "scan: one dump (%s) for %d matchers: ", describeDump(&p.Scan.Dump), len(p.Scan.Matchers))
	for _, k := range []string{"orig-dst+port", "reply-src+port", "orig-dst", "orig-src", "reply-src", "reply-dst"} {
		if n := p.Scan.Indexed[k]; n > 0 {
			fmt.Fprintf(&b, "%d by %s, ", n, k)
		}
	}
	fmt.Fprintf(&b, "%d tested against every flow\n", p.Scan.Linear)
	return b.String()
}

func describeFlush(f *FlushFilter) string {
	var parts []string
	switch f.Family {
	case unix.AF_INET:
		parts = append(parts, "ipv4")
	case unix.AF_INET6:
		parts = append(parts, "ipv6")
	default:
		parts = append(parts, "ipv4+ipv6")
	}
	if f.Mark != 0 || f.MarkMask != 0 {
		parts = append(parts, fmt.Sprintf("mark %#x/%#x", f.Mark, f.MarkMask))
	}
	if f.StatusMask != 0 {
		parts = append(parts, fmt.Sprintf("status %v/%v", f.Status, f.StatusMask))
	}
	if f.Zone != nil {
		parts = append(parts, fmt.Sprintf("zone %d", *f.Zone))
	}
	if f.Orig != nil {
		parts = append(parts, "orig tuple "+describeTuple(f.Orig))
	}
	return strings.Join(parts, ", ")
}

func describeTuple(t *TupleFilter) string {
	var parts []string
	if t.Proto != 0 {
		parts = append(parts, fmt.Sprintf("proto %d", t.Proto))
	}
	if t.Src.IsValid() {
		parts = append(parts, "src "+t.Src.String())
	}
	if t.Dst.IsValid() {
		parts = append(parts, "dst "+t.Dst.String())
	}
	if t.SrcPort != nil {
		parts = append(parts, fmt.Sprintf("sport %d", *t.SrcPort))
	}
	if t.DstPort != nil {
		parts = append(parts, fmt.Sprintf("dport %d", *t.DstPort))
	}
	return "(" + strings.Join(parts, " ") + ")"
}

func describeDump(d *DumpFilter) string {
	f := FlushFilter{Family: d.Family, Mark: d.Mark, MarkMask: d.MarkMask, Status: d.Status, StatusMask: d.StatusMask, Zone: d.Zone, Orig: d.Orig}
	return describeFlush(&f)
}

func (c *Conn) plan(ctx context.Context, matchers []Matcher, o *CleanupOptions) (*Plan, *matcherIndex, error) {
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
				if f.Family != 0 || (k.FlushUnspec && f.Orig == nil) {
					p.Flushes = append(p.Flushes, PlannedFlush{Matcher: i, Filter: *f})
					continue
				}
				// One request per family: the kernel evaluates a tuple
				// filter for one family at a time, and some kernels
				// refuse a flush of both families at once.
				for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
					ff := *f
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
func commonDumpFilter(matchers []Matcher, scan []int, k Capabilities, noKernel bool) DumpFilter {
	var d DumpFilter
	if len(scan) == 0 || noKernel {
		return d
	}
	first := &matchers[scan[0]]
	sameFamily, sameMark := first.Family != 0, (first.Mark != 0 || first.MarkMask != 0) && k.DumpMark
	sameProto := first.Proto != 0 && k.DumpTuple
	sameStatus := first.StatusMask != 0 && k.DumpStatus
	for _, i := range scan[1:] {
		m := &matchers[i]
		sameFamily = sameFamily && m.Family == first.Family
		sameMark = sameMark && m.Mark == first.Mark && m.MarkMask == first.MarkMask
		sameProto = sameProto && m.Proto == first.Proto
		sameStatus = sameStatus && m.Status == first.Status && m.StatusMask == first.StatusMask
	}
	if sameFamily {
		d.Family = first.Family
	}
	if sameMark {
		d.Mark, d.MarkMask = first.Mark, first.MarkMask
	}
	if sameProto {
		// The kernel sends only flows of this protocol, which is most of
		// a dump's cost when the others are many.
		d.Orig = &TupleFilter{Proto: first.Proto}
	}
	if sameStatus {
		d.Status, d.StatusMask = first.Status, first.StatusMask
	}
	return d
}
