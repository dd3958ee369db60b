package nflog

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/golden"
	"github.com/ctspec/ctspec/internal/nlattr"
	"github.com/ctspec/ctspec/internal/nstest"
)

// goldenDir holds packet messages captured from a real kernel.
var goldenDir = filepath.Join("testdata", "messages")

var capture = flag.Bool("capture", false, "recapture testdata/messages from the running kernel (needs root)")

// captureSetup is one captured packet: the rules that log it, the group's
// configuration and the traffic.
type captureSetup struct {
	name, desc string
	cmds       [][]string
	cfg        GroupConfig
	port       int
	// bridge sends the tagged broadcast frame of TestKernelBridge instead
	// of UDP to port.
	bridge bool
}

var captureSetups = []captureSetup{
	{"iptables-output", "UDP to 127.0.0.1:9990 at the output hook, mark 0x2a, sequence numbers",
		[][]string{
			{"iptables", "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "--dport", "9990", "-j", "MARK", "--set-mark", "0x2a"},
			{"iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "9990", "-j", "NFLOG", "--nflog-group", "20", "--nflog-prefix", "golden-out"},
		}, GroupConfig{Flags: ConfigFlagsSeq | ConfigFlagsSeqGlobal}, 9990, false},
	{"iptables-input", "UDP to 127.0.0.1:9991 at the input hook: timestamp, link layer address and header",
		[][]string{{"iptables", "-A", "INPUT", "-p", "udp", "--dport", "9991", "-j", "NFLOG", "--nflog-group", "20", "--nflog-prefix", "golden-in"}},
		GroupConfig{}, 9991, false},
	{"nft-netdev-ingress", "UDP to 127.0.0.1:9993 at the netdev ingress hook of lo: link layer header, copy range 40",
		[][]string{{"nft", `add table netdev g
add chain netdev g in { type filter hook ingress device lo priority 0; }
add rule netdev g in udp dport 9993 log group 20 prefix "golden-netdev"`}},
		GroupConfig{CopyMode: CopyModePacket, CopyRange: 40}, 9993, false},
	{"nft-bridge-input", "a broadcast frame with VLAN 5 from veth0 to veth1, a port of br0, at the bridge input hook",
		[][]string{{"nft", `add table bridge b
add chain bridge b in { type filter hook input priority 0; }
add rule bridge b in log group 20 prefix "golden-br"`}},
		GroupConfig{}, 0, true},
}

// capturePackets runs each setup in a new namespace and returns the first
// packet message of each, nfgenmsg included.
func capturePackets(t *testing.T) map[string][]byte {
	nstest.RequireCommands(t, "iptables", "nft")
	out := map[string][]byte{}
	for _, s := range captureSetups {
		ns, c := kernelConn(t)
		for _, cmd := range s.cmds {
			ns.Run(t, cmd[0], cmd[1:]...)
		}
		if s.bridge {
			bridgeSetup(t, ns)
		}
		g := bind(t, c, 20, &s.cfg)
		if s.bridge {
			sendFrame(t, ns, "veth0", bridgeFrame(t, ns))
		} else {
			sendUDP(t, ns, 40000, s.port, 1, 16)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for p, err := range g.Packets(ctx) {
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if s.bridge && !bytes.HasPrefix(p.Payload, bridgePayload) {
				continue
			}
			out[s.name] = slices.Clone(g.msg)
			break
		}
		cancel()
		if out[s.name] == nil {
			t.Fatalf("%s: no packet", s.name)
		}
		g.Close()
	}
	return out
}

// attrTypes lists the attribute types of a packet message, nfgenmsg
// included, in order.
func attrTypes(tb testing.TB, msg []byte) []string {
	var out []string
	d := nlattr.NewDecoder(msg[4:])
	for d.Next() {
		out = append(out, PacketMsgAttr(d.Type()).String())
	}
	if err := d.Err(namePacketMsgAttr); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestCaptureGolden captures the packets of captureSetups and checks that
// the kernel sends the attributes testdata/messages holds, in the same
// order (the values change: timestamps, ids, checksums); with -capture it
// rewrites testdata/messages.
func TestCaptureGolden(t *testing.T) {
	got := capturePackets(t)
	if *capture {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		var uts unix.Utsname
		_ = unix.Uname(&uts)
		for _, s := range captureSetups {
			setup := ""
			for _, c := range s.cmds {
				setup += fmt.Sprintf("%q; ", c)
			}
			m := &golden.Message{Name: s.name, Description: s.desc, Type: msgPacket,
				Comments: map[string]string{"kernel": unix.ByteSliceToString(uts.Release[:]),
					"captured": "go test ./nflog -run TestCaptureGolden -capture",
					"setup":    fmt.Sprintf("%sgroup config %+v", setup, s.cfg)},
				Payload: got[s.name]}
			if err := m.WriteFile(goldenDir); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	want := map[string][]string{}
	for _, m := range goldenMessages(t) {
		want[m.Name] = attrTypes(t, m.Payload)
	}
	gotTypes := map[string][]string{}
	for name, msg := range got {
		gotTypes[name] = attrTypes(t, msg)
	}
	if diff := cmp.Diff(want, gotTypes); diff != "" {
		t.Errorf("attributes of testdata/messages (-) differ from what the kernel sends now (+); rerun with -capture if the kernel changed:\n%s", diff)
	}
}

// goldenMessages loads the captured messages.
func goldenMessages(tb testing.TB) []*golden.Message {
	tb.Helper()
	msgs, err := golden.ParseDir(goldenDir)
	if err != nil {
		tb.Fatal(err)
	}
	return msgs
}

// TestGolden decodes every captured message and checks it against what its
// rules and traffic must carry: the source port 40000, 16 payload bytes
// 0 to 15, the prefix, hook and devices; and that the generated decoder
// agrees and, with no conntrack entry, re-encodes the kernel's bytes.
func TestGolden(t *testing.T) {
	type want struct {
		family               uint8
		prefix               string
		hook                 uint8
		port                 int
		mark                 uint32
		indev, outdev        bool
		timestamp, seq, l2   bool
		payloadLen, hwheader int
	}
	wants := map[string]want{
		"iptables-output":    {2, "golden-out", 3, 9990, 0x2a, false, true, false, true, false, 44, 0},
		"iptables-input":     {2, "golden-in", 1, 9991, 0, true, false, true, false, false, 44, 14},
		"nft-netdev-ingress": {5, "golden-netdev", 0, 9993, 0, true, false, true, false, true, 40, 14},
		"nft-bridge-input":   {7, "golden-br", 1, 0, 0, true, false, true, false, true, 0, 14},
	}
	msgs := goldenMessages(t)
	if len(msgs) != len(wants) {
		t.Fatalf("%d golden messages, want %d", len(msgs), len(wants))
	}
	for _, m := range msgs {
		t.Run(m.Name, func(t *testing.T) {
			w, ok := wants[m.Name]
			if !ok {
				t.Fatal("no expectation")
			}
			if m.Type != msgPacket || m.Payload[0] != w.family || m.Payload[2] != 0 || m.Payload[3] != 20 {
				t.Fatalf("type %#x nfgenmsg %x, want %#x, family %d, group 20", m.Type, m.Payload[:4], msgPacket, w.family)
			}
			var p Packet
			if err := p.decode(m.Payload[4:], ""); err != nil {
				t.Fatal(err)
			}
			hwproto := uint16(0x0800)
			if w.port == 0 {
				hwproto = 0x88b5
			}
			if p.Prefix != w.prefix || p.Hook != w.hook || p.HWProtocol != hwproto || p.Mark != w.mark || p.Unknown != 0 {
				t.Errorf("prefix %q hook %d hw protocol %#x mark %#x unknown %d, want %q, %d, %#x, %#x, 0",
					p.Prefix, p.Hook, p.HWProtocol, p.Mark, p.Unknown, w.prefix, w.hook, hwproto, w.mark)
			}
			if p.InDev != 0 != w.indev || p.OutDev != 0 != w.outdev || p.Has(PacketMsgAttrTimestamp) != w.timestamp ||
				p.Has(PacketMsgAttrSeq) != w.seq || p.Has(PacketMsgAttrL2hdr) != w.l2 || len(p.HWHeader) != w.hwheader {
				t.Errorf("indev %d outdev %d timestamp %v seq %v l2hdr %x hwheader %x, want %v %v %v %v %v %d",
					p.InDev, p.OutDev, p.Has(PacketMsgAttrTimestamp), p.Has(PacketMsgAttrSeq), p.L2Header, p.HWHeader,
					w.indev, w.outdev, w.timestamp, w.seq, w.l2, w.hwheader)
			}
			if w.timestamp && (p.Timestamp.Year() < 2025 || p.Timestamp.Year() > 2100) {
				t.Errorf("timestamp %v", p.Timestamp)
			}
			if w.l2 && (len(p.L2Header) != 14 || int(p.L2Header[12])<<8|int(p.L2Header[13]) != int(hwproto)) {
				t.Errorf("l2hdr %x, want an Ethernet header of type %#x", p.L2Header, hwproto)
			}
			if w.port == 0 {
				// The bridge frame: VLAN 5, from veth1 into br0.
				if !bytes.HasPrefix(p.Payload, []byte("nflog bridge test frame")) || p.VLAN.Tci != 5 || p.VLAN.Proto != 0x8100 || p.PhysInDev == 0 {
					t.Errorf("payload %q vlan %+v physindev %d", p.Payload, p.VLAN, p.PhysInDev)
				}
			} else {
				checkUDPPayload(t, &p, w.payloadLen, w.port)
			}
			var g PacketMsg
			if err := g.UnmarshalAttributes(m.Payload[4:]); err != nil {
				t.Fatal(err)
			}
			if diff := comparePacket(&p, &g); diff != "" {
				t.Error(diff)
			}
			if enc := g.AppendAttributes(nil); canonicalPacket(m.Payload[0], &p) && string(enc) != string(m.Payload[4:]) {
				t.Errorf("re-encoding differs:\nkernel %x\nours   %x", m.Payload[4:], enc)
			}
		})
	}
}

// checkUDPPayload checks the payload of a golden UDP packet: n bytes of a
// datagram from port 40000 to port carrying bytes 0, 1, 2 and so on.
func checkUDPPayload(t *testing.T, p *Packet, n, port int) {
	t.Helper()
	b := p.Payload
	if len(b) != n || udpDstPort(t, b) != port || int(b[20])<<8|int(b[21]) != 40000 {
		t.Errorf("payload %x, want %d bytes of UDP 40000 -> %d", b, n, port)
	}
	if p.Truncated() != (n < 44) {
		t.Errorf("truncated %v with %d bytes", p.Truncated(), len(b))
	}
	for i, c := range b[28:] {
		if int(c) != i {
			t.Fatalf("payload byte %d is %d", i, c)
		}
	}
}
