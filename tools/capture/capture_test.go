package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"

	"github.com/ctspec/ctspec/internal/golden"
	"github.com/ctspec/ctspec/internal/nstest"
)

// TestCapture runs a whole capture in a temporary directory and checks that
// every expected file is there and parses back.
func TestCapture(t *testing.T) {
	nstest.RequireRoot(t)
	nstest.RequireCommands(t, "nsenter", "conntrack", "nft")

	dir := t.TempDir()
	stale := &golden.Message{
		Name:     "stats-cpu-4095",
		Comments: map[string]string{"captured": capturedBy},
		Payload:  []byte{0, 0, 0x0f, 0xff},
	}
	if err := stale.WriteFile(dir); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "hand-written.txt")
	if err := os.WriteFile(foreign, []byte("# hand-written: kept\ntype 0x0100 flags 0x0000\n02000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run([]string{"-out", dir}, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("summary:\n%s", out.String())

	msgs, err := golden.ParseDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]*golden.Message)
	for _, m := range msgs {
		got[m.Name] = m
	}
	if _, ok := got[stale.Name]; ok {
		t.Errorf("%s of an earlier capture was not removed", stale.Name)
	}
	if _, ok := got["hand-written"]; !ok {
		t.Error("a file the tool did not write was removed")
	}

	for _, m := range msgs {
		if m.Name == "hand-written" {
			continue
		}
		for _, k := range []string{"kernel", "captured", "conntrack-tools", "request"} {
			if m.Comments[k] == "" {
				t.Errorf("%s: no %q comment", m.Name, k)
			}
		}
	}

	flows := append(append([]*flow(nil), cliFlows...), trafficFlows...)
	for _, f := range flows {
		m, ok := got[f.name]
		if !ok {
			if f.optional && strings.Contains(out.String(), "  "+f.name+": ") {
				continue // skipped, and the summary says why
			}
			t.Errorf("%s: no file", f.name)
			continue
		}
		checkType(t, m, 0x0100)
		keys := []string{"setup", keyXML, keyLine}
		if f.labels != nil {
			keys = append(keys, keyLabels, keyLabelConf)
		}
		for _, k := range keys {
			if m.Comments[k] == "" {
				t.Errorf("%s: no %q comment", f.name, k)
			}
		}
		if k, err := flowTuple(m.Payload, ctaTupleOrig); err != nil || k != f.key {
			t.Errorf("%s: original tuple %v (%v), want %v", f.name, k, err, f.key)
		}
		if m.Payload[0] != f.key.family() {
			t.Errorf("%s: nfgenmsg family %d, want %d", f.name, m.Payload[0], f.key.family())
		}
	}
	for _, e := range expectations {
		m, ok := got[e.name]
		if !ok {
			t.Errorf("%s: no file", e.name)
			continue
		}
		checkType(t, m, 0x0200)
		for _, k := range []string{"setup", keyExpectXML, keyExpLine} {
			if m.Comments[k] == "" {
				t.Errorf("%s: no %q comment", e.name, k)
			}
		}
		if k, err := flowTuple(m.Payload, ctaExpectMaster); err != nil || k != e.master.key {
			t.Errorf("%s: master tuple %v (%v), want %v", e.name, k, err, e.master.key)
		}
	}
	for _, s := range []struct {
		name, comment string
		typ           uint16
	}{
		{"stats-cpu-0", keyStats, 0x0104},
		{"exp-stats-cpu-0", keyExpStats, 0x0103},
		{"stats-global", keyCount, 0x0105},
	} {
		m, ok := got[s.name]
		if !ok {
			t.Errorf("%s: no file", s.name)
			continue
		}
		checkType(t, m, s.typ)
	}
	// Every statistics file has what conntrack-tools printed beside it.
	for _, m := range msgs {
		for prefix, k := range map[string]string{"stats-cpu-": keyStats, "exp-stats-cpu-": keyExpStats, "stats-global": keyCount} {
			if strings.HasPrefix(m.Name, prefix) && m.Comments[k] == "" {
				t.Errorf("%s: no %q comment", m.Name, k)
			}
		}
	}
}

func checkType(t *testing.T, m *golden.Message, typ uint16) {
	t.Helper()
	if m.Type != typ || m.Flags != uint16(netlink.Multi) {
		t.Errorf("%s: type 0x%04x flags 0x%04x, want type 0x%04x flags 0x%04x", m.Name, m.Type, m.Flags, typ, uint16(netlink.Multi))
	}
}

func TestFlowTuple(t *testing.T) {
	k4 := key(protoTCP, "192.0.2.1", "198.51.100.1", 40001, 80)
	k6 := key(protoICMPv6, "2001:db8::1", "2001:db8:1::1", 0, 0)
	msg := func(typ uint16, k flowKey) []byte {
		ae := netlink.NewAttributeEncoder()
		ae.Uint32(3, 8) // an unrelated attribute first
		ae.Nested(typ, func(nae *netlink.AttributeEncoder) error { return encodeTuple(nae, k) })
		b, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return append(nfgenmsg(k.family()), b...)
	}
	tests := []struct {
		name    string
		payload []byte
		typ     uint16
		want    flowKey
		ok      bool
	}{
		{name: "IPv4", payload: msg(ctaTupleOrig, k4), typ: ctaTupleOrig, want: k4, ok: true},
		{name: "IPv6 master", payload: msg(ctaExpectMaster, k6), typ: ctaExpectMaster, want: k6, ok: true},
		{name: "absent", payload: msg(2, k4), typ: ctaTupleOrig},
		{name: "short", payload: []byte{2, 0}, typ: ctaTupleOrig},
		{name: "truncated attribute", payload: append(nfgenmsg(2), 0x20, 0, 1, 0x80), typ: ctaTupleOrig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := flowTuple(tt.payload, tt.typ)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want success %v", err, tt.ok)
			}
			if tt.ok && got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseConntrackOutput(t *testing.T) {
	const flows = `tcp      6 599 ESTABLISHED src=192.0.2.1 dst=198.51.100.1 sport=40001 dport=80 packets=0 bytes=0 src=198.51.100.1 dst=192.0.2.1 sport=80 dport=40001 packets=0 bytes=0 [ASSURED] mark=0 use=1
icmp     1 29 src=192.0.2.5 dst=198.51.100.5 type=8 code=0 id=4660 [UNREPLIED] src=198.51.100.5 dst=192.0.2.5 type=0 code=0 id=4660 mark=0 use=1
gre      47 599 src=192.0.2.8 dst=198.51.100.8 srckey=0x1234 dstkey=0x5678 [UNREPLIED] src=198.51.100.8 dst=192.0.2.8 srckey=0x5678 dstkey=0x1234 mark=0 use=1
`
	const expects = `299 proto=6 src=::1 dst=::1 sport=0 dport=50000 mask-src=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff mask-dst=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff sport=0 dport=65535 master-src=::1 master-dst=::1 sport=40102 dport=21 class=0 helper=ftp
`
	const xmlFlows = `<?xml version="1.0" encoding="utf-8"?>
<conntrack>
<flow><meta direction="original"><layer3 protonum="2" protoname="ipv4"><src>192.0.2.8</src><dst>198.51.100.8</dst></layer3><layer4 protonum="47" protoname="gre"><srckey>0x1234</srckey><dstkey>0x5678</dstkey></layer4></meta><meta direction="reply"><layer3 protonum="2" protoname="ipv4"><src>198.51.100.8</src><dst>192.0.2.8</dst></layer3><layer4 protonum="47" protoname="gre"><srckey>0x5678</srckey><dstkey>0x1234</dstkey></layer4></meta></flow>
<flow><meta direction="original"><layer3 protonum="2" protoname="ipv4"><src>192.0.2.5</src><dst>198.51.100.5</dst></layer3><layer4 protonum="1" protoname="icmp"></layer4></meta></flow>
</conntrack>`
	const xmlExpects = `<?xml version="1.0" encoding="utf-8"?>
<expect>
<flow><layer3 protonum="2" protoname="ipv4"><expected><src>127.0.0.1</src><dst>127.0.0.1</dst></expected><mask><src>255.255.255.255</src><dst>255.255.255.255</dst></mask><master><src>127.0.0.1</src><dst>127.0.0.1</dst></master></layer3><layer4 protonum="6" protoname="tcp"><expected><sport>0</sport><dport>50000</dport></expected><mask><sport>0</sport><dport>65535</dport></mask><master><sport>40102</sport><dport>21</dport></master></layer4><meta><helper-name>ftp</helper-name><timeout>299</timeout><class>0</class></meta></flow>
</expect>`

	tcp := key(protoTCP, "192.0.2.1", "198.51.100.1", 40001, 80)
	icmp := key(protoICMP, "192.0.2.5", "198.51.100.5", 0, 0)
	gre := key(protoGRE, "192.0.2.8", "198.51.100.8", 0x1234, 0x5678)
	ftp6 := key(protoTCP, "::1", "::1", 40102, 21)
	ftp4 := key(protoTCP, "127.0.0.1", "127.0.0.1", 40102, 21)

	keysOf := func(m map[flowKey]string) []string {
		var s []string
		for k := range m {
			s = append(s, k.String())
		}
		slices.Sort(s)
		return s
	}
	tests := []struct {
		name  string
		parse func(string) (map[flowKey]string, error)
		in    string
		want  []flowKey
	}{
		{"flow lines", parseFlowLines, flows, []flowKey{tcp, icmp, gre}},
		{"expectation lines", parseExpectLines, expects, []flowKey{ftp6}},
		{"flow XML", parseXMLFlows, xmlFlows, []flowKey{gre, icmp}},
		{"expectation XML", parseXMLExpects, xmlExpects, []flowKey{ftp4}},
		{"nothing", parseFlowLines, "\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			want := make(map[flowKey]string)
			for _, k := range tt.want {
				want[k] = ""
			}
			if diff := cmp.Diff(keysOf(want), keysOf(got)); diff != "" {
				t.Fatalf("keys (-want +got):\n%s", diff)
			}
			for k, v := range got {
				if strings.Contains(v, "  ") || strings.Contains(v, "\n") {
					t.Errorf("%v: line %q not normalised", k, v)
				}
			}
		})
	}

	for _, in := range []string{
		"tcp x 599 src=192.0.2.1 dst=198.51.100.1",
		"tcp 6 599 src=192.0.2.999 dst=198.51.100.1",
		"tcp 6 599 src=192.0.2.1 dst=198.51.100.1 sport=70000",
	} {
		if _, err := parseFlowLines(in); err == nil {
			t.Errorf("parseFlowLines(%q) succeeded, want an error", in)
		}
	}
	if _, err := parseXMLFlows("<flow><meta direction="); err == nil {
		t.Error("parseXMLFlows of broken XML succeeded")
	}
}

func TestParseStats(t *testing.T) {
	in := "cpu=0   \tfound=0 invalid=1 insert=8\ncpu=1   \tfound=2 invalid=0 insert=3\nnot a stats line\n"
	want := map[int]string{
		0: "cpu=0 found=0 invalid=1 insert=8",
		1: "cpu=1 found=2 invalid=0 insert=3",
	}
	if diff := cmp.Diff(want, parseStats(in)); diff != "" {
		t.Fatalf("parseStats (-want +got):\n%s", diff)
	}
}

func TestLabelBitmap(t *testing.T) {
	got := labelBitmap([]int{0, 1, 42, 127})
	// Bits are numbered within 32-bit words in host byte order.
	var want []byte
	for _, w := range []uint32{0x00000003, 0x00000400, 0, 0x80000000} {
		want = binary.NativeEndian.AppendUint32(want, w)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("labelBitmap (-want +got):\n%s", diff)
	}
}

func TestLabelMap(t *testing.T) {
	if got, want := labelMap([]int{127, 1, 42, 1}), "1 bit-1\n42 bit-42\n127 bit-127"; got != want {
		t.Errorf("labelMap = %q, want %q", got, want)
	}
}

func TestDumpReqString(t *testing.T) {
	tests := []struct {
		req  dumpReq
		want string
	}{
		{reqFlows, "IPCTNL_MSG_CT_GET (0x0101), NLM_F_REQUEST|NLM_F_DUMP, nfgenmsg family AF_UNSPEC"},
		{reqExpStats, "IPCTNL_MSG_EXP_GET_STATS_CPU (0x0203), NLM_F_REQUEST|NLM_F_DUMP, nfgenmsg family AF_UNSPEC"},
		{reqGlobal, "IPCTNL_MSG_CT_GET_STATS (0x0105), NLM_F_REQUEST|NLM_F_ACK, nfgenmsg family AF_UNSPEC"},
	}
	for _, tt := range tests {
		if got := tt.req.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestRunRejectsArguments(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-out", t.TempDir(), "extra"}, &out); err == nil {
		t.Fatal("run with a stray argument succeeded")
	}
}
