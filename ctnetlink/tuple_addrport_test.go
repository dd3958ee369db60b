package ctnetlink

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTupleAddrPort checks SrcAddrPort and DstAddrPort on a call's result
// and on a field of a value, which a pointer receiver would not allow.
func TestTupleAddrPort(t *testing.T) {
	flow := func() Flow {
		var f Flow
		f.SetTupleOrig(NewTuple(unix.IPPROTO_UDP, netip.MustParseAddrPort("192.0.2.1:5353"), netip.MustParseAddrPort("192.0.2.2:53")))
		var icmp Tuple
		icmp.SetSrc(netip.MustParseAddr("2001:db8::1"))
		icmp.SetDst(netip.MustParseAddr("2001:db8::2"))
		icmp.Proto.SetNum(unix.IPPROTO_ICMPV6)
		icmp.SetICMP(128, 0, 7)
		f.SetTupleReply(icmp)
		return f
	}
	tests := []struct {
		name      string
		got, want netip.AddrPort
	}{
		{"orig source", flow().TupleOrig.SrcAddrPort(), netip.MustParseAddrPort("192.0.2.1:5353")},
		{"orig destination", flow().TupleOrig.DstAddrPort(), netip.MustParseAddrPort("192.0.2.2:53")},
		{"icmpv6 source has port 0", flow().TupleReply.SrcAddrPort(), netip.MustParseAddrPort("[2001:db8::1]:0")},
		{"icmpv6 destination has port 0", flow().TupleReply.DstAddrPort(), netip.MustParseAddrPort("[2001:db8::2]:0")},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestProtoName checks the names conntrack -L prints for protocols.
func TestProtoName(t *testing.T) {
	for p, want := range map[uint8]string{
		6: "tcp", 17: "udp", 136: "udplite", 1: "icmp", 58: "icmpv6",
		132: "sctp", 47: "gre", 33: "dccp", 0: "unknown", 2: "unknown", 255: "unknown",
	} {
		if got := ProtoName(p); got != want {
			t.Errorf("ProtoName(%d) = %q, want %q", p, got, want)
		}
	}
}
