package main

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// delete removes the flows that match, as conntrack -D, with
// ctnetlink's Cleanup: one streaming dump, narrowed in the kernel by what
// the matcher's fields allow, with pipelined deletions by tuple, zone and
// id. Each flow the kernel confirms deleted is printed as conntrack prints
// it, in dump order. Memory does not grow with the table.
//
// --dry-run prints the plan instead and deletes nothing. --kernel-flush
// lets the kernel flush by itself when it can evaluate the whole filter;
// it then prints no flows and says that the count is unknown.
func (a *app) delete(c *cmdLine) (int, error) {
	if err := c.checkNetmask(); err != nil {
		return 0, err
	}
	m, exact := c.matcher()
	if !c.kernelFlush || !exact {
		m.Func = c.matches
	}
	matchers := []ctnetlink.Selector{m}
	opts := &ctnetlink.CleanupOptions{}
	var l *lister
	if !c.kernelFlush {
		p := c.printer()
		p.labels, p.showLabels, p.ktimestamp = nil, false, false
		// conntrack 1.4.7 prints the flows it deletes as XML without the
		// document's header and footer: the lister starts open and is
		// never closed.
		l = &lister{a: a, c: c, p: p, xmlOpen: true}
		msg := msgNone
		if c.output&outSave != 0 {
			msg = msgDestroy
		}
		opts.OnDelete = func(f *ctnetlink.Flow) { l.print(f, msg) }
	}
	if c.dryRun {
		return 0, a.deletePlan(c, matchers, opts, exact)
	}
	res, err := a.conn.Cleanup(a.ctx, matchers, opts)
	// A dump interrupted twice by table changes ends the deletion as
	// conntrack's does: with what was deleted so far and no error.
	if err != nil && !errors.Is(err, ctnetlink.ErrDumpInterrupted) {
		return res.Deleted, opFailed(err, c.cmd)
	}
	if res.Failed > 0 {
		return res.Deleted, opFailed(res.Samples[0].Err, c.cmd)
	}
	if res.Flushes > 0 {
		// A flush does not report how many flows it removed: say so
		// rather than print a count.
		a.summarised, a.status = true, 0
		fmt.Fprintf(a.stderr, "%s: the kernel flushed the matching flow entries (%d requests); the kernel does not report how many.\n", versionString, res.Flushes)
		if res.Deleted > 0 {
			fmt.Fprintf(a.stderr, "%s: %d more flow entries have been deleted one by one.\n", versionString, res.Deleted)
		}
	}
	return res.Deleted, nil
}

// deletePlan prints what -D would do, and how many flows match now, and
// deletes nothing.
func (a *app) deletePlan(c *cmdLine, matchers []ctnetlink.Selector, opts *ctnetlink.CleanupOptions, exact bool) error {
	plan, err := a.conn.Plan(a.ctx, matchers, opts)
	if err != nil {
		return opFailed(err, c.cmd)
	}
	a.out.WriteString(plan.String())
	flushed := map[int]bool{}
	for _, f := range plan.Flushes {
		flushed[f.Matcher] = true
	}
	for i := range matchers {
		var how string
		switch {
		case flushed[i]:
			how = "kernel flush"
		case !c.kernelFlush:
			how = "scan, to print each deleted flow (a kernel flush does not report what it removes; see --kernel-flush)"
		case !exact:
			how = "scan, since the kernel cannot evaluate every filter given (NAT, netmask, labels, id, timeout or GRE keys)"
		default:
			how = "scan, since this kernel cannot flush by these filters"
		}
		fmt.Fprintf(a.out, "matcher %d: %s\n", i, how)
	}
	// Count what matches now, with conntrack's own filter.
	m := matchers[0]
	m.Func = c.matches
	n := 0
	for f, err := range a.conn.Dump(a.ctx, &ctnetlink.Selector{Family: m.Family}) {
		if err != nil {
			if errors.Is(err, ctnetlink.ErrDumpInterrupted) {
				break
			}
			return opFailed(err, c.cmd)
		}
		if m.Match(f) {
			n++
		}
	}
	fmt.Fprintf(a.out, "dry run: %d flow entries match; nothing has been deleted.\n", n)
	a.summarised, a.status = true, 0
	return nil
}

// matcher returns the command line's filter as a Cleanup matcher, without
// Func. Every field it sets is a condition that c.matches requires too, so
// with c.matches as Func the fields only narrow the dump in the kernel and
// index the matcher: what is selected stays what c.matches selects. exact
// reports whether the fields alone select what c.matches selects, so that
// the kernel may evaluate them without c.matches.
func (c *cmdLine) matcher() (m ctnetlink.Selector, exact bool) {
	exact = c.matchAddrs(&m)
	exact = c.matchL4(&m) && exact
	exact = c.matchMeta(&m) && exact
	return m, exact
}

// matchAddrs sets the family, protocol and addresses of m, and reports
// whether they select exactly what c.matches does.
func (c *cmdLine) matchAddrs(m *ctnetlink.Selector) (exact bool) {
	exact = true
	opt := func(o int) bool { return c.options&bit(o) != 0 }
	o, r := &c.tmpl.TupleOrig, &c.tmpl.TupleReply

	m.Family = c.family
	if c.proto != nil {
		m.Proto = ctnetlink.Protocol(c.protoNum)
	}
	// An original address with --mask-src or --mask-dst is a network.
	orig := func(addr, network, mask netip.Addr, masked bool) ctnetlink.OneOf[netip.Prefix] {
		if !masked {
			return ctnetlink.HostIs(addr)
		}
		p, ok := netPrefix(network, mask)
		exact = exact && ok
		if !p.IsValid() {
			return ctnetlink.OneOf[netip.Prefix]{}
		}
		return ctnetlink.Is(p)
	}
	if opt(optOrigSrc) {
		m.OrigSrc = orig(o.Src(), c.netSrc, c.mask.Src(), opt(optMaskSrc))
	}
	if opt(optOrigDst) {
		m.OrigDst = orig(o.Dst(), c.netDst, c.mask.Dst(), opt(optMaskDst))
	}
	if opt(optReplSrc) {
		m.ReplySrc = ctnetlink.HostIs(r.Src())
	}
	if opt(optReplDst) {
		m.ReplyDst = ctnetlink.HostIs(r.Dst())
	}
	return exact
}

// matchL4 sets the ports, ICMP fields and protocol state of m, and
// reports whether they select exactly what c.matches does.
func (c *cmdLine) matchL4(m *ctnetlink.Selector) (exact bool) {
	exact = true
	o, r := &c.tmpl.TupleOrig, &c.tmpl.TupleReply
	port := func(p *ctnetlink.TupleProto, a ctnetlink.TupleProtoAttr, v uint16) ctnetlink.OneOf[uint16] {
		if !p.Has(a) {
			return ctnetlink.OneOf[uint16]{}
		}
		return ctnetlink.Port(v)
	}
	switch {
	case c.proto == nil:
	case isPortProto(c.protoNum):
		m.OrigSrcPort = port(&o.Proto, ctnetlink.TupleProtoAttrSrcPort, o.Proto.SrcPort)
		m.OrigDstPort = port(&o.Proto, ctnetlink.TupleProtoAttrDstPort, o.Proto.DstPort)
		m.ReplySrcPort = port(&r.Proto, ctnetlink.TupleProtoAttrSrcPort, r.Proto.SrcPort)
		m.ReplyDstPort = port(&r.Proto, ctnetlink.TupleProtoAttrDstPort, r.Proto.DstPort)
	case c.protoNum == unix.IPPROTO_ICMP || c.protoNum == unix.IPPROTO_ICMPV6:
		typ, code, id := icmpFields(o)
		has := func(a4, a6 ctnetlink.TupleProtoAttr) bool {
			if c.protoNum == unix.IPPROTO_ICMPV6 {
				return o.Proto.Has(a6)
			}
			return o.Proto.Has(a4)
		}
		if has(ctnetlink.TupleProtoAttrICMPType, ctnetlink.TupleProtoAttrICMPv6Type) {
			m.ICMPType = ctnetlink.Is(typ)
		}
		if has(ctnetlink.TupleProtoAttrICMPCode, ctnetlink.TupleProtoAttrICMPv6Code) {
			m.ICMPCode = ctnetlink.Is(code)
		}
		if has(ctnetlink.TupleProtoAttrICMPID, ctnetlink.TupleProtoAttrICMPv6ID) {
			m.ICMPID = ctnetlink.Is(id)
		}
	default:
		// conntrack does not compare GRE keys, nor anything of other
		// protocols; keep their options out of the kernel.
		exact = exact && c.l4flags == 0
	}
	switch t := &c.tmpl; {
	case hasTCPState(t):
		m.TCPStates = ctnetlink.Is(t.ProtoInfo.TCP.State)
	case hasSCTPState(t):
		m.SCTPStates = ctnetlink.Is(t.ProtoInfo.SCTP.State)
	case hasDCCPState(t):
		m.DCCPStates = ctnetlink.Is(t.ProtoInfo.DCCP.State)
	}
	return exact
}

// matchMeta sets the mark, status, zones, labels and NAT of m, and
// reports whether they select exactly what c.matches does.
func (c *cmdLine) matchMeta(m *ctnetlink.Selector) (exact bool) {
	exact = true
	opt := func(o int) bool { return c.options&bit(o) != 0 }
	o, r := &c.tmpl.TupleOrig, &c.tmpl.TupleReply
	if opt(optMark) {
		if c.markMask != 0 {
			m.Mark = ctnetlink.Is(ctnetlink.MarkMatch{Mark: c.mark, Mask: c.markMask})
		} else {
			// A zero mask selects every flow, or none: a Selector reads
			// a zero mask as all bits.
			exact = false
		}
	}
	if opt(optStatus) && c.status != 0 {
		// conntrack compares the status bits the option names.
		m.Status = ctnetlink.Is(ctnetlink.StatusMatch{Status: ctnetlink.Status(c.status), Mask: ctnetlink.Status(c.status)})
	}
	if opt(optZone) {
		// conntrack compares CTA_ZONE, which a flow whose zone applies to
		// one direction only does not carry: for it -w 0 holds. Selector
		// compares the zone id, as the kernel does, so a zone other than
		// 0 only narrows, and zone 0 is left to the user-space check.
		if z := c.tmpl.Zone; z != 0 {
			m.Zone = ctnetlink.Is(z)
		}
		exact = false
	}
	if opt(optOrigZone) {
		m.OrigZone = ctnetlink.Is(o.Zone)
	}
	if opt(optReplZone) {
		m.ReplyZone = ctnetlink.Is(r.Zone)
	}
	if c.filterBits != nil {
		if anyBit(c.filterBits) {
			m.LabelsAll = c.filterBits
		} else {
			exact = false
		}
	}
	if opt(optID) || opt(optTimeout) {
		exact = false
	}

	// NAT: a source NAT to ADDR[:PORT] needs the reply tuple's destination
	// to be ADDR[:PORT], a destination NAT its source; --any-nat needs
	// either, which no field expresses.
	if opt(optSrcNAT) || opt(optDstNAT) || opt(optAnyNAT) {
		exact = false
	}
	if !opt(optAnyNAT) {
		if opt(optSrcNAT) && c.hasSNAT {
			natEndpoint(&m.ReplyDst, &m.ReplyDstPort, c.snat)
		}
		if opt(optDstNAT) && c.hasDNAT {
			natEndpoint(&m.ReplySrc, &m.ReplySrcPort, c.dnat)
		}
	}
	return exact
}

// natEndpoint sets an address and port a NAT filter requires, unless
// another option already set them: both are then required, and either
// will do as a field.
func natEndpoint(addr *ctnetlink.OneOf[netip.Prefix], port *ctnetlink.OneOf[uint16], spec natSpec) {
	if len(addr.Values) == 0 && spec.addr.IsValid() {
		*addr = ctnetlink.HostIs(spec.addr)
	}
	if len(port.Values) == 0 && spec.hasPort {
		*port = ctnetlink.Port(spec.port)
	}
}

// netPrefix returns the prefix of address a as long as the leading 1 bits
// of netmask mask, and whether that prefix is exactly what a under mask
// selects (mask is a prefix mask of a's family). Where it is not, the
// prefix selects more. It returns the zero Prefix for an invalid pair.
func netPrefix(a, mask netip.Addr) (netip.Prefix, bool) {
	if !a.IsValid() || !mask.IsValid() || a.BitLen() != mask.BitLen() {
		return netip.Prefix{}, false
	}
	fam := uint8(unix.AF_INET)
	if mask.Is6() {
		fam = unix.AF_INET6
	}
	bits := leadingOnes(mask)
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, prefixMask(fam, bits) == mask
}

func anyBit(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return true
		}
	}
	return false
}

// checkDeleteOpts checks ctspec's own options of -D: they need -D on the
// conntrack table (or -h, which then documents them), and print no flows,
// so they take no -o.
func (c *cmdLine) checkDeleteOpts() error {
	var name string
	switch {
	case c.dryRun:
		name = "dry-run"
	case c.kernelFlush:
		name = "kernel-flush"
	default:
		return nil
	}
	switch {
	case c.cmd == ctHelp:
		return nil
	case c.cmd != ctDelete:
		return paramError("Illegal option `--%s' with this command", name)
	case c.options&bit(optOutput) != 0 && c.dryRun:
		return paramError("--dry-run prints the plan, not flows: it takes no `--output'")
	case c.options&bit(optOutput) != 0:
		return paramError("--kernel-flush prints no flows: it takes no `--output'")
	}
	return nil
}
