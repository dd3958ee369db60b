package main

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// Options that make conntrack compare the flow with what the command line
// gave (CT_COMPARISON).
const comparisonOpts = 1<<optProto | 1<<optOrigSrc | 1<<optOrigDst | 1<<optReplSrc | 1<<optReplDst |
	1<<optMark | 1<<optSecmark | 1<<optStatus | 1<<optID | 1<<optZone | 1<<optLabel |
	1<<optOrigZone | 1<<optReplZone

// matches reports whether flow f passes the command line's filter, with
// conntrack's semantics (nfct_filter): NAT, mark, labels, netmasks, then a
// comparison of every attribute the options set, where an attribute the
// flow lacks does not match.
func (c *cmdLine) matches(f *ctnetlink.Flow) bool {
	if !c.matchNAT(f) {
		return false
	}
	if c.options&bit(optMark) != 0 && !(f.Has(ctnetlink.FlowAttrMark) && f.Mark&c.markMask == c.mark) {
		return false
	}
	if !c.matchLabels(f) || !c.matchNetmask(f) {
		return false
	}
	if c.options&comparisonOpts != 0 && !c.compare(f, true, true, true) {
		return false
	}
	return true
}

func (c *cmdLine) matchLabels(f *ctnetlink.Flow) bool {
	if c.filterBits == nil {
		return true
	}
	if !f.Has(ctnetlink.FlowAttrLabels) {
		return false
	}
	for i := 0; i < len(c.filterBits)*8; i++ {
		if labelBitSet(c.filterBits, i) && !labelBitSet(f.Labels, i) {
			return false
		}
	}
	return true
}

// matchNetmask applies -s/-d ADDR/BITS and --mask-src/--mask-dst.
func (c *cmdLine) matchNetmask(f *ctnetlink.Flow) bool {
	check := func(opt int, want, mask, got netip.Addr) bool {
		if c.options&bit(opt) == 0 {
			return true
		}
		if flowFamily(f) != c.family || !want.IsValid() || !mask.IsValid() || !got.IsValid() {
			return false
		}
		return maskAddr(got, mask) == maskAddr(want, mask)
	}
	return check(optMaskSrc, c.netSrc, c.mask.Src(), f.TupleOrig.Src()) &&
		check(optMaskDst, c.netDst, c.mask.Dst(), f.TupleOrig.Dst())
}

func maskAddr(a, m netip.Addr) netip.Addr {
	if a.Is4() != m.Is4() {
		return netip.Addr{}
	}
	ab, mb := a.AsSlice(), m.AsSlice()
	for i := range ab {
		ab[i] &= mb[i]
	}
	r, _ := netip.AddrFromSlice(ab)
	return r
}

// matchNAT applies --src-nat, --dst-nat and --any-nat as conntrack's
// filter_nat does.
func (c *cmdLine) matchNAT(f *ctnetlink.Flow) bool {
	src := c.options&(bit(optSrcNAT)|bit(optAnyNAT)) != 0
	dst := c.options&(bit(optDstNAT)|bit(optAnyNAT)) != 0
	if !src && !dst {
		return true
	}
	check := func(spec natSpec, set bool, isNAT, isPAT bool, replAddr netip.Addr, replPort uint16) bool {
		has := false
		checkAddr := set && spec.addr.IsValid()
		if checkAddr && isNAT && replAddr == spec.addr {
			has = true
		}
		if set && spec.hasPort {
			portOK := isPAT && replPort == spec.port
			if checkAddr && has && !portOK {
				has = false
			}
			if !checkAddr && portOK {
				has = true
			}
		}
		if !checkAddr && !(set && spec.hasPort) && (isNAT || isPAT) {
			has = true
		}
		return has
	}
	var hasSrc, hasDst bool
	if src {
		hasSrc = check(c.snat, c.hasSNAT, isSNAT(f), isSPAT(f), f.TupleReply.Dst(), f.TupleReply.Proto.DstPort)
	}
	if dst {
		hasDst = check(c.dnat, c.hasDNAT, isDNAT(f), isDPAT(f), f.TupleReply.Src(), f.TupleReply.Proto.SrcPort)
	}
	switch {
	case c.options&bit(optAnyNAT) != 0:
		return hasSrc || hasDst
	case src && dst:
		return hasSrc && hasDst
	case src:
		return hasSrc
	default:
		return hasDst
	}
}

// compare is libnetfilter_conntrack's nfct_cmp with NFCT_CMP_MASK of the
// command line's template against f: each attribute the template has must
// be in f with the same value (the status: with the template's bits set).
func (c *cmdLine) compare(f *ctnetlink.Flow, meta, orig, repl bool) bool {
	t := &c.tmpl
	if meta {
		if t.Has(ctnetlink.FlowAttrID) && !(f.Has(ctnetlink.FlowAttrID) && f.ID == t.ID) {
			return false
		}
		if t.Has(ctnetlink.FlowAttrTimeout) && !(f.Has(ctnetlink.FlowAttrTimeout) && f.Timeout == t.Timeout) {
			return false
		}
		if t.Has(ctnetlink.FlowAttrStatus) && !(f.Has(ctnetlink.FlowAttrStatus) && f.Status&t.Status == t.Status) {
			return false
		}
		if hasTCPState(t) && !(hasTCPState(f) && f.ProtoInfo.TCP.State == t.ProtoInfo.TCP.State) {
			return false
		}
		if hasSCTPState(t) && !(hasSCTPState(f) && f.ProtoInfo.SCTP.State == t.ProtoInfo.SCTP.State) {
			return false
		}
		if hasDCCPState(t) && !(hasDCCPState(f) && f.ProtoInfo.DCCP.State == t.ProtoInfo.DCCP.State) {
			return false
		}
		// A flow without a zone attribute is in zone 0.
		if t.Has(ctnetlink.FlowAttrZone) && f.Zone != t.Zone {
			return false
		}
		if t.Has(ctnetlink.FlowAttrSecmark) && !(f.Has(ctnetlink.FlowAttrSecmark) && f.Secmark == t.Secmark) {
			return false
		}
	}
	if orig && !c.compareTuple(&t.TupleOrig, &f.TupleOrig, c.origL3, c.origL4, flowFamily(f)) {
		return false
	}
	if repl && !c.compareTuple(&t.TupleReply, &f.TupleReply, c.replL3, c.replL4, flowFamily(f)) {
		return false
	}
	return true
}

func (c *cmdLine) compareTuple(t, f *ctnetlink.Tuple, l3 uint8, l4 bool, fam uint8) bool {
	if l3 != 0 && l3 != fam {
		return false
	}
	if l4 {
		num := t.Proto.Num
		if num == 0 && c.proto != nil {
			num = c.protoNum
		}
		if num != f.Proto.Num {
			return false
		}
		tp, fp := &t.Proto, &f.Proto
		switch num {
		case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
			typ, code, id := icmpFields(t)
			ftyp, fcode, fid := icmpFields(f)
			v6 := num == unix.IPPROTO_ICMPV6
			has := func(a4, a6 ctnetlink.TupleProtoAttr) bool {
				if v6 {
					return tp.Has(a6)
				}
				return tp.Has(a4)
			}
			if has(ctnetlink.TupleProtoAttrICMPID, ctnetlink.TupleProtoAttrICMPv6ID) && id != fid {
				return false
			}
			if has(ctnetlink.TupleProtoAttrICMPCode, ctnetlink.TupleProtoAttrICMPv6Code) && code != fcode {
				return false
			}
			if has(ctnetlink.TupleProtoAttrICMPType, ctnetlink.TupleProtoAttrICMPv6Type) && typ != ftyp {
				return false
			}
		case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_DCCP, unix.IPPROTO_SCTP:
			if tp.Has(ctnetlink.TupleProtoAttrSrcPort) && !(fp.Has(ctnetlink.TupleProtoAttrSrcPort) && tp.SrcPort == fp.SrcPort) {
				return false
			}
			if tp.Has(ctnetlink.TupleProtoAttrDstPort) && !(fp.Has(ctnetlink.TupleProtoAttrDstPort) && tp.DstPort == fp.DstPort) {
				return false
			}
		}
	}
	addr := func(present bool, want, got netip.Addr, gotPresent bool) bool {
		return !present || (gotPresent && want == got)
	}
	ip, fip := &t.IP, &f.IP
	if !addr(ip.Has(ctnetlink.TupleIPAttrV4Src), ip.V4Src, fip.V4Src, fip.Has(ctnetlink.TupleIPAttrV4Src)) ||
		!addr(ip.Has(ctnetlink.TupleIPAttrV4Dst), ip.V4Dst, fip.V4Dst, fip.Has(ctnetlink.TupleIPAttrV4Dst)) ||
		!addr(ip.Has(ctnetlink.TupleIPAttrV6Src), ip.V6Src, fip.V6Src, fip.Has(ctnetlink.TupleIPAttrV6Src)) ||
		!addr(ip.Has(ctnetlink.TupleIPAttrV6Dst), ip.V6Dst, fip.V6Dst, fip.Has(ctnetlink.TupleIPAttrV6Dst)) {
		return false
	}
	if t.Has(ctnetlink.TupleAttrZone) && f.Zone != t.Zone {
		return false
	}
	return true
}

// dumpFilter returns what the kernel can filter for a listing: the family,
// the mark and the status, as conntrack asks;
// plus the original tuple's exact fields when the family is known, which
// selects a superset of what matches and keeps the kernel's dump order.
// Everything is checked again with matches.
func (c *cmdLine) dumpFilter() *ctnetlink.Selector {
	df := &ctnetlink.Selector{Family: c.family}
	// A zero mask selects every flow, or none: the library reads it as
	// all bits, so the user-space check does it alone.
	if c.options&bit(optMark) != 0 && c.markMask != 0 {
		df.Mark = ctnetlink.Is(ctnetlink.MarkMatch{Mark: c.mark, Mask: c.markMask})
	}
	if c.options&bit(optStatus) != 0 && c.statusMask != 0 {
		df.Status = ctnetlink.Is(ctnetlink.StatusMatch{Status: ctnetlink.Status(c.status), Mask: ctnetlink.Status(c.statusMask)})
	}
	if c.family == unix.AF_INET {
		// IPv6 stays out: a tuple filter with an IPv6 family selects
		// nothing on Linux 6.18 through the library.
		o := &c.tmpl.TupleOrig
		if c.options&bit(optOrigSrc) != 0 && c.options&bit(optMaskSrc) == 0 && o.Src().IsValid() {
			df.OrigSrc = ctnetlink.HostIs(o.Src())
		}
		if c.options&bit(optOrigDst) != 0 && c.options&bit(optMaskDst) == 0 && o.Dst().IsValid() {
			df.OrigDst = ctnetlink.HostIs(o.Dst())
		}
		if c.proto != nil {
			df.Proto = ctnetlink.Protocol(c.protoNum)
			if isPortProto(c.protoNum) {
				if o.Proto.Has(ctnetlink.TupleProtoAttrSrcPort) {
					df.OrigSrcPort = ctnetlink.Port(o.Proto.SrcPort)
				}
				if o.Proto.Has(ctnetlink.TupleProtoAttrDstPort) {
					df.OrigDstPort = ctnetlink.Port(o.Proto.DstPort)
				}
			}
		}
	}
	return df
}
