package ctnetlink

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

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
