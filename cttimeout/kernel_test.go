package cttimeout

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// kernelConn returns a namespace of its own and a Conn in it.
func kernelConn(t *testing.T) (*nstest.NS, *Conn) {
	t.Helper()
	nstest.RequireRoot(t)
	nstest.RequireCommands(t, "nfct")
	ns := nstest.New(t)
	c, err := Dial(&Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return ns, c
}

// nfctPolicy is a policy as nfct prints it, in seconds.
type nfctPolicy struct {
	L3, L4   int
	Timeouts map[string]int
}

var (
	nfctHead  = regexp.MustCompile(`^\.(\S+) = \{$`)
	nfctField = regexp.MustCompile(`^\s*\.(\w+) = (\d+),$`)
)

// parseNfct parses the text of "nfct timeout list", "get" or "default-get"
// (whose one policy has no name line and is returned under ""). nfct calls
// TCP's UNACK state UNACKNOWLEDGED.
func parseNfct(t *testing.T, text string) map[string]nfctPolicy {
	t.Helper()
	out := map[string]nfctPolicy{}
	name := ""
	cur := nfctPolicy{Timeouts: map[string]int{}}
	inPolicy := false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
		case nfctHead.MatchString(line):
			name = nfctHead.FindStringSubmatch(line)[1]
		case strings.TrimSpace(line) == ".policy = {":
			inPolicy = true
		case strings.TrimSpace(line) == "},":
			inPolicy = false
		case line == "};":
			out[name] = cur
			name, cur = "", nfctPolicy{Timeouts: map[string]int{}}
		case nfctField.MatchString(line):
			m := nfctField.FindStringSubmatch(line)
			v, _ := strconv.Atoi(m[2])
			switch {
			case inPolicy:
				key := m[1]
				if key == "UNACKNOWLEDGED" {
					key = "UNACK"
				}
				cur.Timeouts[key] = v
			case m[1] == "l3proto":
				cur.L3 = v
			case m[1] == "l4proto":
				cur.L4 = v
			}
		default:
			t.Fatalf("nfct printed a line this test cannot read: %q", line)
		}
	}
	return out
}

// nfctHidden are states the kernel sends that nfct 1.4.7 does not print:
// libnetfilter_cttimeout knows SCTP's states up to SHUTDOWN_ACK_SENT only.
var nfctHidden = map[uint8][]string{unix.IPPROTO_SCTP: {"HEARTBEAT_SENT", "HEARTBEAT_ACKED"}}

// asNfct is p in the form parseNfct returns, without the states nfct hides,
// which must be there.
func asNfct(t *testing.T, p *Policy) nfctPolicy {
	t.Helper()
	n := nfctPolicy{L3: int(p.Family), L4: int(p.Protocol), Timeouts: map[string]int{}}
	for k, v := range p.Timeouts {
		n.Timeouts[k] = int(v / time.Second)
	}
	for _, k := range nfctHidden[p.Protocol] {
		if _, ok := n.Timeouts[k]; !ok {
			t.Errorf("%s: the kernel did not send %s", p.Name, k)
		}
		delete(n.Timeouts, k)
	}
	return n
}

func listAll(t *testing.T, c *Conn) map[string]nfctPolicy {
	t.Helper()
	got := map[string]nfctPolicy{}
	for p, err := range c.List(context.Background()) {
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if p.Unknown != 0 {
			t.Errorf("%s: %d unknown attributes", p.Name, p.Unknown)
		}
		got[p.Name] = asNfct(t, p)
	}
	return got
}

func TestKernelListShowsNfct(t *testing.T) {
	ns, c := kernelConn(t)
	ns.Run(t, "nfct", "timeout", "add", "t-tcp", "inet", "tcp", "established", "100", "syn_sent", "5", "unacknowledged", "9")
	ns.Run(t, "nfct", "timeout", "add", "t-sctp", "inet6", "sctp", "closed", "7")
	ns.Run(t, "nfct", "timeout", "add", "t-udp", "inet", "udp", "replied", "33")
	ns.Run(t, "nfct", "timeout", "add", "t-icmp", "inet", "icmp", "timeout", "4")
	ns.Run(t, "nfct", "timeout", "add", "t-gre", "inet", "gre", "unreplied", "3")
	want := parseNfct(t, ns.Run(t, "nfct", "timeout", "list"))
	if len(want) != 5 {
		t.Fatalf("nfct lists %d policies, want 5", len(want))
	}
	if diff := cmp.Diff(want, listAll(t, c)); diff != "" {
		t.Errorf("List versus nfct timeout list (-nfct +List):\n%s", diff)
	}
	p, err := c.Get(context.Background(), "t-tcp")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(want["t-tcp"], asNfct(t, p)); diff != "" {
		t.Errorf("Get versus nfct (-nfct +Get):\n%s", diff)
	}
	if p.Use != 1 {
		t.Errorf("Use %d, want 1", p.Use)
	}
}

func TestKernelCreateShowsInNfct(t *testing.T) {
	ns, c := kernelConn(t)
	ctx := context.Background()
	created := []*Policy{
		{Name: "c-tcp", Family: unix.NFPROTO_IPV4, Protocol: unix.IPPROTO_TCP, Timeouts: Timeouts{"ESTABLISHED": 77 * time.Second, "TIME_WAIT": 11 * time.Second, "UNACK": 3 * time.Second}},
		{Name: "c-udp6", Family: unix.NFPROTO_IPV6, Protocol: unix.IPPROTO_UDP, Timeouts: Timeouts{"UNREPLIED": 12 * time.Second, "REPLIED": 13 * time.Second}},
		{Name: "c-gre", Family: unix.NFPROTO_IPV4, Protocol: unix.IPPROTO_GRE, Timeouts: Timeouts{"REPLIED": 1000 * time.Second}},
		{Name: "c-sctp", Family: unix.NFPROTO_IPV4, Protocol: unix.IPPROTO_SCTP, Timeouts: Timeouts{"COOKIE_WAIT": 8 * time.Second}},
		{Name: "c-generic", Family: unix.NFPROTO_IPV4, Protocol: ProtoGeneric, Timeouts: Timeouts{"TIMEOUT": 42 * time.Second}},
	}
	for _, p := range created {
		if err := c.Create(ctx, p); err != nil {
			t.Fatalf("Create %s: %v", p.Name, err)
		}
	}
	shown := parseNfct(t, ns.Run(t, "nfct", "timeout", "list"))
	for _, p := range created {
		got, ok := shown[p.Name]
		if !ok {
			t.Errorf("nfct does not list %s", p.Name)
			continue
		}
		if got.L3 != int(p.Family) || got.L4 != int(p.Protocol) {
			t.Errorf("%s: nfct shows l3proto %d l4proto %d", p.Name, got.L3, got.L4)
		}
		for state, d := range p.Timeouts {
			if got.Timeouts[state] != int(d/time.Second) {
				t.Errorf("%s: nfct shows %s = %d, want %d", p.Name, state, got.Timeouts[state], int(d/time.Second))
			}
		}
	}
	if diff := cmp.Diff(shown, listAll(t, c)); diff != "" {
		t.Errorf("List versus nfct timeout list (-nfct +List):\n%s", diff)
	}

	// Update replaces the policy's timeouts: those it leaves out go back
	// to the defaults, as when the policy was created.
	if err := c.Update(ctx, &Policy{Name: "c-tcp", Family: unix.NFPROTO_IPV4, Protocol: unix.IPPROTO_TCP, Timeouts: Timeouts{"ESTABLISHED": 99 * time.Second}}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	after := parseNfct(t, ns.Run(t, "nfct", "timeout", "get", "c-tcp"))["c-tcp"]
	def := parseNfct(t, ns.Run(t, "nfct", "timeout", "default-get", "inet", "tcp"))[""].Timeouts["TIME_WAIT"]
	if after.Timeouts["ESTABLISHED"] != 99 || after.Timeouts["TIME_WAIT"] != def {
		t.Errorf("after Update nfct shows %v, want ESTABLISHED 99 and TIME_WAIT back to the default %d", after.Timeouts, def)
	}

	// Linux 6.16 removed DCCP connection tracking: the kernel answers
	// EOPNOTSUPP, which the error explains. Older kernels accept it.
	err := c.Create(ctx, &Policy{Name: "c-dccp", Family: unix.NFPROTO_IPV4, Protocol: unix.IPPROTO_DCCP, Timeouts: Timeouts{"OPEN": time.Hour}})
	if err != nil && (!errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), "no timeout support")) {
		t.Errorf("Create for DCCP: %v, want success or EOPNOTSUPP explained", err)
	}

	// A second Create of the same name fails with EEXIST.
	if err := c.Create(ctx, created[0]); !errors.Is(err, os.ErrExist) {
		t.Errorf("second Create: %v, want os.ErrExist", err)
	}
	// Bad input is refused before it reaches the kernel.
	for _, p := range []*Policy{
		{Name: "x", Family: unix.NFPROTO_IPV4, Protocol: unix.IPPROTO_TCP, Timeouts: Timeouts{"REPLIED": time.Second}},
		{Name: "x", Family: unix.NFPROTO_IPV4, Protocol: unix.IPPROTO_UDP, Timeouts: Timeouts{"REPLIED": 1500 * time.Millisecond}},
		{Name: strings.Repeat("n", 32), Family: unix.NFPROTO_IPV4, Protocol: unix.IPPROTO_UDP},
		{Name: "x", Family: unix.NFPROTO_IPV4, Protocol: 99},
	} {
		if err := c.Create(ctx, p); err == nil {
			t.Errorf("Create %+v succeeded", p)
		}
	}
}

func TestKernelDefaults(t *testing.T) {
	ns, c := kernelConn(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		family uint16
		proto  uint8
		args   []string
	}{
		{"tcp", unix.NFPROTO_IPV4, unix.IPPROTO_TCP, []string{"inet", "tcp"}},
		{"udp6", unix.NFPROTO_IPV6, unix.IPPROTO_UDP, []string{"inet6", "udp"}},
		{"sctp", unix.NFPROTO_IPV4, unix.IPPROTO_SCTP, []string{"inet", "sctp"}},
		{"icmpv6", unix.NFPROTO_IPV6, unix.IPPROTO_ICMPV6, []string{"inet6", "icmpv6"}},
		{"generic", unix.NFPROTO_IPV4, ProtoGeneric, []string{"inet", "generic"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := parseNfct(t, ns.Run(t, "nfct", append([]string{"timeout", "default-get"}, tt.args...)...))[""]
			got, err := c.DefaultGet(ctx, tt.family, tt.proto)
			if err != nil {
				t.Fatalf("DefaultGet: %v", err)
			}
			if diff := cmp.Diff(want, asNfct(t, got)); diff != "" {
				t.Errorf("DefaultGet versus nfct default-get (-nfct +DefaultGet):\n%s", diff)
			}
		})
	}
	err := c.DefaultSet(ctx, &Policy{Family: unix.NFPROTO_IPV4, Protocol: unix.IPPROTO_UDP, Timeouts: Timeouts{"REPLIED": 77 * time.Second}})
	if err != nil {
		t.Fatalf("DefaultSet: %v", err)
	}
	if got := parseNfct(t, ns.Run(t, "nfct", "timeout", "default-get", "inet", "udp"))[""].Timeouts["REPLIED"]; got != 77 {
		t.Errorf("after DefaultSet nfct shows REPLIED = %d, want 77", got)
	}
}

func TestKernelDeleteBusy(t *testing.T) {
	ns, c := kernelConn(t)
	nstest.RequireCommands(t, "iptables")
	ctx := context.Background()
	p := &Policy{Name: "busy", Family: unix.NFPROTO_IPV4, Protocol: unix.IPPROTO_UDP, Timeouts: Timeouts{"REPLIED": 20 * time.Second}}
	if err := c.Create(ctx, p); err != nil {
		t.Fatalf("Create: %v", err)
	}
	rule := []string{"-t", "raw", "-A", "PREROUTING", "-p", "udp", "--dport", "53", "-j", "CT", "--timeout", "busy"}
	ns.Run(t, "iptables", rule...)
	if got, err := c.Get(ctx, "busy"); err != nil || got.Use != 2 {
		t.Errorf("Get with a rule: use %v, error %v; want use 2", got, err)
	}
	err := c.Delete(ctx, "busy")
	if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Delete of a policy in use: %v, want EBUSY explained", err)
	}
	rule[2] = "-D"
	ns.Run(t, "iptables", rule...)
	if err := c.Delete(ctx, "busy"); err != nil {
		t.Fatalf("Delete after the rule went: %v", err)
	}
	if err := c.Delete(ctx, "busy"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("second Delete: %v, want os.ErrNotExist", err)
	}
	if _, err := c.Get(ctx, "busy"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Get of a deleted policy: %v, want os.ErrNotExist", err)
	}
}
