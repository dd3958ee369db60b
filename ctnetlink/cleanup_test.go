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
)

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
				matchers := make([]Selector, 1+r.Intn(12))
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

func TestKernelCleanupDryRunAndPlan(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	table := manyFlows(500)
	if _, err := c.CreateMany(ctx, table); err != nil {
		t.Fatal(err)
	}
	matchers := []Selector{
		{Mark: Is(MarkMatch{1, 3})},
		{Proto: Protocol(unix.IPPROTO_UDP), OrigDst: Is(netip.MustParsePrefix("192.0.2.53/32")), OrigDstPort: Port(53), ReplyDstPort: Port(4000)},
		{OrigSrc: Is(netip.MustParsePrefix("10.0.0.0/30"))},
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
	var matchers []Selector
	for m := uint32(0); m < 40; m += 2 {
		matchers = append(matchers, Selector{Mark: Is(MarkMatch{m, 0xffffffff})})
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
	stolen := map[string]bool{}
	matchers := []Selector{
		// Flushable without OnDelete on kernels with mark and tuple flushes.
		{Mark: Is(MarkMatch{1, 0xff})},
		{Proto: Protocol(unix.IPPROTO_UDP), Family: unix.AF_INET, OrigDstPort: Port(53)},
		// Deletes some of its flows itself before the cleanup does.
		{Proto: Protocol(unix.IPPROTO_TCP), Func: func(f *Flow) bool {
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
	gone := goneKeys(before, after, stolen)
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

// goneKeys returns, sorted, the keys of the flows of before that are not
// in after, leaving out those in skip.
func goneKeys(before, after []Flow, skip map[string]bool) []string {
	left := map[string]bool{}
	for i := range after {
		left[flowKey(&after[i])] = true
	}
	var gone []string
	for i := range before {
		if key := flowKey(&before[i]); !left[key] && !skip[key] {
			gone = append(gone, key)
		}
	}
	slices.Sort(gone)
	return gone
}

// checkOnDeletePlans checks that the kernel would flush some of the
// matchers without OnDelete (or the test proves nothing), and none with
// opts, which sets it.
func checkOnDeletePlans(ctx context.Context, t *testing.T, c *Conn, matchers []Selector, opts *CleanupOptions) {
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
	m := Selector{Mark: Is(MarkMatch{2, 3}), Proto: Protocol(unix.IPPROTO_UDP), Func: func(f *Flow) bool {
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
	p, err := c.Plan(ctx, []Selector{noFunc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := p.Capabilities; k.FlushMark && k.FlushTuple && len(p.Flushes) == 0 {
		t.Fatalf("fields alone are not flushed; the test proves nothing:\n%s", p)
	}
	p, err = c.Plan(ctx, []Selector{m}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Flushes) != 0 || len(p.Scan.Matchers) != 1 {
		t.Fatalf("a matcher with Func is flushed:\n%s", p)
	}
	res, err := c.Cleanup(ctx, []Selector{m}, nil)
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
