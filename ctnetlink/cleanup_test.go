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

// randomTable builds n mixed flows: TCP in several states, UDP, SCTP and
// ICMP; IPv4 and IPv6; marks, zones and labels.
func randomTable(r *rand.Rand, n int) []Flow {
	protos := []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_ICMP}
	flows := make([]Flow, 0, n)
	seen := map[string]bool{}
	for len(flows) < n {
		v6 := r.Intn(3) == 0
		proto := protos[r.Intn(len(protos))]
		if v6 && proto == unix.IPPROTO_ICMP {
			proto = unix.IPPROTO_ICMPV6
		}
		host := func(net byte) netip.Addr {
			if v6 {
				return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r.Intn(8)), 14: net})
			}
			return netip.AddrFrom4([4]byte{10, net, 0, byte(1 + r.Intn(8))})
		}
		src, dst := host(1), host(2)
		sport, dport := uint16(1000+r.Intn(4000)), []uint16{53, 80, 443, 5060}[r.Intn(4)]
		zone := uint16(r.Intn(3))
		kport := dport // an ICMP tuple has an id, no ports
		if proto == unix.IPPROTO_ICMP || proto == unix.IPPROTO_ICMPV6 {
			kport = 0
		}
		// A zone applies to both directions, or, picked by the source
		// port, to one only. The kernel refuses a flow when either
		// direction's tuple, in that direction's zone, exists already.
		origZone, replyZone := zone, zone
		if zone != 0 {
			switch sport % 4 {
			case 0:
				replyZone = 0
			case 1:
				origZone = 0
			}
		}
		keyO := fmt.Sprint("o", proto, src, dst, sport, kport, origZone)
		keyR := fmt.Sprint("r", proto, src, dst, sport, kport, replyZone)
		if seen[keyO] || seen[keyR] {
			continue
		}
		seen[keyO], seen[keyR] = true, true
		var f Flow
		f.SetTupleOrig(NewTuple(proto, netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)))
		f.SetTupleReply(NewTuple(proto, netip.AddrPortFrom(dst, dport), netip.AddrPortFrom(src, sport)))
		if proto == unix.IPPROTO_ICMP || proto == unix.IPPROTO_ICMPV6 {
			req, rep := uint8(8), uint8(0)
			if v6 {
				req, rep = 128, 129
			}
			f.TupleOrig.SetICMP(req, 0, sport)
			f.TupleReply.SetICMP(rep, 0, sport)
		}
		randomFlowState(r, &f, proto, zone, origZone, replyZone)
		flows = append(flows, f)
	}
	return flows
}

// randomFlowState gives f of protocol proto a random protocol state, a
// timeout, a random mark, its zone (zone, applying to the directions whose
// zone origZone and replyZone are not 0) and, one time in three, labels.
func randomFlowState(r *rand.Rand, f *Flow, proto uint8, zone, origZone, replyZone uint16) {
	tcpStates := []TCPState{TCPStateSynSent, TCPStateEstablished, TCPStateFinWait, TCPStateTimeWait, TCPStateClose}
	sctpStates := []SCTPState{SCTPStateCookieWait, SCTPStateEstablished, SCTPStateShutdownSent}
	switch proto {
	case unix.IPPROTO_TCP:
		f.ProtoInfo.TCP.SetState(tcpStates[r.Intn(len(tcpStates))])
	case unix.IPPROTO_SCTP:
		// The kernel wants both verification tags with the state.
		f.ProtoInfo.SCTP.SetState(sctpStates[r.Intn(len(sctpStates))])
		f.ProtoInfo.SCTP.SetVTagOriginal(r.Uint32())
		f.ProtoInfo.SCTP.SetVTagReply(r.Uint32())
	}
	f.SetTimeout(600)
	f.SetMark(uint32(r.Intn(4)) | uint32(r.Intn(2))<<8)
	switch {
	case origZone != 0 && replyZone != 0:
		f.SetZone(zone)
	case origZone != 0:
		f.TupleOrig.SetZone(zone)
	case replyZone != 0:
		f.TupleReply.SetZone(zone)
	}
	if r.Intn(3) == 0 {
		lab := make([]byte, 16)
		lab[0] = byte(1 + r.Intn(15)) // labels 0 to 3, one or more
		f.SetLabels(lab)
	}
}

// randomMatcher draws a matcher over the fields randomTable varies.
func randomMatcher(r *rand.Rand, table []Flow) Matcher {
	var m Matcher
	f := &table[r.Intn(len(table))]
	for _, field := range r.Perm(16)[:1+r.Intn(3)] {
		if field < 8 {
			randomTupleField(r, f, &m, field)
		} else {
			randomStateField(r, f, &m, field)
		}
	}
	return m
}

// randomTupleField sets matcher field 0 to 7 (family, protocol, addresses,
// reply port, mark, zone, labels any) from flow f.
func randomTupleField(r *rand.Rand, f *Flow, m *Matcher, field int) {
	u16 := func(v uint16) *uint16 { return &v }
	switch field {
	case 0:
		m.Family = f.Family()
	case 1:
		m.Proto = f.TupleOrig.Proto.Num
		if m.Proto == unix.IPPROTO_TCP || m.Proto == unix.IPPROTO_UDP || m.Proto == unix.IPPROTO_SCTP {
			m.Orig.DstPort = u16(f.TupleOrig.Proto.DstPort)
		}
	case 2:
		m.Orig.Dst = netip.PrefixFrom(f.TupleOrig.Dst(), f.TupleOrig.Dst().BitLen())
	case 3:
		bits := 24
		if f.Family() == unix.AF_INET6 {
			bits = 120
		}
		m.Orig.Src, _ = f.TupleOrig.Src().Prefix(bits + r.Intn(8))
	case 4:
		m.Reply.Src = netip.PrefixFrom(f.TupleReply.Src(), f.TupleReply.Src().BitLen())
		if p := f.TupleReply.Proto.Num; p == unix.IPPROTO_TCP || p == unix.IPPROTO_UDP {
			m.Proto = p
			m.Reply.SrcPort = u16(f.TupleReply.Proto.SrcPort)
		}
	case 5:
		m.Mark, m.MarkMask = f.Mark&0xff, 0xff
	case 6:
		z := f.ZoneID()
		m.Zone = &z
	case 7:
		if len(f.Labels) > 0 {
			m.LabelsAny = f.Labels
		}
	}
}

// randomStateField sets matcher field 8 to 15 (states, status, labels
// all, per-direction zones, ICMP, reply destination, mark bit) from flow
// f.
func randomStateField(r *rand.Rand, f *Flow, m *Matcher, field int) {
	u8 := func(v uint8) *uint8 { return &v }
	u16 := func(v uint16) *uint16 { return &v }
	switch field {
	case 8:
		if f.TupleOrig.Proto.Num == unix.IPPROTO_TCP {
			m.TCPStates = []TCPState{f.ProtoInfo.TCP.State}
		} else if f.TupleOrig.Proto.Num == unix.IPPROTO_SCTP {
			m.SCTPStates = []SCTPState{f.ProtoInfo.SCTP.State}
		}
	case 9:
		m.Status, m.StatusMask = StatusAssured, StatusAssured
	case 10:
		// Every label of a flow, sometimes with one it may lack, so
		// that all-of and any-of select different flows.
		if len(f.Labels) > 0 {
			m.LabelsAll = slices.Clone(f.Labels)
			m.LabelsAll[0] |= byte(r.Intn(2)) << r.Intn(4)
		}
	case 11:
		// Several states, the flow's not first.
		tcp := []TCPState{TCPStateSynSent, TCPStateEstablished, TCPStateFinWait, TCPStateTimeWait, TCPStateClose}
		sctp := []SCTPState{SCTPStateCookieWait, SCTPStateEstablished, SCTPStateShutdownSent}
		if f.TupleOrig.Proto.Num == unix.IPPROTO_SCTP {
			m.SCTPStates = []SCTPState{sctp[r.Intn(len(sctp))], sctp[r.Intn(len(sctp))], f.ProtoInfo.SCTP.State}
		} else {
			m.TCPStates = []TCPState{tcp[r.Intn(len(tcp))], tcp[r.Intn(len(tcp))], f.ProtoInfo.TCP.State}
		}
	case 12:
		z := uint16(r.Intn(3))
		if r.Intn(2) == 0 {
			m.OrigZone = &z
		} else {
			m.ReplyZone = &z
		}
	case 13:
		switch f.TupleOrig.Proto.Num {
		case unix.IPPROTO_ICMP:
			m.ICMPType, m.ICMPID = u8(f.TupleOrig.Proto.ICMPType), u16(f.TupleOrig.Proto.ICMPID)
		case unix.IPPROTO_ICMPV6:
			m.ICMPType, m.ICMPID = u8(f.TupleOrig.Proto.ICMPv6Type), u16(f.TupleOrig.Proto.ICMPv6ID)
		default:
			m.ICMPCode = u8(0)
		}
	case 14:
		bits := 29
		if f.Family() == unix.AF_INET6 {
			bits = 125
		}
		m.Reply.Dst, _ = f.TupleReply.Dst().Prefix(bits)
	case 15:
		m.Mark, m.MarkMask = f.Mark&0x100, 0x100
	}
}

// reserveLabels makes the kernel keep label space for new flows.
func reserveLabels(t *testing.T, ns interface {
	Run(testing.TB, string, ...string) string
}) {
	ns.Run(t, "nft", "add table inet ctspec_labels")
	ns.Run(t, "nft", "add chain inet ctspec_labels c { type filter hook prerouting priority 0; }")
	ns.Run(t, "nft", "add rule inet ctspec_labels c ct label 1 counter")
}

func flowKey(f *Flow) string {
	return fmt.Sprint(f.TupleOrig.Proto.Num, f.TupleOrig.Src(), f.TupleOrig.Dst(), f.TupleOrig.Proto.SrcPort, f.TupleOrig.Proto.DstPort,
		f.TupleOrig.Proto.ICMPID, f.TupleOrig.Proto.ICMPv6ID, f.Zone, f.TupleOrig.Zone, f.TupleReply.Zone)
}

func TestKernelCleanupRandomized(t *testing.T) {
	for _, noKernel := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-kernel-filters=%v", noKernel), func(t *testing.T) {
			ns, c := dialNS(t)
			reserveLabels(t, ns)
			ctx := ctx(t)
			r := rand.New(rand.NewSource(1))
			for round := 0; round < 10; round++ {
				table := randomTable(r, 1000)
				if res, err := c.CreateMany(ctx, table); err != nil || len(res.Errors) > 0 {
					t.Fatalf("fill: %v, %d errors, first %v", err, len(res.Errors), res.Errors[:min(1, len(res.Errors))])
				}
				before, err := c.List(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				matchers := make([]Matcher, 1+r.Intn(12))
				for i := range matchers {
					matchers[i] = randomMatcher(r, before)
				}
				// The table expected after: every flow that the oracle
				// says no matcher selects.
				var want []string
				for i := range before {
					if !oracleSelectsAny(matchers, &before[i]) {
						want = append(want, flowKey(&before[i]))
					}
				}
				res, err := c.Cleanup(ctx, matchers, &CleanupOptions{NoKernelFilters: noKernel})
				if err != nil {
					t.Fatalf("cleanup: %v", err)
				}
				if res.Failed != 0 {
					t.Fatalf("cleanup failures: %+v", res.Samples)
				}
				after, err := c.List(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for i := range after {
					got = append(got, flowKey(&after[i]))
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					for _, k := range diffKeys(want, got, 5) {
						t.Logf("  %s", k)
					}
					t.Fatalf("round %d: %d flows left, want %d\nplan:\n%s", round, len(got), len(want), res.Plan.String())
				}
				if noKernel && res.Flushes != 0 {
					t.Fatalf("forced fallback still flushed in the kernel")
				}
				if err := c.Flush(ctx, nil); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

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
	u16 := func(v uint16) *uint16 { return &v }
	// In conntrack arguments, a port of "%s" and "%r" stands for the
	// port the matcher takes from the table.
	tests := []struct {
		name      string
		m         Matcher
		conntrack []string // the conntrack -L filter that selects the same, if any
	}{
		{"orig dst ip:port udp v4", Matcher{Proto: unix.IPPROTO_UDP, Orig: Endpoints{Dst: netip.MustParsePrefix("10.2.0.1/32"), DstPort: u16(53)}}, []string{"-p", "udp", "-d", "10.2.0.1", "--dport", "53"}},
		{"orig dst prefix v6", Matcher{Orig: Endpoints{Dst: netip.MustParsePrefix("2001:db8::200/120")}}, []string{"-d", "2001:db8::200/120"}},
		{"orig src prefix", Matcher{Orig: Endpoints{Src: netip.MustParsePrefix("10.1.0.0/29")}}, []string{"-s", "10.1.0.0/29"}},
		{"orig sport", Matcher{Proto: unix.IPPROTO_TCP, Orig: Endpoints{SrcPort: u16(0)}}, []string{"-p", "tcp", "--sport", "%s"}}, // port taken from the table
		{"reply src ip:port", Matcher{Proto: unix.IPPROTO_TCP, Reply: Endpoints{Src: netip.MustParsePrefix("10.2.0.3/32"), SrcPort: u16(80)}}, []string{"-p", "tcp", "-r", "10.2.0.3", "--reply-port-src", "80"}},
		{"reply dst v6", Matcher{Reply: Endpoints{Dst: netip.MustParsePrefix("2001:db8::105/128")}}, []string{"-q", "2001:db8::105"}},
		{"reply dport", Matcher{Proto: unix.IPPROTO_UDP, Reply: Endpoints{DstPort: u16(0)}}, []string{"-p", "udp", "--reply-port-dst", "%r"}}, // port taken from the table
		{"sctp", Matcher{Proto: unix.IPPROTO_SCTP}, []string{"-p", "sctp"}},
		{"icmp type", Matcher{Proto: unix.IPPROTO_ICMP, ICMPType: func() *uint8 { v := uint8(8); return &v }()}, []string{"-p", "icmp", "--icmp-type", "8"}},
		{"icmpv6 id", Matcher{Proto: unix.IPPROTO_ICMPV6, ICMPID: u16(0)}, nil}, // id taken from the table
		{"icmp code without proto", Matcher{ICMPCode: func() *uint8 { v := uint8(0); return &v }()}, nil},
		{"mark mask", Matcher{Mark: 0x100, MarkMask: 0xf00}, []string{"-m", "0x100/0xf00"}},
		{"mark zero under a mask", Matcher{Mark: 0, MarkMask: 0xff}, []string{"-m", "0/0xff"}},
		{"zone", Matcher{Zone: u16(2)}, nil},
		{"zone 0", Matcher{Zone: u16(0)}, nil},
		{"orig zone", Matcher{OrigZone: u16(0)}, nil},
		{"orig zone 2", Matcher{OrigZone: u16(2)}, nil},
		{"reply zone 1", Matcher{ReplyZone: u16(1)}, nil},
		{"labels all", Matcher{LabelsAll: []byte{0x03}}, nil},
		{"labels any", Matcher{LabelsAny: []byte{0x04}}, nil},
		{"status", Matcher{Status: StatusSeenReply, StatusMask: StatusSeenReply}, []string{"-u", "SEEN_REPLY"}},
		{"status bit clear", Matcher{Status: 0, StatusMask: StatusSeenReply}, nil},
		{"family v4 only", Matcher{Family: unix.AF_INET}, []string{"-f", "ipv4"}},
		{"tcp state", Matcher{TCPStates: []TCPState{TCPStateTimeWait, TCPStateFinWait}}, nil},
		{"tcp state time_wait", Matcher{Proto: unix.IPPROTO_TCP, TCPStates: []TCPState{TCPStateTimeWait}}, []string{"-p", "tcp", "--state", "TIME_WAIT"}},
		{"sctp state", Matcher{SCTPStates: []SCTPState{SCTPStateEstablished}}, []string{"-p", "sctp", "--state", "ESTABLISHED"}},
		{"sctp states", Matcher{SCTPStates: []SCTPState{SCTPStateCookieWait, SCTPStateShutdownSent}}, nil},
		{"family v6", Matcher{Family: unix.AF_INET6}, []string{"-f", "ipv6"}},
		{"helper", Matcher{Helper: "ftp"}, nil},
	}
	r := rand.New(rand.NewSource(2))
	for _, tt := range tests {
		for _, noKernel := range []bool{false, true} {
			ctx := ctx(t) // a deadline per case: the whole test takes minutes
			name := fmt.Sprintf("%s (no-kernel-filters=%v)", tt.name, noKernel)
			before := fillFieldsTable(ctx, t, c, r, tt.m.Helper)
			m, args := resolveMatcher(tt.m, tt.conntrack, before)
			if m.StatusMask == StatusSeenReply {
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
			res, err := c.Cleanup(ctx, []Matcher{m}, &CleanupOptions{NoKernelFilters: noKernel})
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
				table[i].SetHelp(&Help{Name: helper})
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
func resolveMatcher(m Matcher, conntrack []string, before []Flow) (Matcher, []string) {
	u16 := func(v uint16) *uint16 { return &v }
	args := slices.Clone(conntrack)
	for i := range before {
		f := &before[i]
		if f.TupleOrig.Proto.Num != m.Proto {
			continue
		}
		if m.Orig.SrcPort != nil && *m.Orig.SrcPort == 0 {
			m.Orig.SrcPort = u16(f.TupleOrig.Proto.SrcPort)
		}
		if m.Reply.DstPort != nil && *m.Reply.DstPort == 0 {
			m.Reply.DstPort = u16(f.TupleReply.Proto.DstPort)
		}
		if m.ICMPID != nil && *m.ICMPID == 0 {
			m.ICMPID = u16(f.TupleOrig.Proto.ICMPv6ID)
		}
	}
	for i, a := range args {
		switch a {
		case "%s":
			args[i] = fmt.Sprint(*m.Orig.SrcPort)
		case "%r":
			args[i] = fmt.Sprint(*m.Reply.DstPort)
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

func TestKernelCleanupDryRunAndPlan(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	table := manyFlows(500)
	if _, err := c.CreateMany(ctx, table); err != nil {
		t.Fatal(err)
	}
	u16 := func(v uint16) *uint16 { return &v }
	matchers := []Matcher{
		{Mark: 1, MarkMask: 3},
		{Proto: unix.IPPROTO_UDP, Orig: Endpoints{Dst: netip.MustParsePrefix("192.0.2.53/32"), DstPort: u16(53)}, TCPStates: nil, Reply: Endpoints{DstPort: u16(4000)}},
		{Orig: Endpoints{Src: netip.MustParsePrefix("10.0.0.0/30")}},
	}
	res, err := c.Cleanup(ctx, matchers, &CleanupOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Stats(ctx); st.Entries != 500 {
		t.Fatalf("dry run deleted flows: %d left", st.Entries)
	}
	plan := res.Plan.String()
	k := res.Plan.Capabilities
	wantFlushes := 2
	if k.FlushUnspec {
		wantFlushes = 1
	}
	if k.FlushMark && len(res.Plan.Flushes) != wantFlushes {
		t.Errorf("mark matcher not flushed in the kernel (capabilities %v):\n%s", k, plan)
	}
	if len(res.Plan.Scan.Matchers) != 2 || res.Plan.Scan.Indexed["orig-dst+port"] != 1 || res.Plan.Scan.Linear != 1 {
		t.Errorf("unexpected scan plan:\n%s", plan)
	}
	if !strings.Contains(plan, "kernel flushes") {
		t.Errorf("plan text: %s", plan)
	}
	res, err = c.Cleanup(ctx, matchers, nil)
	if err != nil || res.Failed != 0 {
		t.Fatal(err, res.Samples)
	}
	n := 0
	for i := range table {
		if !oracleSelectsAny(matchers, &table[i]) {
			n++
		}
	}
	if st, _ := c.Stats(ctx); int(st.Entries) != n {
		t.Fatalf("%d flows left, want %d", st.Entries, n)
	}
}

// TestKernelCleanupManyFlushable gives Cleanup more matchers than it sends
// as kernel flushes: they share one dump instead, and the table left is the
// one the matchers select.
func TestKernelCleanupManyFlushable(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	table := manyFlows(3000)
	for i := range table {
		table[i].SetMark(uint32(i % 50))
	}
	if res, err := c.CreateMany(ctx, table); err != nil || len(res.Errors) > 0 {
		t.Fatalf("fill: %v %+v", err, res.Errors)
	}
	var matchers []Matcher
	for m := uint32(0); m < 40; m += 2 {
		matchers = append(matchers, Matcher{Mark: m, MarkMask: 0xffffffff})
	}
	few, err := c.Plan(ctx, matchers[:maxFlushes], nil)
	if err != nil {
		t.Fatal(err)
	}
	if few.Capabilities.FlushMark && (len(few.Flushes) == 0 || len(few.Notes) != 0) {
		t.Fatalf("%d flushable matchers were not flushed:\n%s", maxFlushes, few)
	}
	res, err := c.Cleanup(ctx, matchers, nil)
	if err != nil || res.Failed != 0 {
		t.Fatal(err, res.Samples)
	}
	if len(res.Plan.Flushes) != 0 || len(res.Plan.Scan.Matchers) != len(matchers) {
		t.Fatalf("%d flushable matchers, plan:\n%s", len(matchers), &res.Plan)
	}
	if res.Plan.Capabilities.FlushMark && len(res.Plan.Notes) == 0 {
		t.Errorf("the plan does not say why the kernel flushes nothing:\n%s", &res.Plan)
	}
	want := 0
	for i := range table {
		if m := table[i].Mark; m >= 40 || m%2 == 1 {
			want++
		}
	}
	if st, _ := c.Stats(ctx); int(st.Entries) != want || res.Deleted != len(table)-want {
		t.Fatalf("%d flows left and %d deleted, want %d left", st.Entries, res.Deleted, want)
	}
}

func TestCapabilitiesFor(t *testing.T) {
	tests := []struct {
		release string
		want    Capabilities
	}{
		{"4.4.302", Capabilities{Release: "4.4.302", Major: 4, Minor: 4, DumpMark: true, FlushMark: true}},
		{"5.10.0-28-amd64", Capabilities{Release: "5.10.0-28-amd64", Major: 5, Minor: 10, DumpMark: true, FlushMark: true, DumpTuple: true}},
		{"6.8.0", Capabilities{Release: "6.8.0", Major: 6, Minor: 8, DumpMark: true, FlushMark: true, DumpTuple: true, DumpStatus: true, FlushStatus: true, DumpZone: true, FlushZone: true}},
	}
	for _, tt := range tests {
		got, err := capabilitiesFor(tt.release)
		if err != nil || got != tt.want {
			t.Errorf("capabilitiesFor(%q) = %+v, %v; want %+v", tt.release, got, err, tt.want)
		}
	}
	if _, err := capabilitiesFor("garbage"); err == nil {
		t.Error("garbage release parsed")
	}
}

// TestKernelCleanupOnDelete checks that OnDelete sees exactly the flows the
// cleanup deleted, once each, and that it keeps every matcher out of
// kernel flushes. Flows that Func deletes behind the cleanup's back come
// back ENOENT and must not reach OnDelete.
func TestKernelCleanupOnDelete(t *testing.T) {
	ns, c := dialNS(t)
	reserveLabels(t, ns)
	ctx := ctx(t)
	r := rand.New(rand.NewSource(3))
	// More matching flows than one delete window holds.
	table := randomTable(r, 6000)
	if res, err := c.CreateMany(ctx, table); err != nil || len(res.Errors) > 0 {
		t.Fatalf("fill: %v, %d errors", err, len(res.Errors))
	}
	before, err := c.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	u16 := func(v uint16) *uint16 { return &v }
	stolen := map[string]bool{}
	matchers := []Matcher{
		// Flushable without OnDelete on kernels with mark and tuple flushes.
		{Mark: 1, MarkMask: 0xff},
		{Proto: unix.IPPROTO_UDP, Family: unix.AF_INET, Orig: Endpoints{DstPort: u16(53)}},
		// Deletes some of its flows itself before the cleanup does.
		{Proto: unix.IPPROTO_TCP, Func: func(f *Flow) bool {
			if f.TupleOrig.Proto.SrcPort%10 == 0 {
				k := lookupKey(f)
				if err := c.Delete(ctx, &k); err != nil {
					t.Errorf("delete from Func: %v", err)
				}
				stolen[flowKey(f)] = true
			}
			return true
		}},
	}
	var seen []string
	dup := map[string]bool{}
	opts := &CleanupOptions{OnDelete: func(f *Flow) {
		key := flowKey(f)
		if dup[key] {
			t.Errorf("OnDelete called twice for %s", key)
		}
		dup[key] = true
		seen = append(seen, key)
	}}
	checkOnDeletePlans(ctx, t, c, matchers, opts)
	res, err := c.Cleanup(ctx, matchers, opts)
	if err != nil || res.Failed != 0 {
		t.Fatalf("cleanup: %v %+v", err, res.Samples)
	}
	if res.Flushes != 0 || len(res.Plan.Flushes) != 0 {
		t.Fatalf("cleanup with OnDelete ran %d flushes:\n%s", res.Flushes, res.Plan.String())
	}
	after, err := c.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for i := range after {
		left[flowKey(&after[i])] = true
	}
	var gone []string
	for i := range before {
		if key := flowKey(&before[i]); !left[key] && !stolen[key] {
			gone = append(gone, key)
		}
	}
	slices.Sort(gone)
	slices.Sort(seen)
	if len(stolen) == 0 || res.AlreadyGone != len(stolen) {
		t.Errorf("%d flows deleted by Func, %d counted already gone", len(stolen), res.AlreadyGone)
	}
	if !slices.Equal(seen, gone) {
		t.Fatalf("OnDelete saw %d flows, the cleanup removed %d", len(seen), len(gone))
	}
	if res.Deleted != len(seen) || len(seen) < 2048 {
		t.Fatalf("deleted %d, reported %d (want more than one window)", res.Deleted, len(seen))
	}
	for i := range after {
		if oracleSelectsAny(matchers[:2], &after[i]) ||
			after[i].TupleOrig.Proto.Num == unix.IPPROTO_TCP {
			t.Fatalf("a matching flow survived: %s", flowKey(&after[i]))
		}
	}
}

// checkOnDeletePlans checks that the kernel would flush some of the
// matchers without OnDelete (or the test proves nothing), and none with
// opts, which sets it.
func checkOnDeletePlans(ctx context.Context, t *testing.T, c *Conn, matchers []Matcher, opts *CleanupOptions) {
	t.Helper()
	plain, err := c.Plan(ctx, matchers, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := plain.Capabilities
	if k.FlushMark && k.FlushTuple && len(plain.Flushes) == 0 {
		t.Fatalf("without OnDelete the plan flushes nothing; the test proves nothing:\n%s", plain)
	}
	p, err := c.Plan(ctx, matchers, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Flushes) != 0 || len(p.Scan.Matchers) != len(matchers) {
		t.Fatalf("plan with OnDelete flushes in the kernel:\n%s", p)
	}
}

// TestKernelCleanupFunc checks that Func restricts what the fields select,
// sees only flows the fields select, and keeps a flushable matcher out of
// kernel flushes.
func TestKernelCleanupFunc(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	table := manyFlows(3000) // UDP to 192.0.2.53:53, marks 0..3
	if _, err := c.CreateMany(ctx, table); err != nil {
		t.Fatal(err)
	}
	selected := func(f *Flow) bool { return f.TupleOrig.Src().As4()[3]&4 == 0 }
	var calls, outside int
	m := Matcher{Mark: 2, MarkMask: 3, Proto: unix.IPPROTO_UDP, Func: func(f *Flow) bool {
		calls++
		if f.Mark&3 != 2 || f.TupleOrig.Proto.Num != unix.IPPROTO_UDP {
			outside++
		}
		return selected(f)
	}}
	// The same fields without Func make a kernel flush where the kernel
	// can do it.
	noFunc := m
	noFunc.Func = nil
	p, err := c.Plan(ctx, []Matcher{noFunc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := p.Capabilities; k.FlushMark && k.FlushTuple && len(p.Flushes) == 0 {
		t.Fatalf("fields alone are not flushed; the test proves nothing:\n%s", p)
	}
	p, err = c.Plan(ctx, []Matcher{m}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Flushes) != 0 || len(p.Scan.Matchers) != 1 {
		t.Fatalf("a matcher with Func is flushed:\n%s", p)
	}
	res, err := c.Cleanup(ctx, []Matcher{m}, nil)
	if err != nil || res.Failed != 0 {
		t.Fatalf("cleanup: %v %+v", err, res.Samples)
	}
	if res.Flushes != 0 || len(res.Plan.Flushes) != 0 {
		t.Fatalf("cleanup flushed a matcher with Func:\n%s", res.Plan.String())
	}
	want := 0
	for i := range table {
		if table[i].Mark&3 != 2 || !selected(&table[i]) {
			want++
		}
	}
	after, err := c.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != want || res.Deleted != len(table)-want || res.Deleted == 0 {
		t.Fatalf("%d flows left, want %d; deleted %d", len(after), want, res.Deleted)
	}
	for i := range after {
		if after[i].Mark&3 == 2 && selected(&after[i]) {
			t.Fatalf("flow %s survived", flowKey(&after[i]))
		}
	}
	if outside != 0 {
		t.Errorf("Func saw %d flows the fields do not select", outside)
	}
	if calls == 0 || calls > len(table)/4 {
		t.Errorf("Func called %d times for %d flows of mark 2", calls, len(table)/4)
	}
	// Match applies Func too.
	f := table[2]
	f.TupleOrig.SetSrc(netip.MustParseAddr("10.0.0.6"))
	if m.Match(&f) {
		t.Errorf("Match ignores Func")
	}
}
