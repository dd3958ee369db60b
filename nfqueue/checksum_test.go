package nfqueue

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestFixChecksums breaks the checksums of packets the kernel captured with
// valid ones (it computes them before copying a packet whose checksum is
// pending) and checks that FixChecksums restores the kernel's bytes.
func TestFixChecksums(t *testing.T) {
	for _, m := range goldenMessages(t) {
		var p Packet
		if err := p.decode(m.Payload); err != nil {
			t.Fatal(err)
		}
		if p.Truncated || len(p.Payload) == 0 {
			continue
		}
		t.Run(m.Name, func(t *testing.T) {
			want := p.Payload
			got := append([]byte(nil), want...)
			var at []int
			if got[0]>>4 == 4 {
				ihl := int(got[0]&0xf) * 4
				at = append(at, 10)
				switch got[9] {
				case 17:
					at = append(at, ihl+6)
				case 6:
					at = append(at, ihl+16)
				}
			} else {
				switch got[6] {
				case 17:
					at = append(at, 40+6)
				case 6:
					at = append(at, 40+16)
				}
			}
			if len(at) == 0 {
				t.Fatal("no checksum to break")
			}
			for _, off := range at {
				binary.BigEndian.PutUint16(got[off:], 0xdead)
			}
			if err := FixChecksums(got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("after FixChecksums\n got %x\nwant %x", got, want)
			}
		})
	}
	for _, bad := range [][]byte{nil, {0x45, 0}, {0x60}, {0x55, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}} {
		if err := FixChecksums(bad); err == nil {
			t.Errorf("FixChecksums(%x): no error", bad)
		}
	}
}

// TestParseStats parses a line in the kernel's format of
// /proc/net/netfilter/nfnetlink_queue (seq_show of nfnetlink_queue.c).
func TestParseStats(t *testing.T) {
	b := []byte("    3  28203     1 2 65531     0     2        5  1\n    4      7     0 1     0    10     0        0  1\n")
	got, err := parseStats(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []Stats{
		{Queue: 3, PortID: 28203, Waiting: 1, CopyMode: CopyModePacket, CopyRange: 65531, UserDropped: 2, LastID: 5},
		{Queue: 4, PortID: 7, CopyMode: CopyModeMeta, Dropped: 10},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("parseStats:\n got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"1 2 3\n", "70000 1 0 2 0 0 0 0 1\n", "x 1 0 2 0 0 0 0 1\n"} {
		if _, err := parseStats([]byte(bad)); err == nil {
			t.Errorf("parseStats(%q): no error", bad)
		}
	}
}
