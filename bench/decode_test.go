package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	mdnetlink "github.com/mdlayher/netlink"
	timo "github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// goldenDir holds the messages captured from a real kernel, in the format
// of internal/golden.
const goldenDir = "../testdata/messages"

// flowMessage is one ctnetlink flow message: nlmsg_type, nlmsg_flags and
// the payload after the nlmsghdr (nfgenmsg and attributes).
type flowMessage struct {
	name    string
	typ     uint16
	flags   uint16
	payload []byte
}

// ctnetlink message types that carry a flow: IPCTNL_MSG_CT_NEW (dump
// replies and NEW and UPDATE events) and IPCTNL_MSG_CT_DELETE (DESTROY
// events).
const (
	msgCtNew    = unix.NFNL_SUBSYS_CTNETLINK<<8 | 0
	msgCtDelete = unix.NFNL_SUBSYS_CTNETLINK<<8 | 2
)

// readGolden reads the flow messages of testdata/messages. The format is
// internal/golden's: "# name: description", "# key: value" lines, a line
// "type 0xTTTT flags 0xFFFF", then the payload in hex.
func readGolden() ([]flowMessage, error) {
	paths, err := filepath.Glob(filepath.Join(goldenDir, "*.txt"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var msgs []flowMessage
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		m := flowMessage{name: strings.TrimSuffix(filepath.Base(p), ".txt")}
		var payload bytes.Buffer
		sawType := false
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "" || strings.HasPrefix(line, "#"):
			case !sawType:
				f := strings.Fields(line)
				if len(f) != 4 || f[0] != "type" || f[2] != "flags" {
					return nil, fmt.Errorf("%s: bad type line %q", p, line)
				}
				t, err1 := strconv.ParseUint(f[1], 0, 16)
				fl, err2 := strconv.ParseUint(f[3], 0, 16)
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("%s: bad type line %q", p, line)
				}
				m.typ, m.flags, sawType = uint16(t), uint16(fl), true
			default:
				b, err := hex.DecodeString(line)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", p, err)
				}
				payload.Write(b)
			}
		}
		m.payload = payload.Bytes()
		if (m.typ == msgCtNew || m.typ == msgCtDelete) && len(m.payload) > 4 {
			msgs = append(msgs, m)
		}
	}
	return msgs, nil
}

// captureMessages creates one flow of each kind in a namespace and returns
// the kernel's dump message for each: the fallback when there are no golden
// messages.
func captureMessages(tb testing.TB) []flowMessage {
	tb.Helper()
	ctx := context.Background()
	t := newTable(tb)
	if err := t.ns.SetSysctl("net.netfilter.nf_conntrack_acct", "1"); err != nil {
		tb.Fatal(err)
	}
	if err := t.ns.SetSysctl("net.netfilter.nf_conntrack_timestamp", "1"); err != nil {
		tb.Fatal(err)
	}
	ap := func(s string, port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(s), port) }
	flow := func(proto uint8, a, b netip.AddrPort) *ctnetlink.Flow {
		var f ctnetlink.Flow
		f.SetTupleOrig(ctnetlink.NewTuple(proto, a, b))
		f.SetTupleReply(ctnetlink.NewTuple(proto, b, a))
		f.SetTimeout(flowTimeout)
		return &f
	}
	kinds := map[string]*ctnetlink.Flow{}
	tcp4 := flow(unix.IPPROTO_TCP, ap("192.0.2.1", 40000), ap("198.51.100.7", 443))
	tcp4.ProtoInfo.TCP.SetState(ctnetlink.TCPStateEstablished)
	kinds["tcp4-established"] = tcp4
	kinds["udp4"] = flow(unix.IPPROTO_UDP, ap("192.0.2.2", 5353), ap("198.51.100.53", 53))
	tcp6 := flow(unix.IPPROTO_TCP, ap("2001:db8::1", 40001), ap("2001:db8::2", 443))
	tcp6.ProtoInfo.TCP.SetState(ctnetlink.TCPStateEstablished)
	kinds["tcp6-established"] = tcp6
	marked := flow(unix.IPPROTO_TCP, ap("192.0.2.3", 40002), ap("198.51.100.8", 80))
	marked.ProtoInfo.TCP.SetState(ctnetlink.TCPStateEstablished)
	marked.SetMark(0x1234)
	marked.SetZone(7)
	kinds["tcp4-mark-zone"] = marked
	icmp := flow(unix.IPPROTO_ICMP, ap("192.0.2.4", 0), ap("198.51.100.9", 0))
	icmp.TupleOrig.SetICMP(8, 0, 77)
	icmp.TupleReply.SetICMP(0, 0, 77)
	kinds["icmp4-echo"] = icmp

	var msgs []flowMessage
	raw, err := newRawDumper(t.ns)
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.close()
	for name, f := range kinds {
		if err := t.c.Create(ctx, f); err != nil {
			tb.Fatalf("create %s: %v", name, err)
		}
		if _, err := raw.walk(func(msg []byte) {
			msgs = append(msgs, flowMessage{
				name:    name,
				typ:     binary.NativeEndian.Uint16(msg[4:]),
				flags:   binary.NativeEndian.Uint16(msg[6:]),
				payload: bytes.Clone(msg[unix.NLMSG_HDRLEN:]),
			})
		}); err != nil {
			tb.Fatal(err)
		}
		t.flush(tb)
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].name < msgs[j].name })
	return msgs
}

// BenchmarkDecode decodes one flow message of each kind: with ctspec's
// Flow.UnmarshalAttributes and with ti-mo/conntrack's Event.Unmarshal, its
// only exported decoder of a flow. vishvananda/netlink exports no decoder.
// The messages are those of testdata/messages when it exists, otherwise
// dump messages captured from a namespace at the start of the run.
func BenchmarkDecode(b *testing.B) {
	msgs, err := readGolden()
	if err != nil {
		b.Fatal(err)
	}
	if len(msgs) == 0 {
		msgs = captureMessages(b)
	}
	for _, m := range msgs {
		attrs := m.payload[4:]
		b.Run(m.name+"/ctspec", func(b *testing.B) {
			var f ctnetlink.Flow
			b.ReportAllocs()
			b.SetBytes(int64(len(m.payload)))
			for i := 0; i < b.N; i++ {
				if err := f.UnmarshalAttributes(attrs); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/ti-mo", func(b *testing.B) {
			nlm := mdnetlink.Message{
				Header: mdnetlink.Header{Type: mdnetlink.HeaderType(m.typ), Flags: mdnetlink.HeaderFlags(m.flags)},
				Data:   m.payload,
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(m.payload)))
			for i := 0; i < b.N; i++ {
				var ev timo.Event
				if err := ev.Unmarshal(nlm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
