package nfqueue

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/golden"
	"github.com/ctspec/ctspec/internal/nlattr"
	"github.com/ctspec/ctspec/internal/nstest"
	"github.com/ctspec/ctspec/nfnl"
)

// goldenDir holds packet messages captured from a real kernel.
var goldenDir = filepath.Join("testdata", "messages")

var capture = flag.Bool("capture", false, "recapture testdata/messages from the running kernel (needs root)")

// captureCase is one captured packet message: the rule that queues it, the
// queue's configuration and how the packet is sent.
type captureCase struct {
	name, desc string
	rules      [][]string // iptables or ip6tables command lines; PORT is the receiver's port
	mode       CopyMode
	copyRange  uint32
	flags      Flags
	send       func(t *testing.T, e *env)
}

var captureCases = []captureCase{
	{
		name: "udp4-output", desc: "UDP from a local socket with a mark and a priority, queued from OUTPUT with uid and gid",
		rules: [][]string{
			{"iptables", "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "--dport", "PORT", "-j", "MARK", "--set-mark", "0x2a"},
			{"iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "PORT", "-j", "NFQUEUE", "--queue-num", "0"},
		},
		mode: CopyModePacket, flags: FlagsUIDGID,
		send: func(t *testing.T, e *env) {
			s := e.sender(t, 40000)
			raw, err := s.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PRIORITY, 5) })
			send(t, s, "golden")
		},
	},
	{
		name: "udp4-input", desc: "UDP received on lo, queued from INPUT",
		rules: [][]string{{"iptables", "-A", "INPUT", "-p", "udp", "--dport", "PORT", "-j", "NFQUEUE", "--queue-num", "0"}},
		mode:  CopyModePacket,
		send:  func(t *testing.T, e *env) { send(t, e.sender(t, 40000), "golden") },
	},
	{
		name: "udp4-meta", desc: "UDP queued from OUTPUT in copy mode meta: no payload",
		rules: [][]string{{"iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "PORT", "-j", "NFQUEUE", "--queue-num", "0"}},
		mode:  CopyModeMeta,
		send:  func(t *testing.T, e *env) { send(t, e.sender(t, 40000), "golden") },
	},
	{
		name: "udp4-truncated", desc: "UDP queued from OUTPUT with a copy range of 20 bytes: cap-len gives the whole length",
		rules: [][]string{{"iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "PORT", "-j", "NFQUEUE", "--queue-num", "0"}},
		mode:  CopyModePacket, copyRange: 20,
		send: func(t *testing.T, e *env) { send(t, e.sender(t, 40000), "golden") },
	},
	{
		name: "tcp6-syn", desc: "TCP SYN over IPv6 loopback, queued from OUTPUT",
		rules: [][]string{{"ip6tables", "-A", "OUTPUT", "-p", "tcp", "--dport", "PORT", "-j", "NFQUEUE", "--queue-num", "0"}},
		mode:  CopyModePacket,
		send: func(t *testing.T, e *env) {
			// A non-blocking connect sends the SYN and returns at once.
			err := e.ns.Do(func() error {
				fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
				if err != nil {
					return err
				}
				t.Cleanup(func() { unix.Close(fd) })
				if err := unix.Bind(fd, &unix.SockaddrInet6{Port: 40000, Addr: [16]byte{15: 1}}); err != nil {
					return err
				}
				if err := unix.Connect(fd, &unix.SockaddrInet6{Port: e.port, Addr: [16]byte{15: 1}}); err != unix.EINPROGRESS {
					return fmt.Errorf("connect: %v, want EINPROGRESS", err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		},
	},
}

// captureRaw binds queue 0 of a new namespace to a socket of its own with
// the generated codec alone, sends the case's packet and returns the
// packet message the kernel sends.
func captureRaw(t *testing.T, cc captureCase) (netlink.Header, []byte) {
	t.Helper()
	e := newEnv(t)
	for _, r := range cc.rules {
		args := slices.Clone(r[1:])
		for i, a := range args {
			if a == "PORT" {
				args[i] = strconv.Itoa(e.port)
			}
		}
		e.ns.Run(t, r[0], args...)
	}
	s, err := nfnl.DialSocket(&nfnl.SocketConfig{NetNS: e.ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var bind, params ConfigMessage
	bind.SetCommand(ConfigCmd{Command: CommandBind})
	params.SetParams(ConfigParams{CopyMode: cc.mode, CopyRange: cc.copyRange})
	params.SetMask(knownFlags)
	params.SetFlags(cc.flags)
	for _, m := range []ConfigMessage{bind, params} {
		attrs := m.AppendAttributes(nil)
		err := s.Request(ctx, nfnl.Req{Type: netlink.HeaderType(MsgConfig), Flags: nfnl.Acknowledge, Attrs: func(b []byte) []byte { return append(b, attrs...) }}, nil)
		if err != nil {
			t.Fatalf("config %+v: %v", m, err)
		}
	}
	cc.send(t, e)
	stop := s.Watch(ctx)
	defer stop()
	b, err := s.Receive(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	h, data, _, err := nfnl.NextMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	return h, append([]byte(nil), data...)
}

// TestCaptureGolden captures a packet message for each case and checks
// that the kernel sends the attributes testdata/messages holds, with the
// same lengths (ids, ports, addresses of interfaces and times differ from
// run to run); with -capture it rewrites testdata/messages.
func TestCaptureGolden(t *testing.T) {
	nstest.RequireCommands(t, "iptables", "ip6tables")
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	kernel := unix.ByteSliceToString(uts.Release[:])
	for _, cc := range captureCases {
		t.Run(cc.name, func(t *testing.T) {
			h, data := captureRaw(t, cc)
			if *capture {
				m := &golden.Message{Name: cc.name, Description: cc.desc, Type: uint16(h.Type), Flags: uint16(h.Flags), Payload: data,
					Comments: map[string]string{"kernel": kernel, "captured": "go test ./nfqueue -run TestCaptureGolden -capture", "setup": fmt.Sprint(cc.rules)}}
				if err := os.MkdirAll(goldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := m.WriteFile(goldenDir); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := golden.ParseFile(filepath.Join(goldenDir, cc.name+golden.Ext))
			if err != nil {
				t.Fatal(err)
			}
			if h.Type != netlink.HeaderType(want.Type) {
				t.Errorf("type %#x, want %#x", h.Type, want.Type)
			}
			if diff := cmp.Diff(attrShape(t, want.Payload), attrShape(t, data)); diff != "" {
				t.Errorf("attributes (type:length) differ from testdata/messages (-want +got); rerun with -capture if the kernel changed:\n%s", diff)
			}
		})
	}
}

// attrShape lists the types and lengths of the attributes of a packet
// message payload, in order.
func attrShape(t *testing.T, payload []byte) []string {
	t.Helper()
	var out []string
	d := nlattr.NewDecoder(payload[nfnl.HeaderLen:])
	for d.Next() {
		out = append(out, fmt.Sprintf("%v:%d", MessageAttr(d.Type()), len(d.Bytes())))
	}
	return out
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
