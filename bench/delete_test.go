package bench

import (
	"context"
	"testing"

	timo "github.com/ti-mo/conntrack"
	vish "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// markFilter is the vishvananda/netlink filter for "mark 1": its
// ConntrackFilter has no mark field, so callers write a CustomConntrackFilter
// like this one.
type markFilter uint32

func (m markFilter) MatchConntrackFlow(f *vish.ConntrackFlow) bool { return f.Mark == uint32(m) }

// BenchmarkDelete deletes the 100k TCP flows, all with mark 1, from a table
// that also holds 100k UDP flows with mark 0: with ctspec by a dump the
// kernel filters plus the pipelined DeleteMany, and by a flush the kernel
// filters; with conntrack -D; with vishvananda/netlink's
// ConntrackDeleteFilters, which dumps the whole table, matches in Go and
// deletes one flow per request; and with ti-mo/conntrack, by a filtered
// dump plus one Delete per flow, and by its filtered flush.
func BenchmarkDelete(b *testing.B) {
	ctx := context.Background()
	t := newTable(b)
	flows := ctspecFlows(mixedSpecs(bulkSize))
	vh, tc := t.peers(b)

	mark1 := &ctnetlink.Selector{Mark: ctnetlink.Is(ctnetlink.MarkMatch{Mark: 1})}
	tcp := &ctnetlink.Selector{Family: unix.AF_INET, Proto: ctnetlink.Protocol(unix.IPPROTO_TCP)}
	listDelete := func(filter *ctnetlink.Selector) func(testing.TB) {
		return func(tb testing.TB) {
			sel, err := t.c.List(ctx, filter)
			if err != nil {
				tb.Fatalf("List: %v", err)
			}
			res, err := t.c.DeleteMany(ctx, sel)
			if err != nil || len(res.Errors) > 0 {
				tb.Fatalf("DeleteMany: %v, %d item errors", err, len(res.Errors))
			}
		}
	}
	flush := func(filter *ctnetlink.Selector) func(testing.TB) {
		return func(tb testing.TB) {
			if err := t.c.Flush(ctx, filter); err != nil {
				tb.Fatalf("Flush: %v", err)
			}
		}
	}
	vishDelete := func(filter vish.CustomConntrackFilter) func(testing.TB) {
		return func(tb testing.TB) {
			n, err := vh.ConntrackDeleteFilters(vish.ConntrackTable, vish.FAMILY_V4, filter)
			if err != nil || n != bulkSize {
				tb.Fatalf("ConntrackDeleteFilters: deleted %d: %v", n, err)
			}
		}
	}
	vishTCP := &vish.ConntrackFilter{}
	if err := vishTCP.AddProtocol(unix.IPPROTO_TCP); err != nil {
		b.Fatal(err)
	}

	setup := func(tb testing.TB) {
		t.flush(tb)
		t.fill(tb, flows, 2*bulkSize)
	}
	verify := func(tb testing.TB) {
		t.expect(tb, bulkSize)
		for _, err := range t.c.Dump(ctx, mark1) {
			if err != nil {
				tb.Fatal(err)
			}
			tb.Fatal("a flow with mark 1 is left")
		}
	}
	runMutations(b, t, bulkSize, setup, verify, []mutation{
		{"ctspec-list-deletemany/mark", true, listDelete(mark1)},
		{"ctspec-list-deletemany/tcp", true, listDelete(tcp)},
		{"ctspec-flush-filter/mark", true, flush(mark1)},
		{"ctspec-flush-filter/tcp", true, flush(tcp)},
		{"conntrack-cli/mark", false, func(tb testing.TB) { runQuiet(tb, t.ns, "conntrack", "-D", "-m", "1") }},
		{"conntrack-cli/tcp", false, func(tb testing.TB) { runQuiet(tb, t.ns, "conntrack", "-D", "-p", "tcp") }},
		{"vishvananda/mark", true, vishDelete(markFilter(1))},
		{"vishvananda/tcp", true, vishDelete(vishTCP)},
		{"ti-mo-dump-delete/mark", true, func(tb testing.TB) {
			sel, err := tc.DumpFilter(timo.NewFilter().Mark(1).MarkMask(^uint32(0)), nil)
			if err != nil {
				tb.Fatalf("DumpFilter: %v", err)
			}
			for _, f := range sel {
				if err := tc.Delete(f); err != nil {
					tb.Fatalf("Delete: %v", err)
				}
			}
		}},
		{"ti-mo-flush-filter/mark", true, func(tb testing.TB) {
			if err := tc.FlushFilter(timo.NewFilter().Mark(1).MarkMask(^uint32(0))); err != nil {
				tb.Fatalf("FlushFilter: %v", err)
			}
		}},
	})
}

// BenchmarkFlush empties a table of 100k established TCP flows.
func BenchmarkFlush(b *testing.B) {
	ctx := context.Background()
	t := newTable(b)
	flows := ctspecFlows(tcpSpecs(bulkSize))
	vh, tc := t.peers(b)

	setup := func(tb testing.TB) { t.fill(tb, flows, bulkSize) }
	verify := func(tb testing.TB) { t.expect(tb, 0) }
	runMutations(b, t, bulkSize, setup, verify, []mutation{
		{"ctspec", true, func(tb testing.TB) {
			if err := t.c.Flush(ctx, nil); err != nil {
				tb.Fatalf("Flush: %v", err)
			}
		}},
		{"conntrack-cli", false, func(tb testing.TB) { runQuiet(tb, t.ns, "conntrack", "-F") }},
		{"vishvananda", true, func(tb testing.TB) {
			if err := vh.ConntrackTableFlush(vish.ConntrackTable); err != nil {
				tb.Fatalf("ConntrackTableFlush: %v", err)
			}
		}},
		{"ti-mo", true, func(tb testing.TB) {
			if err := tc.Flush(); err != nil {
				tb.Fatalf("Flush: %v", err)
			}
		}},
	})
}
