package ctnetlink

import (
	"encoding/hex"
	"encoding/xml"
	"net/netip"
	"strings"
	"testing"

	"github.com/ctspec/ctspec/internal/golden"
)

// xmlFlow is the part of conntrack-tools' -o xml output the tests compare.
type xmlFlow struct {
	Meta []struct {
		Direction string `xml:"direction,attr"`
		Layer3    struct {
			Protonum int    `xml:"protonum,attr"`
			Src      string `xml:"src"`
			Dst      string `xml:"dst"`
		} `xml:"layer3"`
		Layer4 struct {
			Protonum int     `xml:"protonum,attr"`
			Sport    *uint16 `xml:"sport"`
			Dport    *uint16 `xml:"dport"`
		} `xml:"layer4"`
		Counters *struct {
			Packets uint64 `xml:"packets"`
			Bytes   uint64 `xml:"bytes"`
		} `xml:"counters"`
		State     string    `xml:"state"`
		Timeout   *uint32   `xml:"timeout"`
		Mark      *uint32   `xml:"mark"`
		Zone      *uint16   `xml:"zone"`
		Use       *uint32   `xml:"use"`
		ID        *uint32   `xml:"id"`
		Assured   *struct{} `xml:"assured"`
		Unreplied *struct{} `xml:"unreplied"`
	} `xml:"meta"`
	Helper string `xml:"helper"`
}

// checkAgainstXML compares a decoded flow with what conntrack-tools printed
// for the same entry.
func checkAgainstXML(t *testing.T, m *golden.Message, f *Flow) {
	t.Helper()
	raw := m.Comments["conntrack -L -o xml"]
	if raw == "" {
		t.Fatalf("%s: no conntrack -L -o xml line", m.Name)
	}
	var x xmlFlow
	if err := xml.Unmarshal([]byte(raw), &x); err != nil {
		t.Fatalf("%s: parsing conntrack's XML: %v", m.Name, err)
	}
	for _, meta := range x.Meta {
		var tup *Tuple
		var ctr *Counters
		switch meta.Direction {
		case "original":
			tup, ctr = &f.TupleOrig, &f.CountersOrig
		case "reply":
			tup, ctr = &f.TupleReply, &f.CountersReply
		case "independent":
			if meta.Timeout != nil && (f.Timeout > *meta.Timeout+2 || f.Timeout+2 < *meta.Timeout) {
				t.Errorf("%s: timeout %d, conntrack says %d", m.Name, f.Timeout, *meta.Timeout)
			}
			if meta.Mark != nil && f.Mark != *meta.Mark {
				t.Errorf("%s: mark %d, conntrack says %d", m.Name, f.Mark, *meta.Mark)
			}
			if meta.Zone != nil && f.Zone != *meta.Zone {
				t.Errorf("%s: zone %d, conntrack says %d", m.Name, f.Zone, *meta.Zone)
			}
			if meta.Use != nil && f.Use != *meta.Use {
				t.Errorf("%s: use %d, conntrack says %d", m.Name, f.Use, *meta.Use)
			}
			if meta.ID != nil && f.ID != *meta.ID {
				t.Errorf("%s: id %d, conntrack says %d", m.Name, f.ID, *meta.ID)
			}
			if got := f.Status&StatusAssured != 0; got != (meta.Assured != nil) {
				t.Errorf("%s: assured %v, conntrack disagrees", m.Name, got)
			}
			if got := f.Status&StatusSeenReply == 0; got != (meta.Unreplied != nil) {
				t.Errorf("%s: unreplied %v, conntrack disagrees", m.Name, got)
			}
			if meta.State != "" && f.TupleOrig.Proto.Num == 6 {
				if got := strings.ToUpper(strings.ReplaceAll(f.ProtoInfo.TCP.State.String(), "-", "_")); got != meta.State {
					t.Errorf("%s: TCP state %s, conntrack says %s", m.Name, got, meta.State)
				}
			}
			continue
		default:
			continue
		}
		if got := tup.Src(); got != netip.MustParseAddr(meta.Layer3.Src) {
			t.Errorf("%s %s: src %v, conntrack says %s", m.Name, meta.Direction, got, meta.Layer3.Src)
		}
		if got := tup.Dst(); got != netip.MustParseAddr(meta.Layer3.Dst) {
			t.Errorf("%s %s: dst %v, conntrack says %s", m.Name, meta.Direction, got, meta.Layer3.Dst)
		}
		if int(tup.Proto.Num) != meta.Layer4.Protonum {
			t.Errorf("%s %s: protocol %d, conntrack says %d", m.Name, meta.Direction, tup.Proto.Num, meta.Layer4.Protonum)
		}
		if p := meta.Layer4.Sport; p != nil && *p != tup.Proto.SrcPort {
			t.Errorf("%s %s: sport %d, conntrack says %d", m.Name, meta.Direction, tup.Proto.SrcPort, *p)
		}
		if p := meta.Layer4.Dport; p != nil && *p != tup.Proto.DstPort {
			t.Errorf("%s %s: dport %d, conntrack says %d", m.Name, meta.Direction, tup.Proto.DstPort, *p)
		}
		if c := meta.Counters; c != nil && (c.Packets != ctr.Packets || c.Bytes != ctr.Bytes) {
			t.Errorf("%s %s: counters %d/%d, conntrack says %d/%d", m.Name, meta.Direction, ctr.Packets, ctr.Bytes, c.Packets, c.Bytes)
		}
	}
	if helper := helperOf(f); x.Helper != helper {
		t.Errorf("%s: helper %q, conntrack says %q", m.Name, helper, x.Helper)
	}
}

// TestGoldenMessages decodes every message captured from the kernel, checks
// the values against what conntrack-tools showed for the same entry, and
// checks that encoding the value again gives the kernel's bytes.
func TestGoldenMessages(t *testing.T) {
	msgs := goldenMessages(t)
	if len(msgs) == 0 {
		t.Fatal("no golden messages in " + goldenDir)
	}
	for _, m := range msgs {
		t.Run(m.Name, func(t *testing.T) {
			cpu, err := resID(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			attrs := m.Payload[4:]
			var enc []byte
			switch topSet(m.Type) {
			case schemaFlow:
				var f Flow
				if err := f.UnmarshalAttributes(attrs); err != nil {
					t.Fatal(err)
				}
				if f.Unknown != 0 {
					t.Errorf("%d unknown attributes", f.Unknown)
				}
				checkAgainstXML(t, m, &f)
				checkFlowLine(t, m, &f)
				enc = f.AppendAttributes(nil)
			case schemaExpect:
				var e Expect
				if err := e.UnmarshalAttributes(attrs); err != nil {
					t.Fatal(err)
				}
				if e.Unknown != 0 {
					t.Errorf("%d unknown attributes", e.Unknown)
				}
				checkExpectLine(t, m, &e)
				enc = e.AppendAttributes(nil)
			case schemaStatsCPU:
				var s StatsCPU
				if err := s.UnmarshalAttributes(attrs); err != nil {
					t.Fatal(err)
				}
				checkStatsLine(t, m, "conntrack -S", cpu, statsFields(&s))
				enc = s.AppendAttributes(nil)
			case schemaStatsGlobal:
				var s StatsGlobal
				if err := s.UnmarshalAttributes(attrs); err != nil {
					t.Fatal(err)
				}
				checkCount(t, m, &s)
				if s.MaxEntries == 0 {
					t.Error("max-entries is zero")
				}
				enc = s.AppendAttributes(nil)
			case schemaExpectStatsCPU:
				var s ExpectStatsCPU
				if err := s.UnmarshalAttributes(attrs); err != nil {
					t.Fatal(err)
				}
				checkStatsLine(t, m, "conntrack -S expect", cpu, expectStatsFields(&s))
				enc = s.AppendAttributes(nil)
			default:
				t.Fatalf("no decoder for message type %#04x", m.Type)
			}
			if string(enc) != string(attrs) {
				t.Errorf("re-encoding differs from the kernel's bytes:\nkernel %s\nours   %s", hex.EncodeToString(attrs), hex.EncodeToString(enc))
			}
		})
	}
}

// helperOf returns the name of f's helper, "" without one.
func helperOf(f *Flow) string {
	if f.Help == nil {
		return ""
	}
	return f.Help.Name
}
