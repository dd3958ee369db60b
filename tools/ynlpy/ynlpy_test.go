package ynlpy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// python is the interpreter that runs the consumer: $CTSPEC_PYTHON, or
// python3 from $PATH. It needs PyYAML, and jsonschema for validate.py.
var python = func() string {
	if p := os.Getenv("CTSPEC_PYTHON"); p != "" {
		return p
	}
	return "python3"
}()

const (
	repoRoot   = "../.."
	specPath   = "../../spec/conntrack.yaml"
	schemaPath = "../../spec/schema/netlink-raw.yaml"
)

// requirePython skips the test unless python3 can import the modules, or
// fails it when CTSPEC_REQUIRE_KERNEL=1.
func requirePython(t *testing.T, modules ...string) {
	t.Helper()
	nstest.RequireCommands(t, python)
	out, err := exec.Command(python, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("python3 cannot import %s (Debian: python3-yaml, python3-jsonschema): %v\n%s", strings.Join(modules, ", "), err, out)
		nstest.SkipOrFail(t, msg)
	}
}

// netlinkRawSpecs lists the files of the module that are netlink-raw specs.
func netlinkRawSpecs(t *testing.T) []string {
	t.Helper()
	var specs []string
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "schema" {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".golden" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("\nprotocol: netlink-raw\n")) {
			specs = append(specs, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

// TestSchema validates every netlink-raw spec of the module against the
// kernel's schema, and checks that the validation rejects what the schema
// forbids.
func TestSchema(t *testing.T) {
	requirePython(t, "yaml", "jsonschema")
	specs := netlinkRawSpecs(t)
	if len(specs) < 2 || !contains(specs, filepath.Clean(specPath)) {
		t.Fatalf("found specs %v, want spec/conntrack.yaml among several", specs)
	}
	out, err := exec.Command(python, append([]string{"validate.py", schemaPath}, specs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("validate.py: %v\n%s", err, out)
	}
	for _, s := range specs {
		if !strings.Contains(string(out), "ok "+s+"\n") {
			t.Errorf("validate.py did not accept %s:\n%s", s, out)
		}
	}

	orig, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, old, new, want string }{
		{"a name with a space", "name: labels-mask\n", "name: labels mask\n", "'labels mask' does not match"},
		{"a key the schema lacks", "    name: nfgenmsg\n", "    name: nfgenmsg\n    go-name: X\n", "'go-name' was unexpected"},
		{"an operation without doc", "      doc: Event of a new expectation, sent to conntrack-exp-new with NLM_F_CREATE and NLM_F_EXCL set.\n", "", "'doc' is a required property"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(orig, []byte(tt.old)) {
				t.Fatalf("spec lacks %q", tt.old)
			}
			bad := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(bad, bytes.Replace(orig, []byte(tt.old), []byte(tt.new), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(python, "validate.py", schemaPath, bad).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Errorf("validate.py: err %v, output %s; want a failure mentioning %q", err, out, tt.want)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// names is the output of ynlpy.py --names.
type names struct {
	Attributes    map[string]string `json:"attributes"`
	Replies       map[string]string `json:"replies"`
	Requests      map[string]string `json:"requests"`
	Notifications []int             `json:"notifications"`
}

// TestNames: built the way YNL builds them, the tables map each value to
// its current kernel name, per-CPU statistics to get-stats and conntrack
// events to notifications.
func TestNames(t *testing.T) {
	requirePython(t, "yaml")
	get := func(set string) names {
		out, err := exec.Command(python, "ynlpy.py", "--spec", specPath, "--names", set).Output()
		if err != nil {
			t.Fatalf("ynlpy.py --names %s: %v", set, err)
		}
		var n names
		if err := json.Unmarshal(out, &n); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return n
	}
	ct := get("conntrack-attrs")
	for v, want := range map[string]string{"6": "nat-src", "15": "seq-adj-orig", "16": "seq-adj-reply", "23": "labels-mask", "20": "timestamp", "25": "filter"} {
		if ct.Attributes[v] != want {
			t.Errorf("conntrack-attrs value %s is %q, want %q", v, ct.Attributes[v], want)
		}
	}
	nat := get("nat-attrs")
	if diff := cmp.Diff(map[string]string{"1": "nat-v4-minip", "2": "nat-v4-maxip", "3": "nat-proto", "4": "nat-v6-minip", "5": "nat-v6-maxip"}, nat.Attributes); diff != "" {
		t.Errorf("nat-attrs (-want +got):\n%s", diff)
	}
	for v, want := range map[string]string{"256": "new-ntf", "258": "delete-ntf", "512": "exp-new-ntf", "514": "exp-delete-ntf", "260": "get-stats", "261": "get-stats-global"} {
		if ct.Replies[v] != want {
			t.Errorf("reply type %s is %q, want %q", v, ct.Replies[v], want)
		}
	}
	if diff := cmp.Diff([]int{0x100, 0x102, 0x200, 0x202}, ct.Notifications); diff != "" {
		t.Errorf("notification types (-want +got):\n%s", diff)
	}
}

// consumer runs ynlpy.py inside ns and decodes its JSON output into v.
func consumer(t *testing.T, ns *nstest.NS, v any, args ...string) {
	t.Helper()
	out := ns.Run(t, python, append([]string{"ynlpy.py", "--spec", specPath}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("ynlpy.py %v: %v\n%s", args, err, out)
	}
}

type msg = map[string]any

func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

func sub(m msg, keys ...string) msg {
	for _, k := range keys {
		n, _ := m[k].(map[string]any)
		m = n
	}
	return m
}

func has(list any, s string) bool {
	l, _ := list.([]any)
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

var protoNames = map[string]string{"6": "tcp", "17": "udp", "1": "icmp"}

// flowLine is how conntrack -L -o id shows a flow, reduced to the fields
// compared: the flow's decoded form from ynlpy.py goes through flowFromMsg,
// conntrack's text through flowFromText.
func flowFromMsg(m msg) string {
	o, r := sub(m, "tuple-orig"), sub(m, "tuple-reply")
	proto := protoNames[str(sub(o, "tuple-proto")["proto-num"])]
	var b strings.Builder
	fmt.Fprintf(&b, "%s", proto)
	if st := str(sub(m, "protoinfo", "protoinfo-tcp")["tcp-state"]); st != "" {
		fmt.Fprintf(&b, " %s", strings.ToUpper(strings.ReplaceAll(st, "-", "_")))
	}
	tuple := func(t msg) string {
		return fmt.Sprintf(" src=%s dst=%s sport=%s dport=%s", str(sub(t, "tuple-ip")["ip-v4-src"]), str(sub(t, "tuple-ip")["ip-v4-dst"]),
			str(sub(t, "tuple-proto")["proto-src-port"]), str(sub(t, "tuple-proto")["proto-dst-port"]))
	}
	b.WriteString(tuple(o) + tuple(r))
	if !has(m["status"], "seen-reply") {
		b.WriteString(" [UNREPLIED]")
	}
	if has(m["status"], "assured") {
		b.WriteString(" [ASSURED]")
	}
	mark := str(m["mark"])
	if mark == "" {
		mark = "0"
	}
	fmt.Fprintf(&b, " mark=%s", mark)
	if z := str(m["zone"]); z != "" && z != "0" {
		fmt.Fprintf(&b, " zone=%s", z)
	}
	fmt.Fprintf(&b, " id=%s", str(m["id"]))
	return b.String()
}

func flowFromText(line string) string {
	f := strings.Fields(line)
	if len(f) < 3 {
		return "short line: " + line
	}
	var b strings.Builder
	b.WriteString(f[0])
	kv := map[string]string{}
	var flags []string
	n := map[string]int{}
	tuple := ""
	for _, w := range f[3:] {
		k, v, ok := strings.Cut(w, "=")
		switch {
		case !ok && strings.HasPrefix(w, "[") && w != "[USERSPACE]":
			flags = append(flags, w)
		case !ok && w == strings.ToUpper(w) && !strings.HasPrefix(w, "["):
			fmt.Fprintf(&b, " %s", w)
		case ok && (k == "src" || k == "dst" || k == "sport" || k == "dport"):
			n[k]++
			if n[k] <= 2 {
				tuple += " " + w
			}
		case ok:
			if _, dup := kv[k]; !dup {
				kv[k] = v
			}
		}
	}
	b.WriteString(tuple)
	for _, fl := range []string{"[UNREPLIED]", "[ASSURED]"} {
		if contains(flags, fl) {
			b.WriteString(" " + fl)
		}
	}
	mark := kv["mark"]
	if mark == "" {
		mark = "0"
	}
	fmt.Fprintf(&b, " mark=%s", mark)
	if z := kv["zone"]; z != "" && z != "0" {
		fmt.Fprintf(&b, " zone=%s", z)
	}
	fmt.Fprintf(&b, " id=%s", kv["id"])
	return b.String()
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// statsFromText parses conntrack -S: one line per CPU of key=value pairs.
// Keys lose their underscores and the prefix, so that chaintoolong and
// expect_new compare with chain-toolong and new.
func statsFromText(s, prefix string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, l := range lines(s) {
		m := map[string]string{}
		cpu := ""
		for _, w := range strings.Fields(l) {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				continue
			}
			if k == "cpu" {
				cpu = v
				continue
			}
			m[strings.ReplaceAll(strings.TrimPrefix(k, prefix), "_", "")] = v
		}
		out[cpu] = m
	}
	return out
}

func statsFromMsgs(ms []msg) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, m := range ms {
		s := map[string]string{}
		for k, v := range m {
			switch k {
			case "nfgen-family", "version", "res-id":
				continue
			}
			s[strings.ReplaceAll(k, "-", "")] = str(v)
		}
		out[str(m["res-id"])] = s
	}
	return out
}

// TestKernelDumps decodes the get, get-stats and get-stats-global replies
// with nothing but the spec and compares them with conntrack -L, -S and -C
// on the same namespace.
func TestKernelDumps(t *testing.T) {
	requirePython(t, "yaml")
	nstest.RequireCommands(t, "conntrack")
	ns := nstest.New(t)
	for _, args := range [][]string{
		{"-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "1000", "--dport", "80", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "300", "-m", "6"},
		{"-p", "tcp", "-s", "192.0.2.3", "-d", "192.0.2.4", "--sport", "1001", "--dport", "443", "--state", "SYN_SENT", "-t", "300", "-w", "7"},
		{"-p", "udp", "-s", "198.51.100.1", "-d", "198.51.100.2", "--sport", "53000", "--dport", "53", "-t", "300", "-m", "42"},
	} {
		ns.Run(t, "conntrack", append([]string{"-I"}, args...)...)
	}

	// A flow with a sequence adjustment: the kernel sends it as
	// CTA_SEQ_ADJ_ORIG, whose value CTA_NAT_SEQ_ADJ_ORIG shares.
	c, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var f ctnetlink.Flow
	src, dst := netip.MustParseAddrPort("203.0.113.1:2000"), netip.MustParseAddrPort("203.0.113.2:21")
	f.SetTupleOrig(ctnetlink.NewTuple(unix.IPPROTO_TCP, src, dst))
	f.SetTupleReply(ctnetlink.NewTuple(unix.IPPROTO_TCP, dst, src))
	f.ProtoInfo.TCP.SetState(ctnetlink.TCPStateEstablished)
	f.SetTimeout(300)
	for i, sa := range [][3]uint32{{1000, 5, 9}, {2000, 6, 10}} {
		s := new(ctnetlink.SeqAdj)
		s.SetCorrectionPos(sa[0])
		s.SetOffsetBefore(sa[1])
		s.SetOffsetAfter(sa[2])
		if i == 0 {
			f.SetSeqAdjOrig(s)
		} else {
			f.SetSeqAdjReply(s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Create(ctx, &f); err != nil {
		t.Fatalf("create: %v", err)
	}

	var flows []msg
	consumer(t, ns, &flows, "--dump", "get")
	var got []string
	seqAdj := 0
	for _, m := range flows {
		got = append(got, flowFromMsg(m))
		if _, ok := m["nat-seq-adj-orig"]; ok {
			t.Errorf("a flow decodes with nat-seq-adj-orig: %v", m)
		}
		if o := sub(m, "seq-adj-orig"); o != nil {
			seqAdj++
			r := sub(m, "seq-adj-reply")
			if str(o["correction-pos"]) != "1000" || str(o["offset-after"]) != "9" || str(r["offset-before"]) != "6" {
				t.Errorf("seq-adj-orig %v, seq-adj-reply %v: want the values created", o, r)
			}
		}
	}
	if seqAdj != 1 {
		t.Errorf("%d flows with seq-adj-orig, want 1", seqAdj)
	}
	var want []string
	for _, l := range lines(ns.Run(t, "conntrack", "-L", "-o", "id")) {
		want = append(want, flowFromText(l))
	}
	sort.Strings(got)
	sort.Strings(want)
	if len(want) != 4 {
		t.Errorf("conntrack -L shows %d flows, want 4:\n%s", len(want), strings.Join(want, "\n"))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("flows, conntrack -L (-) and ynlpy.py --dump get (+):\n%s", diff)
	}

	var cpus []msg
	consumer(t, ns, &cpus, "--dump", "get-stats")
	wantStats := statsFromText(ns.Run(t, "conntrack", "-S"), "")
	if len(wantStats) == 0 {
		t.Fatal("conntrack -S shows no CPU")
	}
	if diff := cmp.Diff(wantStats, statsFromMsgs(cpus)); diff != "" {
		t.Errorf("per-CPU statistics, conntrack -S (-) and ynlpy.py --dump get-stats (+):\n%s", diff)
	}

	var global []msg
	consumer(t, ns, &global, "--do", "get-stats-global")
	if len(global) != 1 {
		t.Fatalf("get-stats-global: %d replies, want 1", len(global))
	}
	count := strings.TrimSpace(ns.Run(t, "conntrack", "-C"))
	max := strings.TrimSpace(ns.Run(t, "cat", "/proc/sys/net/netfilter/nf_conntrack_max"))
	if got := []string{str(global[0]["entries"]), str(global[0]["max-entries"])}; !cmp.Equal(got, []string{count, max}) {
		t.Errorf("get-stats-global entries, max-entries = %v; conntrack -C and nf_conntrack_max say %s, %s", got, count, max)
	}
}

// expectFromMsg and expectFromText reduce an expectation to the fields
// compared: tuple, mask, master, class and helper.
func expectFromMsg(m msg) string {
	tuple := func(t msg) string {
		return fmt.Sprintf("src=%s dst=%s sport=%s dport=%s", str(sub(t, "tuple-ip")["ip-v4-src"]), str(sub(t, "tuple-ip")["ip-v4-dst"]),
			str(sub(t, "tuple-proto")["proto-src-port"]), str(sub(t, "tuple-proto")["proto-dst-port"]))
	}
	return fmt.Sprintf("proto=%s %s mask-%s master-%s class=%s helper=%s",
		str(sub(m, "tuple", "tuple-proto")["proto-num"]), tuple(sub(m, "tuple")), tuple(sub(m, "mask")), tuple(sub(m, "master")),
		str(m["class"]), str(m["help-name"]))
}

func expectFromText(line string) string {
	n := map[string]int{}
	parts := map[string]string{}
	for _, w := range strings.Fields(line) {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			continue
		}
		switch k {
		case "src", "dst", "mask-src", "mask-dst", "master-src", "master-dst":
			k = strings.TrimPrefix(strings.TrimPrefix(k, "mask-"), "master-")
			fallthrough
		case "sport", "dport":
			n[k]++
			parts[fmt.Sprintf("%s%d", k, n[k])] = v
		default:
			if _, dup := parts[k]; !dup {
				parts[k] = v
			}
		}
	}
	tuple := func(i int) string {
		return fmt.Sprintf("src=%s dst=%s sport=%s dport=%s", parts[fmt.Sprint("src", i)], parts[fmt.Sprint("dst", i)], parts[fmt.Sprint("sport", i)], parts[fmt.Sprint("dport", i)])
	}
	return fmt.Sprintf("proto=%s %s mask-%s master-%s class=%s helper=%s", parts["proto"], tuple(1), tuple(2), tuple(3), parts["class"], parts["helper"])
}

// TestKernelExpectations decodes the exp-get and exp-get-stats-cpu replies
// and compares them with conntrack -L expect and -S expect.
func TestKernelExpectations(t *testing.T) {
	requirePython(t, "yaml")
	nstest.RequireCommands(t, "conntrack")
	ns := nstest.New(t)
	ns.LoadFTPHelper(t)
	ns.FTPSession(t, "PORT 127,0,0,1,200,10")

	var exps []msg
	consumer(t, ns, &exps, "--dump", "exp-get")
	var got, want []string
	for _, m := range exps {
		got = append(got, expectFromMsg(m))
	}
	for _, l := range lines(ns.Run(t, "conntrack", "-L", "expect")) {
		want = append(want, expectFromText(l))
	}
	if len(want) != 1 {
		t.Errorf("conntrack -L expect shows %d expectations, want 1", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("expectations, conntrack -L expect (-) and ynlpy.py --dump exp-get (+):\n%s", diff)
	}

	var cpus []msg
	consumer(t, ns, &cpus, "--dump", "exp-get-stats-cpu")
	if diff := cmp.Diff(statsFromText(ns.Run(t, "conntrack", "-S", "expect"), "expect_"), statsFromMsgs(cpus)); diff != "" {
		t.Errorf("expectation statistics, conntrack -S expect (-) and ynlpy.py --dump exp-get-stats-cpu (+):\n%s", diff)
	}
}

// hasLine reports whether a line of s contains every word.
func hasLine(s string, words ...string) bool {
	for _, l := range strings.Split(s, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(l, w)
		}
		if all {
			return true
		}
	}
	return false
}

// syncBuffer is a bytes.Buffer that a command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listener is a program started in the background inside a namespace.
type listener struct {
	cmd *exec.Cmd
	out syncBuffer
}

func startListener(t *testing.T, ns *nstest.NS, name string, args ...string) *listener {
	t.Helper()
	l := &listener{cmd: ns.Command(name, args...)}
	l.cmd.Stdout = &l.out
	l.cmd.Stderr = &l.out
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { l.cmd.Process.Kill(); l.cmd.Wait() })
	return l
}

// stop kills the listener and returns what it printed. Callers first wait
// for the last line they need. An interrupt is no good here: conntrack's
// handler exits through stdio, and a SIGINT that lands just after the
// write(2) of a line but before fflush has marked it written makes conntrack
// print that line a second time (seen under load).
func (l *listener) stop() string {
	l.cmd.Process.Kill()
	l.cmd.Wait()
	return l.out.String()
}

// eventFromMsg and eventFromText reduce a flow event to kind, protocol,
// original tuple and id; an expectation event to kind, tuple, master and
// helper.
func eventFromMsg(n msg) string {
	m := sub(n, "msg")
	switch str(n["name"]) {
	case "new-ntf", "delete-ntf":
		kind := "UPDATE"
		switch {
		case str(n["name"]) == "delete-ntf":
			kind = "DESTROY"
		case int(n["flags"].(float64))&unix.NLM_F_CREATE != 0:
			kind = "NEW"
		}
		o := sub(m, "tuple-orig")
		return fmt.Sprintf("[%s] %s src=%s dst=%s sport=%s dport=%s id=%s", kind, protoNames[str(sub(o, "tuple-proto")["proto-num"])],
			str(sub(o, "tuple-ip")["ip-v4-src"]), str(sub(o, "tuple-ip")["ip-v4-dst"]),
			str(sub(o, "tuple-proto")["proto-src-port"]), str(sub(o, "tuple-proto")["proto-dst-port"]), str(m["id"]))
	case "exp-new-ntf", "exp-delete-ntf":
		kind := "NEW"
		if str(n["name"]) == "exp-delete-ntf" {
			kind = "DESTROY"
		}
		return "[" + kind + "] " + expectFromMsg(m)
	}
	return "unknown notification " + str(n["name"])
}

func flowEventFromText(line string) string {
	kind, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	f := strings.Fields(rest)
	kv := map[string]string{}
	for _, w := range f {
		if k, v, ok := strings.Cut(w, "="); ok {
			if _, dup := kv[k]; !dup {
				kv[k] = v
			}
		}
	}
	return fmt.Sprintf("%s %s src=%s dst=%s sport=%s dport=%s id=%s", kind, f[0], kv["src"], kv["dst"], kv["sport"], kv["dport"], kv["id"])
}

// TestKernelEvents subscribes ynlpy.py to every conntrack group and
// compares the notifications it decodes with what conntrack -E and
// conntrack -E expect show for the same flows and expectations.
func TestKernelEvents(t *testing.T) {
	requirePython(t, "yaml")
	nstest.RequireCommands(t, "conntrack")
	ns := nstest.New(t)
	ns.LoadFTPHelper(t)

	expEvents := startListener(t, ns, "conntrack", "-E", "expect")
	flowEvents := startListener(t, ns, "conntrack", "-E", "-o", "id")
	ynl := ns.Command(python, "ynlpy.py", "--spec", specPath, "--duration", "20",
		"--subscribe", "conntrack-new,conntrack-update,conntrack-destroy,conntrack-exp-new,conntrack-exp-destroy")
	stdout, err := ynl.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var ynlErr syncBuffer
	ynl.Stderr = &ynlErr
	if err := ynl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ynl.Process.Kill(); ynl.Wait() })
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() || sc.Text() != "# subscribed" {
		t.Fatalf("ynlpy.py did not subscribe: %q\n%s", sc.Text(), ynlErr.String())
	}
	// conntrack -E has no such signal: wait until it shows a probe flow.
	probe := []string{"-p", "udp", "-s", "192.0.2.250", "-d", "192.0.2.251", "--sport", "9", "--dport", "9"}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !strings.Contains(flowEvents.out.String(), "src=192.0.2.250"); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("conntrack -E shows no probe event:\n%s", flowEvents.out.String())
		}
		ns.Run(t, "conntrack", append(append([]string{"-I"}, probe...), "-t", "60")...)
		time.Sleep(50 * time.Millisecond)
		ns.Run(t, "conntrack", append([]string{"-D"}, probe...)...)
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)

	flow := []string{"-p", "udp", "-s", "198.51.100.1", "-d", "198.51.100.2", "--sport", "5353", "--dport", "53"}
	ns.Run(t, "conntrack", append(append([]string{"-I"}, flow...), "-t", "60")...)
	ns.Run(t, "conntrack", append(append([]string{"-U"}, flow...), "-m", "12")...)
	ns.Run(t, "conntrack", append([]string{"-D"}, flow...)...)
	ns.FTPSession(t, "PORT 127,0,0,1,200,10")
	ns.Run(t, "conntrack", "-F", "expect")
	// The last event: a marker flow destroyed.
	marker := []string{"-p", "udp", "-s", "192.0.2.252", "-d", "192.0.2.253", "--sport", "7", "--dport", "7"}
	ns.Run(t, "conntrack", append(append([]string{"-I"}, marker...), "-t", "60")...)
	ns.Run(t, "conntrack", append([]string{"-D"}, marker...)...)

	var got []string
	for sc.Scan() {
		var n msg
		if err := json.Unmarshal(sc.Bytes(), &n); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		e := eventFromMsg(n)
		if !strings.Contains(e, "src=192.0.2.250") {
			got = append(got, e)
		}
		if strings.HasPrefix(e, "[DESTROY] udp src=192.0.2.252") {
			break
		}
	}
	if ynlErr.String() != "" {
		t.Errorf("ynlpy.py stderr:\n%s", ynlErr.String())
	}
	// Stop conntrack -E only once it has printed the marker.
	deadline = time.Now().Add(60 * time.Second)
	for !hasLine(flowEvents.out.String(), "[DESTROY]", "src=192.0.2.252") {
		if time.Now().After(deadline) {
			t.Fatalf("conntrack -E did not show the marker's destroy event:\n%s", flowEvents.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var want []string
	for _, l := range lines(flowEvents.stop()) {
		if strings.HasPrefix(strings.TrimSpace(l), "[") && !strings.Contains(l, "src=192.0.2.250") {
			want = append(want, flowEventFromText(l))
		}
	}
	for !strings.Contains(expEvents.out.String(), "[DESTROY]") {
		if time.Now().After(deadline) {
			t.Fatalf("conntrack -E expect did not show the flushed expectation:\n%s", expEvents.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var wantExp []string
	for _, l := range lines(expEvents.stop()) {
		if kind, rest, ok := strings.Cut(strings.TrimSpace(l), " "); ok && strings.HasPrefix(kind, "[") {
			wantExp = append(wantExp, kind+" "+expectFromText(rest))
		}
	}

	// Split what ynlpy.py decoded the way the two listeners print it.
	var gotFlows, gotExp []string
	for _, e := range got {
		if strings.Contains(e, " proto=") {
			gotExp = append(gotExp, e)
		} else {
			gotFlows = append(gotFlows, e)
		}
	}
	if diff := cmp.Diff(want, gotFlows); diff != "" {
		t.Errorf("flow events, conntrack -E (-) and ynlpy.py --subscribe (+):\n%s", diff)
	}
	if diff := cmp.Diff(wantExp, gotExp); diff != "" {
		t.Errorf("expectation events, conntrack -E expect (-) and ynlpy.py --subscribe (+):\n%s", diff)
	}
	kinds := map[string]bool{}
	for _, e := range append(gotFlows, gotExp...) {
		kind, _, _ := strings.Cut(e, " ")
		if strings.Contains(e, " proto=") {
			kind = "exp " + kind
		}
		kinds[kind] = true
	}
	for _, k := range []string{"[NEW]", "[UPDATE]", "[DESTROY]", "exp [NEW]", "exp [DESTROY]"} {
		if !kinds[k] {
			t.Errorf("no %s event among %q", k, got)
		}
	}
}
