package ctnetlink

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// Src returns the tuple's source address, IPv4 or IPv6, or the zero Addr.
func (t *Tuple) Src() netip.Addr {
	if t.IP.V4Src.IsValid() {
		return t.IP.V4Src
	}
	return t.IP.V6Src
}

// Dst returns the tuple's destination address, IPv4 or IPv6, or the zero Addr.
func (t *Tuple) Dst() netip.Addr {
	if t.IP.V4Dst.IsValid() {
		return t.IP.V4Dst
	}
	return t.IP.V6Dst
}

// SetSrc sets the source address in the attribute of its family.
func (t *Tuple) SetSrc(a netip.Addr) {
	if a.Is4() || a.Is4In6() {
		t.IP.SetV4Src(a.Unmap())
	} else {
		t.IP.SetV6Src(a)
	}
}

// SetDst sets the destination address in the attribute of its family.
func (t *Tuple) SetDst(a netip.Addr) {
	if a.Is4() || a.Is4In6() {
		t.IP.SetV4Dst(a.Unmap())
	} else {
		t.IP.SetV6Dst(a)
	}
}

// Family returns unix.AF_INET or unix.AF_INET6 from the tuple's addresses,
// or 0 when it has none.
func (t *Tuple) Family() uint8 {
	switch {
	case t.IP.V4Src.IsValid() || t.IP.V4Dst.IsValid():
		return unix.AF_INET
	case t.IP.V6Src.IsValid() || t.IP.V6Dst.IsValid():
		return unix.AF_INET6
	}
	return 0
}

// NewTuple returns a tuple of layer 4 protocol proto between two endpoints.
// Ports are set for protocols that have them (a zero port of an AddrPort
// is set as well); for ICMP use SetICMP.
func NewTuple(proto uint8, src, dst netip.AddrPort) Tuple {
	var t Tuple
	t.SetSrc(src.Addr())
	t.SetDst(dst.Addr())
	t.Proto.SetNum(proto)
	switch proto {
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
	default:
		t.Proto.SetSrcPort(src.Port())
		t.Proto.SetDstPort(dst.Port())
	}
	return t
}

// SetICMP sets the ICMP or ICMPv6 type, code and identifier, by the tuple's
// protocol number.
func (t *Tuple) SetICMP(typ, code uint8, id uint16) {
	if t.Proto.Num == unix.IPPROTO_ICMPV6 {
		t.Proto.SetICMPv6Type(typ)
		t.Proto.SetICMPv6Code(code)
		t.Proto.SetICMPv6ID(id)
		return
	}
	t.Proto.SetICMPType(typ)
	t.Proto.SetICMPCode(code)
	t.Proto.SetICMPID(id)
}

// Family returns the flow's address family, unix.AF_INET or unix.AF_INET6,
// from its original tuple (or its reply tuple), or 0.
func (f *Flow) Family() uint8 {
	if fam := f.TupleOrig.Family(); fam != 0 {
		return fam
	}
	return f.TupleReply.Family()
}

// ZoneID returns the id of the conntrack zone f belongs to, as the kernel's
// dump and flush filters compare it: CTA_ZONE when the zone applies to both
// directions, otherwise the zone of the tuple it applies to (the kernel
// sends CTA_ZONE only for a zone of both directions), and 0 without a zone.
func (f *Flow) ZoneID() uint16 {
	switch {
	case f.Has(FlowAttrZone):
		return f.Zone
	case f.TupleOrig.Has(TupleAttrZone):
		return f.TupleOrig.Zone
	case f.TupleReply.Has(TupleAttrZone):
		return f.TupleReply.Zone
	}
	return 0
}
