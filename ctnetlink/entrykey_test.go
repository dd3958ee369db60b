package ctnetlink

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// keyText is what TestEntryKey compares of a key: every accessor.
type keyText struct {
	ID           uint32
	Zone         uint16
	Family       uint8
	Proto        uint8
	Src, Dst     string
	Sport, Dport uint16
}

func textOf(k EntryKey) keyText {
	s, d := k.Ports()
	return keyText{k.ID(), k.Zone(), k.Family(), k.Proto(), k.Src().String(), k.Dst().String(), s, d}
}

// TestEntryKey checks KeyOf against values written out by hand from the
// kernel's tuple layout: ports, or the ICMP id and type<<8|code.
func TestEntryKey(t *testing.T) {
	udp := NewTuple(unix.IPPROTO_UDP, netip.MustParseAddrPort("192.0.2.1:4000"), netip.MustParseAddrPort("192.0.2.53:53"))
	var icmp Tuple
	icmp.SetSrc(netip.MustParseAddr("2001:db8::1"))
	icmp.SetDst(netip.MustParseAddr("2001:db8::2"))
	icmp.Proto.SetNum(unix.IPPROTO_ICMPV6)
	icmp.SetICMP(128, 3, 0x1234)
	tests := []struct {
		name string
		flow func(*Flow)
		want keyText
	}{
		{
			name: "udp in a zone",
			flow: func(f *Flow) { f.SetTupleOrig(udp); f.SetID(7); f.SetZone(3) },
			want: keyText{7, 3, unix.AF_INET, unix.IPPROTO_UDP, "192.0.2.1", "192.0.2.53", 4000, 53},
		},
		{
			name: "icmpv6 echo",
			flow: func(f *Flow) { f.SetTupleOrig(icmp); f.SetID(9) },
			want: keyText{9, 0, unix.AF_INET6, unix.IPPROTO_ICMPV6, "2001:db8::1", "2001:db8::2", 0x1234, 128<<8 | 3},
		},
		{
			name: "no flow",
			flow: func(*Flow) {},
			want: keyText{Src: "invalid IP", Dst: "invalid IP"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Flow
			tt.flow(&f)
			if diff := cmp.Diff(tt.want, textOf(KeyOf(&f))); diff != "" {
				t.Errorf("key (-want +got):\n%s", diff)
			}
		})
	}
	var a, b Flow
	a.SetTupleOrig(udp)
	a.SetID(7)
	b.SetTupleOrig(udp)
	b.SetID(8)
	if KeyOf(&a) == KeyOf(&b) {
		t.Error("flows with different ids have the same key")
	}
}
