package ctnetlink

import (
	"fmt"
	"net/netip"
	"strings"

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

// Checks of requests that the kernel would refuse with a bare EINVAL. Each
// error wraps unix.EINVAL, as the kernel's answer would, and says what is
// wrong. The rules follow ctnetlink_parse_tuple_filter, the l3 and l4
// nlattr_to_tuple functions of nf_conntrack_netlink.c and
// nf_conntrack_proto_icmp(v6).c, and ctnetlink_parse_tuple_zone.

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, unix.EINVAL)...)
}

// portProto reports whether the kernel's tuple of layer 4 protocol p has
// ports that a request must carry (nf_ct_port_nlattr_to_tuple).
func portProto(p uint8) bool {
	switch p {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP:
		return true
	}
	return false
}

// icmpHasReply reports whether the kernel knows the reply type of ICMP (or,
// with v6, ICMPv6) type typ: only those types make a tuple of a request.
func icmpHasReply(typ uint8, v6 bool) bool {
	if v6 {
		switch typ {
		case 128, 129, 139, 140: // echo request/reply, node information query/reply
			return true
		}
		return false
	}
	switch typ {
	case 0, 8, 13, 14, 15, 16, 17, 18: // echo, timestamp, information, address mask
		return true
	}
	return false
}

// checkFull returns what is wrong with t as the complete tuple of one flow
// (Create, Update, Get, Delete), named name in the message.
func (t *Tuple) checkFull(name string) error {
	ip := &t.IP
	v4 := ip.Has(TupleIPAttrV4Src) || ip.Has(TupleIPAttrV4Dst)
	v6 := ip.Has(TupleIPAttrV6Src) || ip.Has(TupleIPAttrV6Dst)
	switch {
	case v4 && v6:
		return invalid("%s: source and destination addresses of different families", name)
	case !v4 && !v6:
		return invalid("%s: no addresses", name)
	case v4 && !(ip.Has(TupleIPAttrV4Src) && ip.Has(TupleIPAttrV4Dst)),
		v6 && !(ip.Has(TupleIPAttrV6Src) && ip.Has(TupleIPAttrV6Dst)):
		return invalid("%s: needs both a source and a destination address", name)
	}
	p := &t.Proto
	if err := checkProto(name, p.Has(TupleProtoAttrNum), p.Num, p.Has(TupleProtoAttrSrcPort), p.Has(TupleProtoAttrDstPort),
		p.Has(TupleProtoAttrICMPType) || p.Has(TupleProtoAttrICMPCode) || p.Has(TupleProtoAttrICMPID),
		p.Has(TupleProtoAttrICMPv6Type) || p.Has(TupleProtoAttrICMPv6Code) || p.Has(TupleProtoAttrICMPv6ID)); err != nil {
		return err
	}
	switch {
	case !p.Has(TupleProtoAttrNum):
		return invalid("%s: no protocol number", name)
	case portProto(p.Num) && !(p.Has(TupleProtoAttrSrcPort) && p.Has(TupleProtoAttrDstPort)):
		return invalid("%s: protocol %d needs both ports", name, p.Num)
	case p.Num == unix.IPPROTO_ICMP:
		if !(p.Has(TupleProtoAttrICMPType) && p.Has(TupleProtoAttrICMPCode) && p.Has(TupleProtoAttrICMPID)) {
			return invalid("%s: ICMP needs type, code and id", name)
		}
		if !icmpHasReply(p.ICMPType, false) {
			return invalid("%s: ICMP type %d has no reply type the kernel tracks", name, p.ICMPType)
		}
	case p.Num == unix.IPPROTO_ICMPV6:
		if !(p.Has(TupleProtoAttrICMPv6Type) && p.Has(TupleProtoAttrICMPv6Code) && p.Has(TupleProtoAttrICMPv6ID)) {
			return invalid("%s: ICMPv6 needs type, code and id", name)
		}
		if !icmpHasReply(p.ICMPv6Type, true) {
			return invalid("%s: ICMPv6 type %d has no reply type the kernel tracks", name, p.ICMPv6Type)
		}
	}
	return nil
}

// checkProto checks the protocol fields a tuple or a tuple filter sets.
func checkProto(name string, hasNum bool, num uint8, sport, dport, icmp, icmp6 bool) error {
	switch {
	case (sport || dport) && !hasNum:
		return invalid("%s: port without a protocol number", name)
	case (sport || dport) && hasNum && (num == unix.IPPROTO_ICMP || num == unix.IPPROTO_ICMPV6):
		return invalid("%s: port with protocol %d, which has none", name, num)
	case (icmp || icmp6) && !hasNum:
		return invalid("%s: ICMP fields without a protocol number", name)
	case icmp && num != unix.IPPROTO_ICMP:
		return invalid("%s: ICMP fields with protocol %d, not ICMP", name, num)
	case icmp6 && num != unix.IPPROTO_ICMPV6:
		return invalid("%s: ICMPv6 fields with protocol %d, not ICMPv6", name, num)
	}
	return nil
}

// check returns what is wrong with a flow that a request sends whole
// (Create, Update): each tuple it carries must be complete, both of one
// family, and a zone must not be set both for the flow and in a tuple.
func (f *Flow) check() error {
	if err := strayError("Flow", f.strayField()); err != nil {
		return err
	}
	return f.checkTuples(f.Has(FlowAttrTupleOrig), f.Has(FlowAttrTupleReply))
}

// strayError reports a field of a value of type typ, at path, that was
// written directly instead of with its Set method: it is not present, so
// it would not be sent. A request refuses it rather than send less than
// its caller wrote. It returns nil for an empty path.
func strayError(typ, path string) error {
	if path == "" {
		return nil
	}
	name := path[strings.LastIndexByte(path, '.')+1:]
	return invalid("%s.%s was written directly and would not be sent: set it with Set%s", typ, path, name)
}

func (f *Flow) checkTuples(orig, reply bool) error {
	if !orig && !reply {
		return invalid("no tuple-orig or tuple-reply")
	}
	if orig {
		if err := f.TupleOrig.checkFull("tuple-orig"); err != nil {
			return err
		}
	}
	if reply {
		if err := f.TupleReply.checkFull("tuple-reply"); err != nil {
			return err
		}
	}
	if orig && reply && f.TupleOrig.Family() != f.TupleReply.Family() {
		return invalid("tuple-orig and tuple-reply of different families")
	}
	if f.Has(FlowAttrZone) && f.Zone != 0 && (orig && f.TupleOrig.Has(TupleAttrZone) || reply && f.TupleReply.Has(TupleAttrZone)) {
		return invalid("zone set for the flow and in a tuple")
	}
	return nil
}

// checkKey returns what is wrong with the lookup key k of Get and Delete.
func (k *Flow) checkKey() error {
	return k.checkTuples(k.Has(FlowAttrTupleOrig), k.Has(FlowAttrTupleReply))
}
