package nfqueue

import (
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nlattr"
	"github.com/ctspec/ctspec/nfnl"
)

func netlinkHeaderType(t uint16) netlink.HeaderType { return netlink.HeaderType(t) }

// TestGolden decodes every captured packet message: no error, no unknown
// attribute, the fields the capture's setup implies, and a re-encoding by
// the generated codec equal to the kernel's bytes.
func TestGolden(t *testing.T) {
	msgs := goldenMessages(t)
	if len(msgs) != len(captureCases) {
		t.Fatalf("%d golden messages, want %d", len(msgs), len(captureCases))
	}
	for _, m := range msgs {
		t.Run(m.Name, func(t *testing.T) {
			var p Packet
			if err := p.decode(m.Payload); err != nil {
				t.Fatal(err)
			}
			if p.Attrs.Unknown != 0 {
				t.Errorf("%d unknown attributes", p.Attrs.Unknown)
			}
			if MsgType(m.Type) != MsgPacket || p.Queue != 0 || p.ID != 1 {
				t.Errorf("type %#x queue %d id %d, want the first packet of queue 0", m.Type, p.Queue, p.ID)
			}
			// The payload is the last attribute, its value the message's tail.
			tail := m.Payload[len(m.Payload)-len(p.Payload):]
			if len(p.Payload) > 0 && &p.Payload[0] != &tail[0] {
				t.Error("payload is a copy, not a view of the message")
			}
			check := map[string]func(){
				"udp4-output": func() {
					if p.Attrs.Mark != 0x2a || p.Attrs.Priority != 5 || !p.Attrs.Has(MessageAttrUid) || p.Hook != 3 || udpPayload(t, p.Payload) != "golden" {
						t.Errorf("mark %#x priority %d uid present %v hook %d payload %q", p.Attrs.Mark, p.Attrs.Priority, p.Attrs.Has(MessageAttrUid), p.Hook, p.Payload)
					}
				},
				"udp4-input": func() {
					if p.Hook != 1 || p.Attrs.InDev == 0 || udpPayload(t, p.Payload) != "golden" {
						t.Errorf("hook %d indev %d payload %q", p.Hook, p.Attrs.InDev, p.Payload)
					}
				},
				"udp4-meta": func() {
					if p.Payload != nil || p.Truncated {
						t.Errorf("payload %x truncated %v in copy mode meta", p.Payload, p.Truncated)
					}
				},
				"udp4-truncated": func() {
					if len(p.Payload) != 20 || !p.Truncated || p.Attrs.CapLen != 34 {
						t.Errorf("%d bytes, truncated %v, cap-len %d; want 20 of 34", len(p.Payload), p.Truncated, p.Attrs.CapLen)
					}
				},
				"tcp6-syn": func() {
					if p.Family != 10 || p.HWProtocol != 0x86dd || len(p.Payload) < 60 || p.Payload[0]>>4 != 6 {
						t.Errorf("family %d protocol %#x %d bytes", p.Family, p.HWProtocol, len(p.Payload))
					}
				},
			}
			if f := check[m.Name]; f != nil {
				f()
			} else {
				t.Errorf("no check for %s", m.Name)
			}
			var full Message
			if err := full.UnmarshalAttributes(m.Payload[nfnl.HeaderLen:]); err != nil {
				t.Fatal(err)
			}
			if enc := full.AppendAttributes(nil); string(enc) != string(aligned(m.Payload[nfnl.HeaderLen:])) {
				t.Errorf("re-encoded attributes differ:\nkernel %x\nours   %x", m.Payload[nfnl.HeaderLen:], enc)
			}
		})
	}
}

// TestForeignNests checks the ct and exp attributes against ctnetlink: a
// packet message carrying the attributes of a captured conntrack flow or
// expectation decodes to what ctnetlink's own decoder makes of them, and
// encodes them back, under NLA_F_NESTED, byte for byte.
func TestForeignNests(t *testing.T) {
	for _, flows := range []bool{true, false} {
		cases := ctGoldens(t, flows)
		if len(cases) == 0 {
			t.Fatalf("no ctnetlink golden (flows %v)", flows)
		}
		for name, attrs := range cases {
			typ := MessageAttrCt
			if !flows {
				typ = MessageAttrExp
			}
			e := nlattr.NewEncoder(nil)
			e.BytesAttr(uint16(typ)|nlattr.Nested, attrs)
			var m Message
			if err := m.UnmarshalAttributes(e.Bytes()); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if flows {
				var want ctnetlink.Flow
				if err := want.UnmarshalAttributes(attrs); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(&want, m.CT, cmp.Exporter(func(reflect.Type) bool { return true })); diff != "" {
					t.Errorf("%s: ct (-ctnetlink +nfqueue):\n%s", name, diff)
				}
			} else {
				var want ctnetlink.Expect
				if err := want.UnmarshalAttributes(attrs); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(&want, m.Exp, cmp.Exporter(func(reflect.Type) bool { return true })); diff != "" {
					t.Errorf("%s: exp (-ctnetlink +nfqueue):\n%s", name, diff)
				}
			}
			if got := m.AppendAttributes(nil); string(got) != string(e.Bytes()) {
				t.Errorf("%s: re-encoded\n got %x\nwant %x", name, got, e.Bytes())
			}
		}
	}
}
