package cttimeout

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/golden"
	"github.com/ctspec/ctspec/internal/nlattr"
	"github.com/ctspec/ctspec/nfnl"
)

// goldenDir holds cttimeout messages captured from a real kernel.
var goldenDir = filepath.Join("testdata", "messages")

var capture = flag.Bool("capture", false, "recapture testdata/messages from the running kernel (needs root)")

// captureSetups are the policies the capture makes with nfct, one per
// protocol with a timeout set on Linux 6.18, and the defaults it reads.
var captureSetups = []struct {
	name, args string
}{
	{"policy-tcp", "add policy-tcp inet tcp established 100 syn_sent 5"},
	{"policy-udp6", "add policy-udp6 inet6 udp replied 33"},
	{"policy-udplite", "add policy-udplite inet udplite unreplied 9"},
	{"policy-icmp", "add policy-icmp inet icmp timeout 4"},
	{"policy-icmpv6", "add policy-icmpv6 inet6 icmpv6 timeout 6"},
	{"policy-sctp", "add policy-sctp inet sctp closed 7"},
	{"policy-gre", "add policy-gre inet gre unreplied 3"},
	{"policy-generic", "add policy-generic inet generic timeout 42"},
}

// TestCaptureGolden captures the dump of the policies nfct made in a new
// namespace, and the default-get replies, and checks that the kernel sends
// what testdata/messages holds; with -capture it rewrites testdata/messages.
func TestCaptureGolden(t *testing.T) {
	dir := goldenDir
	if !*capture {
		dir = t.TempDir()
	}
	captureTo(t, dir)
	if *capture {
		return
	}
	want, err := golden.ParseDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := golden.ParseDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	payloads := func(ms []*golden.Message) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			out[m.Name] = fmt.Sprintf("type %#x flags %#x payload %x", m.Type, m.Flags, m.Payload)
		}
		return out
	}
	if diff := cmp.Diff(payloads(want), payloads(got)); diff != "" {
		t.Errorf("testdata/messages (-) differs from what the kernel sends now (+); rerun with -capture if the kernel changed:\n%s", diff)
	}
}

// captureTo writes the captured messages to dir.
func captureTo(t *testing.T, goldenDir string) {
	ns, c := kernelConn(t)
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	kernel := unix.ByteSliceToString(uts.Release[:])
	for _, s := range captureSetups {
		ns.Run(t, "nfct", append([]string{"timeout"}, strings.Fields(s.args)...)...)
	}
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, desc, setup string, r *nfnl.Reply) {
		m := &golden.Message{Name: name, Description: desc, Type: uint16(r.Header.Type), Flags: uint16(r.Header.Flags),
			Comments: map[string]string{"kernel": kernel, "captured": "go test ./cttimeout -run TestCaptureGolden -capture", "setup": setup},
			Payload:  append(nfnl.Header{Family: r.Family, Version: nfnl.Version0, ResourceID: r.ResourceID}.Append(nil), r.Attrs...)}
		if err := m.WriteFile(goldenDir); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	err := c.nl.Do(context.Background(), nfnl.Req{Type: msgType(MsgGet), Flags: nfnl.Dump}, func(r *nfnl.Reply) error {
		s := captureSetups[i]
		write(s.name, "dump reply for the policy nfct made", "nfct timeout "+s.args, r)
		i++
		return nil
	})
	if err != nil || i != len(captureSetups) {
		t.Fatalf("dump: %d replies, error %v", i, err)
	}
	for _, d := range []struct {
		name, args string
		family     uint16
		proto      uint8
	}{
		{"default-tcp", "inet tcp", unix.NFPROTO_IPV4, unix.IPPROTO_TCP},
		{"default-udp", "inet udp", unix.NFPROTO_IPV4, unix.IPPROTO_UDP},
		{"default-sctp6", "inet6 sctp", unix.NFPROTO_IPV6, unix.IPPROTO_SCTP},
	} {
		var m Message
		m.SetL3Proto(d.family)
		m.SetL4Proto(d.proto)
		attrs := m.AppendAttributes(nil)
		err := c.nl.Do(context.Background(), nfnl.Req{Type: msgType(MsgDefaultGet), Flags: nfnl.Acknowledge,
			Attrs: func(b []byte) []byte { return append(b, attrs...) }}, func(r *nfnl.Reply) error {
			write(d.name, "default-get reply", "same as nfct timeout default-get "+d.args, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
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

// TestGolden decodes every captured message: no error, no unknown
// attribute, a state for every attribute of the protocol's set, and the
// data nest re-encoded by the generated codec to the kernel's bytes.
func TestGolden(t *testing.T) {
	msgs := goldenMessages(t)
	if len(msgs) == 0 {
		t.Fatal("no golden messages")
	}
	for _, m := range msgs {
		t.Run(m.Name, func(t *testing.T) {
			p, err := decodePolicy(m.Payload[4:])
			if err != nil {
				t.Fatal(err)
			}
			if p.Unknown != 0 {
				t.Errorf("%d unknown attributes", p.Unknown)
			}
			if got, want := len(p.Timeouts), len(States(p.Protocol)); got != want {
				t.Errorf("%d states, want %d", got, want)
			}
			if strings.HasPrefix(m.Name, "policy-") && p.Name != m.Name {
				t.Errorf("name %q, want %q", p.Name, m.Name)
			}
			data := dataOf(t, m.Payload[4:])
			enc, err := encodeTimeouts(p.Protocol, p.Timeouts)
			if err != nil || string(enc) != string(data) {
				t.Errorf("re-encoded data differs (error %v):\nkernel %x\nours   %x", err, data, enc)
			}
		})
	}
}

// dataOf returns the payload of the data attribute in b.
func dataOf(tb testing.TB, b []byte) []byte {
	d := nlattr.NewDecoder(b)
	for d.Next() {
		if MessageAttr(d.Type()) == MessageAttrData {
			return d.Bytes()
		}
	}
	tb.Fatal("no data attribute")
	return nil
}
