package ctnetlink

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/nfnl"
)

var zeroV4 = netip.AddrFrom4([4]byte{})

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

// flushFilter returns the kernel flush that does exactly what m selects,
// if the kernel can evaluate every field m sets.
func (m *Matcher) flushFilter(k Capabilities) (*FlushFilter, bool) {
	if m.Func != nil || !m.Reply.empty() || m.OrigZone != nil || m.ReplyZone != nil || len(m.LabelsAll) > 0 || len(m.LabelsAny) > 0 ||
		len(m.TCPStates) > 0 || len(m.SCTPStates) > 0 || len(m.DCCPStates) > 0 || m.Helper != "" {
		return nil, false
	}
	f := &FlushFilter{Family: m.Family, Mark: m.Mark, MarkMask: m.MarkMask, Status: m.Status, StatusMask: m.StatusMask, Zone: m.Zone}
	if (m.Mark != 0 || m.MarkMask != 0) && !k.FlushMark {
		return nil, false
	}
	if m.StatusMask != 0 && !k.FlushStatus {
		return nil, false
	}
	if m.Zone != nil && !k.FlushZone {
		return nil, false
	}
	if m.Proto != 0 || !m.Orig.empty() || m.ICMPType != nil || m.ICMPCode != nil || m.ICMPID != nil {
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

// CleanupOptions tune Cleanup. A nil *CleanupOptions means the defaults.
type CleanupOptions struct {
	// DryRun plans without deleting anything; the result carries the plan.
	DryRun bool
	// NoKernelFilters evaluates every matcher in user space over one dump,
	// even where the kernel could flush by itself. The table left behind is
	// the same; it exists for kernels whose filters misbehave, and for tests.
	NoKernelFilters bool
	// MaxSamples bounds the failed deletions kept with their errors; the
	// default, 0, keeps 5.
	MaxSamples int
	// OnDelete, if not nil, is called with each flow the scan deleted,
	// right after the kernel confirmed the deletion, in the order of the
	// dump. It is called from the goroutine that called Cleanup, never
	// concurrently, and never for a flow whose delete failed or that was
	// already gone (AlreadyGone). f is the flow as the dump returned it,
	// before its deletion; it is valid only during the call: copy it to
	// keep it.
	//
	// A kernel flush does not say which flows it removed, nor how many, so
	// with OnDelete set no matcher becomes a flush: every matcher goes
	// through the shared dump, and each deleted flow reaches OnDelete. The
	// table left behind is the same. While the scan runs, Cleanup holds at
	// most one window of deleted flows (a few thousand) for OnDelete.
	OnDelete func(f *Flow)
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

// CleanupResult counts what Cleanup did. Its size does not grow with the
// table: failures beyond Samples are only counted.
type CleanupResult struct {
	// Plan is what ran.
	Plan Plan
	// Flushes counts the kernel flush requests carried out. The kernel
	// does not say how many flows a flush removed.
	Flushes int
	// Scanned counts the flows the shared dump examined.
	Scanned int
	// Deleted counts the flows the scan deleted.
	Deleted int
	// AlreadyGone counts matching flows that were gone by the time their
	// delete arrived (ENOENT); this is not an error.
	AlreadyGone int
	// Failed counts the deletes and flushes that failed otherwise.
	Failed int
	// Samples holds the first few failures.
	Samples []CleanupError
}

// CleanupError is one failed delete or flush.
type CleanupError struct {
	// Matcher is the index of the matcher whose flush failed, or -1 for a
	// delete of the scan.
	Matcher int
	// Flow identifies the flow a failed delete was for.
	Flow Tuple
	Err  error
}

// Cleanup deletes the flows that any of the matchers selects, using the
// kernel where it can and one shared dump for the rest:
//
//  1. Each matcher whose every field the kernel can evaluate in a flush
//     (see Capabilities), and that has no Func, becomes one flush request
//     (one per address family on kernels that refuse a flush of both at
//     once), all pipelined in one write. With CleanupOptions.OnDelete or
//     NoKernelFilters set, no matcher does. Since every flush walks the
//     whole table in the kernel, more than 8 flush requests (2 when a
//     shared dump runs anyway) would cost more than one dump: then these
//     matchers join the dump instead, and Plan.Notes says so.
//  2. All other matchers share one streaming dump, narrowed in the kernel
//     by what they have in common (family, mark, protocol, status).
//     Matchers are indexed by exact host addresses and ports, so each flow
//     costs a few hash lookups and the pass is O(table + matches), not
//     O(table × matchers). Matching flows are deleted by tuple, zone and id
//     with pipelined requests while the dump streams.
//
// Memory is bounded whatever the table size: no copy of the table and no
// per-flow error list. Cancelling ctx stops promptly; the result then
// counts what was done and the error is the context's.
//
// If the kernel flags the dump as interrupted by a change of the table,
// Cleanup runs the scan once more and returns ErrDumpInterrupted only if
// that pass is interrupted too; the result counts both passes.
func (c *Conn) Cleanup(ctx context.Context, matchers []Matcher, opts *CleanupOptions) (CleanupResult, error) {
	var o CleanupOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = 5
	}
	var res CleanupResult
	plan, idx, err := c.plan(ctx, matchers, &o)
	if err != nil {
		return res, err
	}
	res.Plan = *plan
	if o.DryRun || len(matchers) == 0 {
		return res, nil
	}
	sample := func(e CleanupError) {
		res.Failed++
		if len(res.Samples) < o.MaxSamples {
			res.Samples = append(res.Samples, e)
		}
	}
	if err := c.runFlushes(ctx, plan.Flushes, &res, sample); err != nil {
		return res, err
	}
	if len(plan.Scan.Matchers) == 0 {
		return res, nil
	}
	err = c.runScan(ctx, matchers, plan, idx, o.OnDelete, &res, sample)
	if errors.Is(err, ErrDumpInterrupted) {
		// The table changed under the dump; one more pass catches what it
		// may have missed. Flows deleted already no longer match.
		err = c.runScan(ctx, matchers, plan, idx, o.OnDelete, &res, sample)
	}
	return res, err
}

// Plan works out what Cleanup would do with the same options, without
// doing it.
func (c *Conn) Plan(ctx context.Context, matchers []Matcher, opts *CleanupOptions) (*Plan, error) {
	var o CleanupOptions
	if opts != nil {
		o = *opts
	}
	p, _, err := c.plan(ctx, matchers, &o)
	return p, err
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

// runFlushes sends every planned flush, pipelined.
func (c *Conn) runFlushes(ctx context.Context, flushes []PlannedFlush, res *CleanupResult, sample func(CleanupError)) error {
	if len(flushes) == 0 {
		return nil
	}
	s, err := c.get()
	if err != nil {
		return &Error{Op: "cleanup", Err: err}
	}
	p, err := newPipeline(s)
	if err != nil {
		s.Discard()
		c.put(s)
		return &Error{Op: "cleanup", Err: err}
	}
	defer c.put(s)
	stop := s.Watch(ctx)
	defer stop()
	reqs := make([]Flow, len(flushes))
	fams := make([]uint8, len(flushes))
	for i := range flushes {
		fams[i], reqs[i] = flushRequest(&flushes[i].Filter)
	}
	for start := 0; start < len(flushes); {
		sent, err := p.run(ctx, len(flushes)-start, MsgDelete, 0, func(i int) (uint8, *Flow) {
			return fams[start+i], &reqs[start+i]
		}, func(i int, e *nfnl.Error, req []byte) {
			if e.Errno == 0 {
				res.Flushes++
				return
			}
			sample(CleanupError{Matcher: flushes[start+i].Matcher, Err: opError("flush", kernelError(e), req, schemaFlow)})
		})
		if err != nil {
			s.Discard()
			return &Error{Op: "cleanup", Err: err}
		}
		start += sent
	}
	return nil
}

// flushRequest returns the nfgenmsg family and attributes of a flush.
func flushRequest(f *FlushFilter) (uint8, Flow) {
	df := DumpFilter{Family: f.Family, Mark: f.Mark, MarkMask: f.MarkMask, Status: f.Status, StatusMask: f.StatusMask, Zone: f.Zone, Orig: f.Orig}
	fam, q := df.request()
	return fam, *q
}

// runScan streams one dump and deletes the flows that a scanned matcher
// selects, in pipelined windows on a second socket. With onDelete, each
// window also keeps the flows it deletes, to report those the kernel
// confirmed.
func (c *Conn) runScan(ctx context.Context, matchers []Matcher, plan *Plan, idx *matcherIndex, onDelete func(*Flow), res *CleanupResult, sample func(CleanupError)) error {
	ds, err := c.get()
	if err != nil {
		return &Error{Op: "cleanup", Err: err}
	}
	p, err := newPipeline(ds)
	if err != nil {
		ds.Discard()
		c.put(ds)
		return &Error{Op: "cleanup", Err: err}
	}
	defer c.put(ds)
	del := &deleter{p: p, window: make([]Flow, 0, p.window), onDelete: onDelete}
	if onDelete != nil {
		del.flows = make([]Flow, 0, p.window)
		del.failed = make([]bool, p.window)
	}
	flush := func() error {
		stop := ds.Watch(ctx)
		defer stop()
		return del.flush(ctx, res, sample)
	}
	dump := plan.Scan.Dump
	var cands []int
	for f, err := range c.Dump(ctx, &dump) {
		if err != nil {
			if errors.Is(err, ErrDumpInterrupted) {
				if ferr := flush(); ferr != nil {
					return ferr
				}
				return ErrDumpInterrupted
			}
			return err
		}
		res.Scanned++
		cands = idx.candidates(f, cands[:0])
		for _, i := range cands {
			if matchers[i].Match(f) {
				del.add(f)
				break
			}
		}
		if len(del.window) == cap(del.window) {
			if err := flush(); err != nil {
				ds.Discard()
				return err
			}
		}
	}
	if err := flush(); err != nil {
		ds.Discard()
		return err
	}
	return nil
}

// deleter batches flow deletes for a pipeline.
type deleter struct {
	p      *pipeline
	window []Flow // lookup keys of the flows to delete
	// With onDelete: flows holds the window's flows as dumped, and failed
	// marks those whose delete did not succeed.
	onDelete func(*Flow)
	flows    []Flow
	failed   []bool
}

func (d *deleter) add(f *Flow) {
	d.window = append(d.window, lookupKey(f))
	if d.onDelete != nil {
		// Dump decodes every byte slice into fresh memory, so a shallow
		// copy stays valid after the dump reuses f.
		d.flows = append(d.flows, *f)
	}
}

func (d *deleter) flush(ctx context.Context, res *CleanupResult, sample func(CleanupError)) error {
	for start := 0; start < len(d.window); {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := len(d.window) - start
		if d.onDelete != nil {
			clear(d.failed[:n])
		}
		sent, err := d.p.run(ctx, n, MsgDelete, 0, func(i int) (uint8, *Flow) {
			f := &d.window[start+i]
			return flowFamily(f), f
		}, func(i int, e *nfnl.Error, req []byte) {
			if e.Errno != 0 && d.onDelete != nil {
				d.failed[i] = true
			}
			switch e.Errno {
			case 0:
				res.Deleted++
			case unix.ENOENT:
				res.AlreadyGone++
			default:
				sample(CleanupError{Matcher: -1, Flow: d.window[start+i].TupleOrig, Err: opError("delete", kernelError(e), req, schemaFlow)})
			}
		})
		if err != nil {
			return &Error{Op: "cleanup", Err: err}
		}
		if d.onDelete != nil {
			for i := 0; i < sent; i++ {
				if !d.failed[i] {
					d.onDelete(&d.flows[start+i])
				}
			}
		}
		start += sent
	}
	d.window = d.window[:0]
	if d.onDelete != nil {
		clear(d.flows) // drop references to label and helper memory
		d.flows = d.flows[:0]
	}
	return nil
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
