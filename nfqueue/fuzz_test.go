package nfqueue

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctspec/ctspec/internal/fuzzattr"
	"github.com/ctspec/ctspec/internal/golden"
	"github.com/ctspec/ctspec/nfnl"
)

// ctGoldenDir holds the conntrack messages captured for ctnetlink: flows
// and expectations, whose attributes nfqueue carries in ct and exp.
var ctGoldenDir = filepath.Join("..", "testdata", "messages")

// ctGoldens returns the attributes of the captured ctnetlink flows
// (flows true) or expectations.
func ctGoldens(tb testing.TB, flows bool) map[string][]byte {
	tb.Helper()
	msgs, err := golden.ParseDir(ctGoldenDir)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, m := range msgs {
		sub, typ := nfnl.SplitType(netlinkHeaderType(m.Type))
		isFlow := sub == nfnl.SubsysCTNetlink && typ == 0 // IPCTNL_MSG_CT_NEW
		isExp := sub == nfnl.SubsysCTNetlinkExp && typ == 0 && strings.HasPrefix(m.Name, "expect-")
		if flows && isFlow || !flows && isExp {
			out[m.Name] = m.Payload[nfnl.HeaderLen:]
		}
	}
	return out
}

// verdictSeeds are verdict messages this package encodes, with every
// attribute a verdict may carry.
func verdictSeeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	q := &queue{}
	mark, connMark := uint32(7), uint32(0x1234)
	out := map[string][]byte{}
	for name, v := range map[string]Verdict{
		"verdict-accept":   {Action: Accept},
		"verdict-queue":    {Action: Queue, QueueNum: 3, Bypass: true, Mark: &mark},
		"verdict-payload":  {Action: Accept, Payload: []byte{0x45, 0, 0, 20}},
		"verdict-connmark": {Action: Repeat, ConnMark: &connMark, ConnLabels: []byte{1, 0, 0, 0}},
	} {
		b, err := q.verdictAttrs(nil, 9, &v)
		if err != nil {
			tb.Fatal(err)
		}
		out[name] = b
	}
	var m Message
	var vlan VLAN
	vlan.SetProto(0x8100)
	vlan.SetTCI(42)
	m.SetVLAN(vlan)
	m.SetL2Header(make([]byte, 14))
	out["verdict-vlan"] = m.AppendAttributes(nil)
	return out
}

// fuzzSeeds returns the payloads of set found in the captured kernel
// messages, canonical, and in the verdict and config requests this package
// encodes.
func fuzzSeeds(tb testing.TB, set int) []fuzzattr.Seed {
	var seeds []fuzzattr.Seed
	switch set {
	case schemaMessage:
		for _, m := range goldenMessages(tb) {
			seeds = append(seeds, fuzzattr.Seed{Name: m.Name, Data: aligned(m.Payload[nfnl.HeaderLen:]), Canonical: true})
		}
		for name, b := range verdictSeeds(tb) {
			seeds = append(seeds, fuzzattr.Seed{Name: name, Data: b})
		}
	case schemaVLAN:
		var v VLAN
		v.SetProto(0x88a8)
		v.SetTCI(0x2005)
		seeds = append(seeds, fuzzattr.Seed{Name: "vlan", Data: v.AppendAttributes(nil)})
	case schemaConfigMessage:
		var bind, params ConfigMessage
		bind.SetCommand(ConfigCmd{Command: CommandBind})
		params.SetParams(ConfigParams{CopyMode: CopyModePacket, CopyRange: MaxCopyRange})
		params.SetQueueMaxLen(1024)
		params.SetMask(knownFlags)
		params.SetFlags(FlagsFailOpen | FlagsGSO)
		for name, m := range map[string]ConfigMessage{"config-bind": bind, "config-params": params} {
			seeds = append(seeds, fuzzattr.Seed{Name: name, Data: m.AppendAttributes(nil)})
		}
	}
	return seeds
}

// FuzzDecodePacket fuzzes the hand-written packet decoder around the
// generated one: no panic, and a payload cut off the end matches the one
// the generated decoder copies.
func FuzzDecodePacket(f *testing.F) {
	for _, m := range goldenMessages(f) {
		f.Add(m.Payload)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := p.decode(b); err != nil {
			return
		}
		var m Message
		if len(b) < nfnl.HeaderLen || m.UnmarshalAttributes(b[nfnl.HeaderLen:]) != nil {
			t.Fatalf("decode accepted what the generated decoder rejects: %x", b)
		}
		if string(m.Payload) != string(p.Payload) {
			t.Fatalf("payload %x, generated decoder %x", p.Payload, m.Payload)
		}
	})
}

// aligned returns b padded with zeros to a multiple of 4 bytes: the kernel
// leaves out the padding of a message's last attribute, the payload, which
// netlink's alignment implies and the encoder writes.
func aligned(b []byte) []byte {
	out := append([]byte(nil), b...)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}
