package nflog

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/fuzzattr"
	"github.com/ctspec/ctspec/internal/nlattr"
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

// canonicalPacket reports whether the generated encoder reproduces the
// kernel's bytes of a packet of family: not with a conntrack entry, whose
// nest the kernel flags NLA_F_NESTED, which the binary ct field does not
// keep, and not for the bridge family, for which the kernel puts the
// physical input and output devices before the bridge's.
func canonicalPacket(family uint8, p *Packet) bool {
	return !p.Has(PacketMsgAttrCt) && family != unix.NFPROTO_BRIDGE
}

// fuzzSeeds returns the payloads of set found in the captured kernel
// messages and in the requests this package encodes.
func fuzzSeeds(tb testing.TB, set int) []fuzzattr.Seed {
	var seeds []fuzzattr.Seed
	switch set {
	case schemaPacketMsg:
		for _, m := range goldenMessages(tb) {
			attrs := m.Payload[4:]
			var p Packet
			if err := p.decode(attrs, ""); err != nil {
				tb.Fatalf("%s: %v", m.Name, err)
			}
			seeds = append(seeds, fuzzattr.Seed{Name: m.Name, Data: attrs, Canonical: canonicalPacket(m.Payload[0], &p)})
		}
	case schemaVlan:
		for _, m := range goldenMessages(tb) {
			d := nlattr.NewDecoder(m.Payload[4:])
			for d.Next() {
				if PacketMsgAttr(d.Type()) == PacketMsgAttrVlan {
					seeds = append(seeds, fuzzattr.Seed{Name: m.Name, Data: d.Bytes(), Canonical: true})
				}
			}
		}
		var v Vlan
		v.SetProto(0x8100)
		v.SetTci(0x2005)
		seeds = append(seeds, fuzzattr.Seed{Name: "vlan 5 priority 1", Data: v.AppendAttributes(nil), Canonical: true})
	case schemaConfigMsg:
		for i := range seedConfigs {
			b, err := configRequest(&seedConfigs[i])
			if err != nil {
				tb.Fatal(err)
			}
			seeds = append(seeds, fuzzattr.Seed{Name: "bind request", Data: b, Canonical: true})
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
		f.Add(s.Data)
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
