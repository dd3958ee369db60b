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

// SrcAddrPort returns the tuple's source address and port; the port is 0
// for a protocol without ports. It has a value receiver, so that it works
// on the result of a call and on a field of a value, as
// f.TupleOrig.SrcAddrPort().
func (t Tuple) SrcAddrPort() netip.AddrPort {
	return netip.AddrPortFrom(t.Src(), t.Proto.SrcPort)
}

// DstAddrPort returns the tuple's destination address and port, as
// SrcAddrPort.
func (t Tuple) DstAddrPort() netip.AddrPort {
	return netip.AddrPortFrom(t.Dst(), t.Proto.DstPort)
}

// ProtoName returns the name conntrack gives layer 4 protocol number p:
// "tcp", "udp", "udplite", "icmp", "icmpv6", "sctp", "gre" or "dccp", and
// "unknown" for any other.
func ProtoName(p uint8) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_UDPLITE:
		return "udplite"
	case unix.IPPROTO_ICMP:
		return "icmp"
	case unix.IPPROTO_ICMPV6:
		return "icmpv6"
	case unix.IPPROTO_SCTP:
		return "sctp"
	case unix.IPPROTO_GRE:
		return "gre"
	case unix.IPPROTO_DCCP:
		return "dccp"
	}
	return "unknown"
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
