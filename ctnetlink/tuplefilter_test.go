package ctnetlink

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSelectorTupleMatch checks Selector.Match on the original tuple's
// fields against results worked out by hand from each row's tuple.
func TestSelectorTupleMatch(t *testing.T) {
	tcp := func() *Tuple {
		var tu Tuple
		tu.IP.SetV4Src(netip.MustParseAddr("192.0.2.1"))
		tu.IP.SetV4Dst(netip.MustParseAddr("198.51.100.2"))
		tu.Proto.SetNum(unix.IPPROTO_TCP)
		tu.Proto.SetSrcPort(40000)
		tu.Proto.SetDstPort(80)
		return &tu
	}
	icmp := func() *Tuple {
		var tu Tuple
		tu.IP.SetV4Src(netip.MustParseAddr("192.0.2.1"))
		tu.IP.SetV4Dst(netip.MustParseAddr("198.51.100.2"))
		tu.Proto.SetNum(unix.IPPROTO_ICMP)
		tu.Proto.SetICMPType(8)
		tu.Proto.SetICMPCode(0)
		tu.Proto.SetICMPID(77)
		return &tu
	}
	icmp6 := func() *Tuple {
		var tu Tuple
		tu.IP.SetV6Src(netip.MustParseAddr("2001:db8::1"))
		tu.IP.SetV6Dst(netip.MustParseAddr("2001:db8::2"))
		tu.Proto.SetNum(unix.IPPROTO_ICMPV6)
		tu.Proto.SetICMPv6Type(128)
		tu.Proto.SetICMPv6Code(0)
		tu.Proto.SetICMPv6ID(9)
		return &tu
	}
	tests := []struct {
		name string
		f    Selector
		tu   *Tuple
		want bool
	}{
		{"empty filter matches tcp", Selector{}, tcp(), true},
		{"src equal", Selector{OrigSrc: HostIs(netip.MustParseAddr("192.0.2.1"))}, tcp(), true},
		{"src differs", Selector{OrigSrc: HostIs(netip.MustParseAddr("192.0.2.9"))}, tcp(), false},
		{"dst equal", Selector{OrigDst: HostIs(netip.MustParseAddr("198.51.100.2"))}, tcp(), true},
		{"dst is the source", Selector{OrigDst: HostIs(netip.MustParseAddr("192.0.2.1"))}, tcp(), false},
		{"proto equal", Selector{Proto: Protocol(unix.IPPROTO_TCP)}, tcp(), true},
		{"proto differs", Selector{Proto: Protocol(unix.IPPROTO_UDP)}, tcp(), false},
		{"dport 80", Selector{Proto: Protocol(unix.IPPROTO_TCP), OrigDstPort: Port(80)}, tcp(), true},
		{"dport 81", Selector{Proto: Protocol(unix.IPPROTO_TCP), OrigDstPort: Port(81)}, tcp(), false},
		{"sport 40000", Selector{OrigSrcPort: Port(40000)}, tcp(), true},
		{"sport is the dport", Selector{OrigSrcPort: Port(80)}, tcp(), false},
		{"icmp code 0 on tcp", Selector{ICMPCode: Is[uint8](0)}, tcp(), false},
		{"icmp type 0 on tcp", Selector{ICMPType: Is[uint8](0)}, tcp(), false},
		{"icmp id 0 on tcp", Selector{ICMPID: Is[uint16](0)}, tcp(), false},
		{"icmp type 8", Selector{ICMPType: Is[uint8](8)}, icmp(), true},
		{"icmp type 0 on an echo request", Selector{ICMPType: Is[uint8](0)}, icmp(), false},
		{"icmp code 0", Selector{ICMPCode: Is[uint8](0)}, icmp(), true},
		{"icmp id 77", Selector{ICMPID: Is[uint16](77)}, icmp(), true},
		{"icmp id 78", Selector{ICMPID: Is[uint16](78)}, icmp(), false},
		{"icmpv6 type 128", Selector{Proto: Protocol(unix.IPPROTO_ICMPV6), ICMPType: Is[uint8](128)}, icmp6(), true},
		{"icmpv6 type 129", Selector{ICMPType: Is[uint8](129)}, icmp6(), false},
		{"icmpv6 id 9", Selector{ICMPID: Is[uint16](9)}, icmp6(), true},
		{"icmpv6 id 77 (the v4 field's value elsewhere)", Selector{ICMPID: Is[uint16](77)}, icmp6(), false},
		{"v6 source on a v4 tuple", Selector{OrigSrc: HostIs(netip.MustParseAddr("2001:db8::1"))}, tcp(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fl Flow
			fl.SetTupleOrig(*tt.tu)
			if got := tt.f.Match(&fl); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSelectorTupleRequest checks the tuple and CTA_FILTER flags a
// selector puts in a dump or flush request, worked out by hand from the
// kernel's ctnetlink_parse_tuple_filter: ICMPv6 fields travel in the
// ICMPv6 attributes under the ICMPv6 flags, never the ICMP (v4) ones.
func TestSelectorTupleRequest(t *testing.T) {
	type want struct {
		flags               FilterFlags
		v4Src, v6Dst        netip.Addr
		num                 uint8
		dport               uint16
		icmpType, icmp6Type uint8
		icmpID, icmp6ID     uint16
		hasICMP4, hasICMP6  bool
	}
	tests := []struct {
		name string
		f    Selector
		want want
	}{
		{"udp dport", Selector{OrigSrc: HostIs(netip.MustParseAddr("192.0.2.1")), Proto: Protocol(unix.IPPROTO_UDP), OrigDstPort: Port(53)},
			want{flags: 0x1 | 0x8 | 0x20, v4Src: netip.MustParseAddr("192.0.2.1"), num: 17, dport: 53}},
		{"icmp type and id", Selector{Proto: Protocol(unix.IPPROTO_ICMP), ICMPType: Is[uint8](8), ICMPID: Is[uint16](7)},
			want{flags: 0x8 | 0x40 | 0x100, num: 1, icmpType: 8, icmpID: 7, hasICMP4: true}},
		{"icmpv6 type and id", Selector{OrigDst: HostIs(netip.MustParseAddr("2001:db8::2")), Proto: Protocol(unix.IPPROTO_ICMPV6), ICMPType: Is[uint8](128), ICMPID: Is[uint16](9)},
			want{flags: 0x2 | 0x8 | 0x200 | 0x800, v6Dst: netip.MustParseAddr("2001:db8::2"), num: 58, icmp6Type: 128, icmp6ID: 9, hasICMP6: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tu Tuple
			fl := tt.f.origTupleRequest(&tu)
			got := want{flags: fl, v4Src: tu.IP.V4Src, v6Dst: tu.IP.V6Dst, num: tu.Proto.Num, dport: tu.Proto.DstPort,
				icmpType: tu.Proto.ICMPType, icmp6Type: tu.Proto.ICMPv6Type, icmpID: tu.Proto.ICMPID, icmp6ID: tu.Proto.ICMPv6ID,
				hasICMP4: tu.Proto.Has(TupleProtoAttrICMPType) || tu.Proto.Has(TupleProtoAttrICMPID),
				hasICMP6: tu.Proto.Has(TupleProtoAttrICMPv6Type) || tu.Proto.Has(TupleProtoAttrICMPv6ID)}
			if got != tt.want {
				t.Errorf("origTupleRequest:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
