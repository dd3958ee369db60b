package main

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// isSNAT and isDNAT are libnetfilter_conntrack's NFCT_GOPT_IS_SNAT and
// NFCT_GOPT_IS_DNAT: the NAT is done and the reply tuple's address
// differs from the original's.
func isSNAT(f *ctnetlink.Flow) bool {
	return f.Has(ctnetlink.FlowAttrStatus) && f.Status&ctnetlink.StatusSrcNATDone != 0 &&
		f.TupleReply.Dst() != f.TupleOrig.Src()
}

func isDNAT(f *ctnetlink.Flow) bool {
	return f.Has(ctnetlink.FlowAttrStatus) && f.Status&ctnetlink.StatusDstNATDone != 0 &&
		f.TupleReply.Src() != f.TupleOrig.Dst()
}

// isSPAT and isDPAT are the port forms: they hold without a status.
func isSPAT(f *ctnetlink.Flow) bool {
	return (!f.Has(ctnetlink.FlowAttrStatus) || f.Status&ctnetlink.StatusSrcNATDone != 0) &&
		f.TupleReply.Proto.DstPort != f.TupleOrig.Proto.SrcPort
}

func isDPAT(f *ctnetlink.Flow) bool {
	return (!f.Has(ctnetlink.FlowAttrStatus) || f.Status&ctnetlink.StatusDstNATDone != 0) &&
		f.TupleReply.Proto.SrcPort != f.TupleOrig.Proto.DstPort
}

// saveStatusNames are the status bits -o save prints, in bit order.
var saveStatusNames = []struct {
	bit  ctnetlink.Status
	name string
}{
	{ctnetlink.StatusExpected, "EXPECTED"},
	{ctnetlink.StatusSeenReply, "SEEN_REPLY"},
	{ctnetlink.StatusAssured, "ASSURED"},
	{ctnetlink.StatusFixedTimeout, "FIXED_TIMEOUT"},
}

// appendSave appends the flow as a conntrack command line (-o save), which
// conntrack -R reads back. It returns ok false, with a warning, for a flow
// of an unknown family, for which conntrack prints an empty line.
func appendSave(b []byte, f *ctnetlink.Flow, msg int) ([]byte, string) {
	start := len(b)
	b = appendSaveHead(b, f, msg)
	fam := flowFamily(f)
	if fam != unix.AF_INET && fam != unix.AF_INET6 {
		return b[:start], fmt.Sprintf("WARNING: unsupported l3proto %d, skipping.\n", fam)
	}
	addr := func(b []byte, flag string, a netip.Addr) []byte {
		if a.IsValid() {
			b = fmt.Appendf(b, "%s %s ", flag, ipString(a, fam))
		}
		return b
	}
	b = addr(b, "-s", f.TupleOrig.Src())
	b = addr(b, "-d", f.TupleOrig.Dst())
	replSrcFlag, replDstFlag := "-r", "-q"
	if isDNAT(f) {
		replSrcFlag = "-g"
	}
	if isSNAT(f) {
		replDstFlag = "-n"
	}
	b = addr(b, replSrcFlag, f.TupleReply.Src())
	b = addr(b, replDstFlag, f.TupleReply.Dst())

	proto := f.TupleOrig.Proto.Num
	if name := protoName(proto); name == "" {
		b = fmt.Appendf(b, "-p %d ", proto)
	} else {
		b = fmt.Appendf(b, "-p %s ", name)
		b = appendSaveL4(b, f, proto)
		b = appendSaveState(b, f, proto)
	}
	for len(b) > start && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b, ""
}

// appendSaveHead appends the options before the addresses: the event's
// command, timeout, status, secmark and zones.
func appendSaveHead(b []byte, f *ctnetlink.Flow, msg int) []byte {
	switch msg {
	case msgNew:
		b = append(b, "-A "...)
	case msgUpdate:
		b = append(b, "-U "...)
	case msgDestroy:
		b = append(b, "-D "...)
	}
	if f.Has(ctnetlink.FlowAttrTimeout) {
		b = fmt.Appendf(b, "-t %d ", f.Timeout)
	}
	if f.Has(ctnetlink.FlowAttrStatus) {
		b = append(b, "-u "...)
		n := 0
		for _, s := range saveStatusNames {
			if f.Status&s.bit != 0 {
				b = append(append(b, s.name...), ',')
				n++
			}
		}
		if n > 0 {
			b = append(b[:len(b)-1], ' ')
		} else {
			b = append(b, "UNSET "...)
		}
	}
	if f.Has(ctnetlink.FlowAttrSecmark) {
		b = fmt.Appendf(b, "-c %d ", f.Secmark)
	}
	if f.Has(ctnetlink.FlowAttrZone) {
		b = fmt.Appendf(b, "-w %d ", f.Zone)
	}
	if f.TupleOrig.Has(ctnetlink.TupleAttrZone) {
		b = fmt.Appendf(b, "--orig-zone %d ", f.TupleOrig.Zone)
	}
	if f.TupleReply.Has(ctnetlink.TupleAttrZone) {
		b = fmt.Appendf(b, "--reply-zone %d ", f.TupleReply.Zone)
	}
	return b
}

// appendSaveL4 appends the ports, keys or ICMP fields of both tuples.
func appendSaveL4(b []byte, f *ctnetlink.Flow, proto uint8) []byte {
	o, r := &f.TupleOrig.Proto, &f.TupleReply.Proto
	port := func(b []byte, flag string, present bool, v uint16) []byte {
		if present {
			b = fmt.Appendf(b, "%s %d ", flag, v)
		}
		return b
	}
	switch proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP:
		b = port(b, "--sport", o.Has(ctnetlink.TupleProtoAttrSrcPort), o.SrcPort)
		b = port(b, "--dport", o.Has(ctnetlink.TupleProtoAttrDstPort), o.DstPort)
		b = port(b, "--reply-port-src", r.Has(ctnetlink.TupleProtoAttrSrcPort), r.SrcPort)
		b = port(b, "--reply-port-dst", r.Has(ctnetlink.TupleProtoAttrDstPort), r.DstPort)
	case unix.IPPROTO_GRE:
		b = port(b, "--srckey", o.Has(ctnetlink.TupleProtoAttrSrcPort), o.SrcPort)
		b = port(b, "--dstkey", o.Has(ctnetlink.TupleProtoAttrDstPort), o.DstPort)
		b = port(b, "--reply-key-src", r.Has(ctnetlink.TupleProtoAttrSrcPort), r.SrcPort)
		b = port(b, "--reply-key-dst", r.Has(ctnetlink.TupleProtoAttrDstPort), r.DstPort)
	case unix.IPPROTO_ICMP:
		if o.Has(ctnetlink.TupleProtoAttrICMPType) {
			b = fmt.Appendf(b, "--icmp-type %d ", o.ICMPType)
		}
		if o.Has(ctnetlink.TupleProtoAttrICMPCode) {
			b = fmt.Appendf(b, "--icmp-code %d ", o.ICMPCode)
		}
		b = port(b, "--icmp-id", o.Has(ctnetlink.TupleProtoAttrICMPID), o.ICMPID)
	case unix.IPPROTO_ICMPV6:
		if o.Has(ctnetlink.TupleProtoAttrICMPv6Type) {
			b = fmt.Appendf(b, "--icmpv6-type %d ", o.ICMPv6Type)
		}
		if o.Has(ctnetlink.TupleProtoAttrICMPv6Code) {
			b = fmt.Appendf(b, "--icmpv6-code %d ", o.ICMPv6Code)
		}
		b = port(b, "--icmpv6-id", o.Has(ctnetlink.TupleProtoAttrICMPv6ID), o.ICMPv6ID)
	}
	return b
}

// appendSaveState appends the protocol state options.
func appendSaveState(b []byte, f *ctnetlink.Flow, proto uint8) []byte {
	switch proto {
	case unix.IPPROTO_TCP:
		if hasTCPState(f) {
			b = fmt.Appendf(b, "--state %s ", saveState(tcpStates, uint8(f.ProtoInfo.TCP.State)))
		}
	case unix.IPPROTO_SCTP:
		s := &f.ProtoInfo.SCTP
		if hasSCTPState(f) {
			b = fmt.Appendf(b, "--state %s ", saveState(sctpStates, uint8(s.State)))
		}
		if s.Has(ctnetlink.ProtoInfoSCTPAttrVTagOriginal) {
			b = fmt.Appendf(b, "--orig-vtag %d ", bswap32(s.VTagOriginal))
		}
		if s.Has(ctnetlink.ProtoInfoSCTPAttrVTagReply) {
			b = fmt.Appendf(b, "--reply-vtag %d ", bswap32(s.VTagReply))
		}
	case unix.IPPROTO_DCCP:
		d := &f.ProtoInfo.DCCP
		if hasDCCPState(f) {
			b = fmt.Appendf(b, "--state %s ", saveState(dccpStates, uint8(d.State)))
		}
		if d.Has(ctnetlink.ProtoInfoDCCPAttrRole) {
			b = fmt.Appendf(b, "--role %s ", saveState(dccpRoles, uint8(d.Role)))
		}
	}
	return b
}

func saveState(names []string, v uint8) string {
	if int(v) < len(names) {
		return names[v]
	}
	return nullString
}
