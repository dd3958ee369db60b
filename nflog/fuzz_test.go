package nflog

import (
	"testing"
	"time"
)

// seedConfigs are group configurations whose bind requests seed the
// config-msg-attrs target.
var seedConfigs = []GroupConfig{
	{},
	{CopyMode: CopyModeMeta},
	{CopyMode: CopyModePacket, CopyRange: 64, KernelBuffer: 64 * KiB, QueueThreshold: 10, FlushTimeout: 250 * time.Millisecond,
		Flags: ConfigFlagsSeq | ConfigFlagsSeqGlobal | ConfigFlagsConntrack},
}

// fuzzSeeds returns the payloads of set found in the captured kernel
// messages and in the requests this package encodes. A captured packet is
// canonical unless it has a conntrack entry: the kernel flags the ct nest
// NLA_F_NESTED, which the binary ct field does not keep.
func fuzzSeeds(tb testing.TB, set int) []fuzzSeed {
	var seeds []fuzzSeed
	switch set {
	case schemaPacketMsg:
		for _, m := range goldenMessages(tb) {
			attrs := m.Payload[4:]
			var p Packet
			if err := p.decode(attrs, ""); err != nil {
				tb.Fatalf("%s: %v", m.Name, err)
			}
			seeds = append(seeds, fuzzSeed{name: m.Name, data: attrs, canonical: !p.Has(PacketMsgAttrCt)})
		}
	case schemaVlan:
		var v Vlan
		v.SetProto(0x8100)
		v.SetTci(0x2005)
		seeds = append(seeds, fuzzSeed{name: "vlan 5 priority 1", data: v.AppendAttributes(nil), canonical: true})
	case schemaConfigMsg:
		for i := range seedConfigs {
			b, err := configRequest(&seedConfigs[i])
			if err != nil {
				tb.Fatal(err)
			}
			seeds = append(seeds, fuzzSeed{name: "bind request", data: b, canonical: true})
		}
	}
	return seeds
}

// FuzzDecodePacket fuzzes the hand-written zero-copy decoder against the
// generated one: both accept or refuse the same input, and agree on every
// attribute they decode.
func FuzzDecodePacket(f *testing.F) {
	seeds := fuzzSeeds(f, schemaPacketMsg)
	if len(seeds) == 0 {
		f.Fatal("no seed")
	}
	for _, s := range seeds {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		var m PacketMsg
		perr, merr := p.decode(b, ""), m.UnmarshalAttributes(b)
		if (perr == nil) != (merr == nil) {
			t.Fatalf("hand-written decoder: %v, generated: %v", perr, merr)
		}
		if perr == nil {
			if diff := comparePacket(&p, &m); diff != "" {
				t.Fatal(diff)
			}
			_, _ = p.Conntrack()
			_ = p.Truncated()
		}
	})
}
