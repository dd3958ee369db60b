package ctnetlink

import (
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"
)

// The lowering of a Selector to the kernel's dump and flush filters: the
// nfgenmsg family, CTA_MARK and CTA_MARK_MASK, CTA_STATUS and
// CTA_STATUS_MASK, CTA_ZONE, and CTA_FILTER with the original tuple. Only
// conditions of one positive value lower; the client checks every flow
// against the whole selector with Match.

// kernelRequest returns the nfgenmsg family and the attributes of a dump
// or flush request that filter by what the kernel can evaluate of s.
func (s *Selector) kernelRequest() (uint8, *Flow) {
	if s == nil {
		return unix.AF_UNSPEC, nil
	}
	var q Flow
	if m, ok := s.Mark.single(); ok {
		q.SetMark(m.Mark & m.mask())
		q.SetMarkMask(m.mask())
	}
	if m, ok := s.Status.single(); ok && m.mask() != 0 {
		q.SetStatus(m.Status & m.mask())
		q.SetStatusMask(m.mask())
	}
	if z, ok := s.Zone.single(); ok {
		q.SetZone(z)
	}
	if fl := s.origTupleRequest(&q.TupleOrig); fl != 0 {
		q.Filter = &Filter{}
		q.Filter.SetOrigFlags(fl)
		q.Filter.SetReplyFlags(0)
	}
	return s.requestFamily(), &q
}

// requestFamily returns s.Family, or else the family that the address
// conditions require, or 0.
func (s *Selector) requestFamily() uint8 {
	if s.Family != 0 {
		return s.Family
	}
	for _, c := range []*OneOf[netip.Prefix]{&s.OrigSrc, &s.OrigDst, &s.ReplySrc, &s.ReplyDst} {
		if fam := prefixFamily(c); fam != 0 {
			return fam
		}
	}
	return 0
}

// prefixFamily returns the family a flow must have to pass c: that of its
// prefixes when they are all of one family and not negated, else 0.
func prefixFamily(c *OneOf[netip.Prefix]) uint8 {
	if c.Negate {
		return 0
	}
	var fam uint8
	for _, p := range c.Values {
		f := uint8(unix.AF_INET6)
		if p.Addr().Is4() {
			f = unix.AF_INET
		}
		if fam != 0 && fam != f {
			return 0
		}
		fam = f
	}
	return fam
}

// singleHost returns the address of a condition that is one host.
func singleHost(c *OneOf[netip.Prefix]) (netip.Addr, bool) {
	// An IPv4-mapped IPv6 address selects no flow (the kernel reports IPv4
	// flows with IPv4 addresses); the client's check finds none.
	if p, ok := c.single(); ok && p.IsValid() && p.Bits() == p.Addr().BitLen() && !p.Addr().Is4In6() {
		return p.Addr(), true
	}
	return netip.Addr{}, false
}

// origTupleRequest fills t with the original-tuple conditions the kernel's
// CTA_FILTER evaluates and returns the flags that name them: a protocol,
// host addresses, and ports and ICMP fields of that protocol.
func (s *Selector) origTupleRequest(t *Tuple) FilterFlags {
	var fl FilterFlags
	if a, ok := singleHost(&s.OrigSrc); ok {
		t.SetSrc(a)
		fl |= FilterFlagsIPSrc
	}
	if a, ok := singleHost(&s.OrigDst); ok {
		t.SetDst(a)
		fl |= FilterFlagsIPDst
	}
	proto, ok := s.Proto.single()
	if !ok {
		return fl
	}
	t.Proto.SetNum(proto)
	fl |= FilterFlagsProtoNum
	switch {
	case portProto(proto):
		if p, ok := s.OrigSrcPort.single(); ok {
			t.Proto.SetSrcPort(p)
			fl |= FilterFlagsProtoSrcPort
		}
		if p, ok := s.OrigDstPort.single(); ok {
			t.Proto.SetDstPort(p)
			fl |= FilterFlagsProtoDstPort
		}
	case proto == unix.IPPROTO_ICMP:
		fl |= s.icmpRequest(t, false)
	case proto == unix.IPPROTO_ICMPV6:
		fl |= s.icmpRequest(t, true)
	}
	return fl
}

func (s *Selector) icmpRequest(t *Tuple, v6 bool) FilterFlags {
	var fl FilterFlags
	if v, ok := s.ICMPType.single(); ok {
		if v6 {
			t.Proto.SetICMPv6Type(v)
			fl |= FilterFlagsProtoICMPv6Type
		} else {
			t.Proto.SetICMPType(v)
			fl |= FilterFlagsProtoICMPType
		}
	}
	if v, ok := s.ICMPCode.single(); ok {
		if v6 {
			t.Proto.SetICMPv6Code(v)
			fl |= FilterFlagsProtoICMPv6Code
		} else {
			t.Proto.SetICMPCode(v)
			fl |= FilterFlagsProtoICMPCode
		}
	}
	if v, ok := s.ICMPID.single(); ok {
		if v6 {
			t.Proto.SetICMPv6ID(v)
			fl |= FilterFlagsProtoICMPv6ID
		} else {
			t.Proto.SetICMPID(v)
			fl |= FilterFlagsProtoICMPID
		}
	}
	return fl
}

var errTypesNotEvents = errors.New("types: event types select events only")

// checkFlows returns what is wrong with s as the selector of flows of a
// dump or a flush, with the kernel's words where the kernel would refuse
// the request (each such error wraps unix.EINVAL).
func (s *Selector) checkFlows() error {
	if s == nil {
		return nil
	}
	if err := s.checkValues(); err != nil {
		return err
	}
	if err := s.checkTuple("orig", &s.OrigSrc, &s.OrigDst, &s.OrigSrcPort, &s.OrigDstPort, s.Family); err != nil {
		return err
	}
	fam := s.Family
	if fam == 0 {
		fam = max(prefixFamily(&s.OrigSrc), prefixFamily(&s.OrigDst))
	}
	if err := s.checkTuple("reply", &s.ReplySrc, &s.ReplyDst, &s.ReplySrcPort, &s.ReplyDstPort, fam); err != nil {
		return err
	}
	proto, _ := s.Proto.single()
	icmp := s.icmpConds()
	return checkProto("orig", s.Proto.set(), proto, false, false, icmp && proto != unix.IPPROTO_ICMPV6, icmp && proto == unix.IPPROTO_ICMPV6)
}

// checkValues returns what is wrong with the values of s as a selector of
// flows, for any request: event types, an unknown family, an invalid
// prefix.
func (s *Selector) checkValues() error {
	if s.Types.set() {
		return errTypesNotEvents
	}
	if s.Family != 0 && s.Family != unix.AF_INET && s.Family != unix.AF_INET6 {
		return invalid("family %d is neither AF_INET nor AF_INET6", s.Family)
	}
	for _, a := range []struct {
		name string
		c    *OneOf[netip.Prefix]
	}{{"orig-src", &s.OrigSrc}, {"orig-dst", &s.OrigDst}, {"reply-src", &s.ReplySrc}, {"reply-dst", &s.ReplyDst}} {
		for _, p := range a.c.Values {
			if !p.IsValid() {
				return invalid("%s: invalid prefix %v", a.name, p)
			}
		}
	}
	return nil
}

// checkTuple checks the address and port conditions of one direction
// against each other and against family (0 for any).
func (s *Selector) checkTuple(name string, src, dst *OneOf[netip.Prefix], sport, dport *OneOf[uint16], family uint8) error {
	fs, fd := prefixFamily(src), prefixFamily(dst)
	if fs != 0 && fd != 0 && fs != fd {
		return invalid("%s: source and destination addresses of different families", name)
	}
	if fam := max(fs, fd); fam != 0 && family != 0 && fam != family {
		return invalid("%s: address of family %d in a filter of family %d", name, fam, family)
	}
	proto, _ := s.Proto.single()
	return checkProto(name, s.Proto.set(), proto, sport.set(), dport.set(), false, false)
}
