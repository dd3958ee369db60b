package ctnetlink

import (
	"context"
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// TestKernelCleanupFields runs Cleanup with one matcher per field, through
// the kernel's flushes where the planner uses them and through the shared
// dump, and compares the table left with the one oracleSelects expects.
// Where conntrack -L has the same filter, it also counts the flows that
// conntrack lists with it, so that the oracle is checked against
// conntrack-tools and the kernel's own filters.
func TestKernelCleanupFields(t *testing.T) {
	ns, c := dialNS(t)
	reserveLabels(t, ns)
	ns.LoadFTPHelper(t) // so that flows can be created with the ftp helper
	// In conntrack arguments, a port of "%s" and "%r" stands for the
	// port the matcher takes from the table.
	tests := []struct {
		name      string
		m         Selector
		conntrack []string // the conntrack -L filter that selects the same, if any
	}{
		{"orig dst ip:port udp v4", Selector{Proto: Protocol(unix.IPPROTO_UDP), OrigDst: Is(netip.MustParsePrefix("10.2.0.1/32")), OrigDstPort: Is[uint16](53)}, []string{"-p", "udp", "-d", "10.2.0.1", "--dport", "53"}},
		{"orig dst prefix v6", Selector{OrigDst: Is(netip.MustParsePrefix("2001:db8::200/120"))}, []string{"-d", "2001:db8::200/120"}},
		{"orig src prefix", Selector{OrigSrc: Is(netip.MustParsePrefix("10.1.0.0/29"))}, []string{"-s", "10.1.0.0/29"}},
		{"orig sport", Selector{Proto: Protocol(unix.IPPROTO_TCP), OrigSrcPort: Is[uint16](0)}, []string{"-p", "tcp", "--sport", "%s"}}, // port taken from the table
		{"reply src ip:port", Selector{Proto: Protocol(unix.IPPROTO_TCP), ReplySrc: Is(netip.MustParsePrefix("10.2.0.3/32")), ReplySrcPort: Is[uint16](80)}, []string{"-p", "tcp", "-r", "10.2.0.3", "--reply-port-src", "80"}},
		{"reply dst v6", Selector{ReplyDst: Is(netip.MustParsePrefix("2001:db8::105/128"))}, []string{"-q", "2001:db8::105"}},
		{"reply dport", Selector{Proto: Protocol(unix.IPPROTO_UDP), ReplyDstPort: Is[uint16](0)}, []string{"-p", "udp", "--reply-port-dst", "%r"}}, // port taken from the table
		{"sctp", Selector{Proto: Protocol(unix.IPPROTO_SCTP)}, []string{"-p", "sctp"}},
		{"icmp type", Selector{Proto: Protocol(unix.IPPROTO_ICMP), ICMPType: Is[uint8](8)}, []string{"-p", "icmp", "--icmp-type", "8"}},
		{"icmpv6 id", Selector{Proto: Protocol(unix.IPPROTO_ICMPV6), ICMPID: Is[uint16](0)}, nil}, // id taken from the table
		{"icmp code without proto", Selector{ICMPCode: Is[uint8](0)}, nil},
		{"mark mask", Selector{Mark: Is(MarkMatch{0x100, 0xf00})}, []string{"-m", "0x100/0xf00"}},
		{"mark zero under a mask", Selector{Mark: Is(MarkMatch{0, 0xff})}, []string{"-m", "0/0xff"}},
		{"zone", Selector{Zone: Is[uint16](2)}, nil},
		{"zone 0", Selector{Zone: Is[uint16](0)}, nil},
		{"orig zone", Selector{OrigZone: Is[uint16](0)}, nil},
		{"orig zone 2", Selector{OrigZone: Is[uint16](2)}, nil},
		{"reply zone 1", Selector{ReplyZone: Is[uint16](1)}, nil},
		{"labels all", Selector{LabelsAll: []byte{0x03}}, nil},
		{"labels any", Selector{LabelsAny: []byte{0x04}}, nil},
		{"status", Selector{Status: Is(StatusMatch{StatusSeenReply, StatusSeenReply})}, []string{"-u", "SEEN_REPLY"}},
		{"status bit clear", Selector{Status: Is(StatusMatch{0, StatusSeenReply})}, nil},
		{"family v4 only", Selector{Family: unix.AF_INET}, []string{"-f", "ipv4"}},
		{"tcp state", Selector{TCPStates: AnyOf(TCPStateTimeWait, TCPStateFinWait)}, nil},
		{"tcp state time_wait", Selector{Proto: Protocol(unix.IPPROTO_TCP), TCPStates: AnyOf(TCPStateTimeWait)}, []string{"-p", "tcp", "--state", "TIME_WAIT"}},
		{"sctp state", Selector{SCTPStates: AnyOf(SCTPStateEstablished)}, []string{"-p", "sctp", "--state", "ESTABLISHED"}},
		{"sctp states", Selector{SCTPStates: AnyOf(SCTPStateCookieWait, SCTPStateShutdownSent)}, nil},
		{"family v6", Selector{Family: unix.AF_INET6}, []string{"-f", "ipv6"}},
		{"helper", Selector{Helper: "ftp"}, nil},
	}
	r := rand.New(rand.NewSource(2))
	for _, tt := range tests {
		for _, noKernel := range []bool{false, true} {
			ctx := ctx(t) // a deadline per case: the whole test takes minutes
			name := fmt.Sprintf("%s (no-kernel-filters=%v)", tt.name, noKernel)
			before := fillFieldsTable(ctx, t, c, r, tt.m.Helper)
			m, args := resolveMatcher(tt.m, tt.conntrack, before)
			if s, ok := m.Status.single(); ok && s.Mask == StatusSeenReply {
				before = markSeenReply(ctx, t, c, before)
			}
			var want []string
			for i := range before {
				if !oracleSelects(&m, &before[i]) {
					want = append(want, flowKey(&before[i]))
				}
			}
			if len(want) == 0 || len(want) == len(before) {
				t.Fatalf("%s: the oracle selects %d of %d flows; the test proves nothing", name, len(before)-len(want), len(before))
			}
			if args != nil {
				checkConntrackCount(t, ns, name, args, len(before)-len(want))
			}
			res, err := c.Cleanup(ctx, []Selector{m}, &CleanupOptions{NoKernelFilters: noKernel})
			if err != nil || res.Failed != 0 {
				t.Fatalf("%s: %v %+v", name, err, res.Samples)
			}
			checkLeft(ctx, t, c, name, want, &res)
			if err := c.Flush(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// fillFieldsTable fills the table with 400 random flows, a few of them
// with two labels, and, if helper is set, some TCP flows with that helper;
// it returns the table as listed.
func fillFieldsTable(ctx context.Context, t *testing.T, c *Conn, r *rand.Rand, helper string) []Flow {
	t.Helper()
	table := randomTable(r, 400)
	// Give a few flows two labels so that "all of" differs from "any of".
	for i := 0; i < len(table); i += 7 {
		table[i].SetLabels([]byte{0x03, 15: 0})
	}
	if helper != "" {
		// Attach the helper to some of the TCP flows.
		for i := 0; i < len(table); i += 3 {
			if table[i].TupleOrig.Proto.Num == unix.IPPROTO_TCP {
				table[i].SetHelp(helpNamed(helper))
			}
		}
	}
	if res, err := c.CreateMany(ctx, table); err != nil || len(res.Errors) > 0 {
		t.Fatalf("fill: %v, %d errors, first %v", err, len(res.Errors), res.Errors[:min(1, len(res.Errors))])
	}
	before, err := c.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return before
}

// resolveMatcher replaces ports and ids of zero in m by those of the first
// flow of the matcher's protocol, so that the matcher selects something,
// and the conntrack arguments "%s" and "%r" by the ports it took.
func resolveMatcher(m Selector, conntrack []string, before []Flow) (Selector, []string) {
	args := slices.Clone(conntrack)
	zero := func(c *OneOf[uint16]) bool { v, ok := c.single(); return ok && v == 0 }
	proto, _ := m.Proto.single()
	for i := range before {
		f := &before[i]
		if f.TupleOrig.Proto.Num != proto {
			continue
		}
		if zero(&m.OrigSrcPort) {
			m.OrigSrcPort = Port(f.TupleOrig.Proto.SrcPort)
		}
		if zero(&m.ReplyDstPort) {
			m.ReplyDstPort = Port(f.TupleReply.Proto.DstPort)
		}
		if zero(&m.ICMPID) {
			m.ICMPID = Is(f.TupleOrig.Proto.ICMPv6ID)
		}
	}
	for i, a := range args {
		switch a {
		case "%s":
			args[i] = fmt.Sprint(m.OrigSrcPort.Values[0])
		case "%r":
			args[i] = fmt.Sprint(m.ReplyDstPort.Values[0])
		}
	}
	return m, args
}

// markSeenReply sets StatusSeenReply on every third flow, since flows
// created by user space have no reply seen, and returns the table as
// listed then.
func markSeenReply(ctx context.Context, t *testing.T, c *Conn, before []Flow) []Flow {
	t.Helper()
	for i := 0; i < len(before); i += 3 {
		var u Flow
		u.SetTupleOrig(before[i].TupleOrig)
		u.SetZone(before[i].Zone)
		u.SetStatus(before[i].Status | StatusSeenReply)
		if err := c.Update(ctx, &u); err != nil {
			t.Fatalf("update status: %v", err)
		}
	}
	after, err := c.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return after
}

// checkConntrackCount checks that conntrack -L with args lists n flows.
func checkConntrackCount(t *testing.T, ns *nstest.NS, name string, args []string, n int) {
	t.Helper()
	// conntrack prints how many flows it listed on stderr.
	_, stderr, err := ns.RunErr("conntrack", append([]string{"-L"}, args...)...)
	var got int
	if _, serr := fmt.Sscanf(stderr[strings.Index(stderr, ": ")+2:], "%d flow entries", &got); err != nil || serr != nil {
		t.Fatalf("%s: conntrack -L %v: %v %v: %s", name, args, err, serr, stderr)
	}
	if got != n {
		t.Fatalf("%s: conntrack -L %v lists %d flows, the oracle selects %d", name, args, got, n)
	}
}

// checkLeft checks that the table holds exactly the flows of want.
func checkLeft(ctx context.Context, t *testing.T, c *Conn, name string, want []string, res *CleanupResult) {
	t.Helper()
	after, err := c.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, 0, len(after))
	for i := range after {
		got = append(got, flowKey(&after[i]))
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s: %d flows left, the oracle expects %d\nplan:\n%s", name, len(got), len(want), res.Plan.String())
		for _, k := range diffKeys(want, got, 5) {
			t.Logf("  %s", k)
		}
		t.FailNow()
	}
}

// diffKeys lists up to n keys that are in only one of two sorted lists.
func diffKeys(want, got []string, n int) []string {
	var out []string
	for _, k := range want {
		if _, ok := slices.BinarySearch(got, k); !ok && len(out) < n {
			out = append(out, "expected, gone: "+k)
		}
	}
	for _, k := range got {
		if _, ok := slices.BinarySearch(want, k); !ok && len(out) < 2*n {
			out = append(out, "left, not expected: "+k)
		}
	}
	return out
}
