package ctnetlink

import (
	"context"
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// evKey identifies an event in a comparison of streams.
type evKey struct {
	Type EventType
	ID   uint32
	Orig string
}

func keyOf(ev *Event) evKey {
	return evKey{Type: ev.Type, ID: ev.Flow.ID, Orig: fmt.Sprintf("%d %s", ev.Flow.TupleOrig.Proto.Num, tupleString(&ev.Flow.TupleOrig))}
}

// queued returns the events queued on l: all events the kernel queued
// before the call, as the operations that cause them return only once
// their events are queued.
func queued(t *testing.T, l *Listener) []Event {
	t.Helper()
	var evs []Event
	readIdle(t, l, 100*time.Millisecond, 30*time.Second, func(ev *Event, err error) bool {
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		e := *ev
		if ev.Flow != nil {
			f := *ev.Flow
			e.Flow = &f
		}
		if ev.Expect != nil {
			x := *ev.Expect
			e.Expect = &x
		}
		evs = append(evs, e)
		return true
	})
	return evs
}

// checkComplete fails the test if l lost or discarded events: a
// comparison of streams is valid only without.
func checkComplete(t *testing.T, name string, l *Listener) {
	t.Helper()
	if n := l.Overruns(); n != 0 {
		t.Fatalf("%s: %d receive buffer overruns (buffer %d bytes): the comparison is void", name, n, l.ReadBuffer())
	}
	d, err := l.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	if d != 0 {
		t.Fatalf("%s: the kernel dropped %d events: the comparison is void", name, d)
	}
	if n := l.Discarded(); n != 0 {
		t.Errorf("%s: the kernel program let %d events through that Match rejects", name, n)
	}
}

// TestKernelEventFilterRandom listens with random filters next to an
// unfiltered listener, generates thousands of events, and checks that
// each filtered listener receives exactly the events of the unfiltered
// stream that Match selects, in the same order.
func TestKernelEventFilterRandom(t *testing.T) {
	ns, c := dialNS(t)
	reserveLabels(t, ns)
	ctx := ctx(t)
	r := filterRand(t)
	rounds, perRound, flows := 3, 10, 500
	if testing.Short() {
		rounds, flows = 1, 200
	}
	const readBuffer = 16 << 20
	var total, selective, none, every int
	for round := range rounds {
		table := randomTable(r, flows)
		for i := range table {
			if r.Intn(3) == 0 {
				table[i].SetStatus(StatusConfirmed | []Status{StatusAssured, StatusSeenReply, StatusAssured | StatusSeenReply}[r.Intn(3)])
			}
		}
		all := listenNS(t, ns, ListenConfig{ReadBuffer: readBuffer})
		filters := make([]*Selector, perRound)
		ls := make([]*Listener, perRound)
		for i := range filters {
			filters[i] = randomEventFilter(r, table)
			ls[i] = listenNS(t, ns, ListenConfig{ReadBuffer: readBuffer, Filter: filters[i]})
		}

		want := tableLifecycle(ctx, t, c, r, table)

		stream := queued(t, all)
		checkComplete(t, "unfiltered", all)
		if len(stream) != want {
			t.Fatalf("round %d: the unfiltered listener received %d events, want %d", round, len(stream), want)
		}
		total += len(stream)
		for i, f := range filters {
			var wantKeys, gotKeys []evKey
			for j := range stream {
				if f.MatchEvent(&stream[j]) {
					wantKeys = append(wantKeys, keyOf(&stream[j]))
				}
			}
			for _, ev := range queued(t, ls[i]) {
				gotKeys = append(gotKeys, keyOf(&ev))
			}
			checkComplete(t, fmt.Sprintf("filter %d", i), ls[i])
			if diff := cmp.Diff(wantKeys, gotKeys); diff != "" {
				insns, _ := f.Program()
				t.Fatalf("round %d, filter %+v: events (-Match on the unfiltered stream +filtered listener):\n%s\nprogram:\n%s",
					round, f, diff, programText(insns))
			}
			switch len(wantKeys) {
			case 0:
				none++
			case len(stream):
				every++
			default:
				selective++
			}
		}
		for _, l := range append(ls, all) {
			l.Close()
		}
	}
	t.Logf("%d events in %d rounds; of %d random filters %d selected some, %d none, %d every event",
		total, rounds, rounds*perRound, selective, none, every)
	if selective < rounds*perRound/4 {
		t.Errorf("only %d of %d filters selected a proper part of the events: the test proves little", selective, rounds*perRound)
	}
}

// filterCase runs ops in a fresh namespace with one listener per filter
// and returns the events each received, as (type, original source).
func filterCase(t *testing.T, filters []*Selector, ops func(ctx context.Context, c *Conn)) [][]string {
	t.Helper()
	ns, c := dialNS(t)
	ls := make([]*Listener, len(filters))
	for i, f := range filters {
		ls[i] = listenNS(t, ns, ListenConfig{Filter: f})
	}
	ops(ctx(t), c)
	out := make([][]string, len(filters))
	for i, l := range ls {
		for _, ev := range queued(t, l) {
			out[i] = append(out[i], fmt.Sprintf("%v %v", ev.Type, ev.Flow.TupleOrig.Src()))
		}
		checkComplete(t, fmt.Sprintf("listener %d", i), l)
	}
	return out
}

// lifecycle creates, updates (mark) and deletes each flow, one after the
// other.
func lifecycle(t *testing.T, flows ...*Flow) func(context.Context, *Conn) {
	return func(ctx context.Context, c *Conn) {
		for _, f := range flows {
			if err := c.Create(ctx, f); err != nil {
				t.Fatalf("create: %v", err)
			}
			u := lookupKey(f)
			u.SetMark(f.Mark + 1)
			if err := c.Update(ctx, &u); err != nil {
				t.Fatalf("update: %v", err)
			}
			if err := c.Delete(ctx, f); err != nil {
				t.Fatalf("delete: %v", err)
			}
		}
	}
}

func life(src string) []string {
	return []string{"new " + src, "update " + src, "destroy " + src}
}

// TestKernelEventFilterIPv6KeepsIPv4 is the regression test for a negated
// IPv6 address filter that hid every IPv4 event (florianl/go-conntrack#53):
// an IPv4 address is in no IPv6 prefix, so a negated IPv6 prefix keeps
// every IPv4 event and a plain one selects none.
func TestKernelEventFilterIPv6KeepsIPv4(t *testing.T) {
	filters := []*Selector{
		{OrigSrc: prefixes("2001:db8::1/128")},
		{OrigSrc: negated(prefixes("2001:db8::1/128"))},
		{OrigSrc: prefixes("2001:db8::/120"), Family: unix.AF_INET6},
	}
	got := filterCase(t, filters, lifecycle(t,
		testFlow("192.0.2.1", "192.0.2.2", 1000, 80),
		testFlow("2001:db8::1", "2001:db8::2", 1000, 80),
		testFlow("2001:db8:1::1", "2001:db8::2", 1000, 80),
	))
	want := [][]string{
		life("2001:db8::1"),
		append(life("192.0.2.1"), life("2001:db8:1::1")...),
		life("2001:db8::1"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events per filter (-want +got):\n%s", diff)
	}
}

// TestKernelEventFilterNegated is the regression test for negated filters
// that did not work (florianl/go-conntrack#46): drop loopback traffic.
func TestKernelEventFilterNegated(t *testing.T) {
	filters := []*Selector{
		{OrigSrc: negated(prefixes("127.0.0.0/8", "::1/128"))},
		{Types: negated(oneOf(EventUpdate)), OrigDstPort: negated(oneOf[uint16](22, 53))},
		{Proto: negated(oneOf[uint8](unix.IPPROTO_TCP))},
	}
	got := filterCase(t, filters, lifecycle(t,
		testFlow("127.0.0.1", "127.0.0.1", 1000, 22),
		testFlow("10.0.0.1", "10.0.0.2", 1000, 80),
		testFlow("::1", "::1", 1000, 53),
		testFlow("2001:db8::1", "2001:db8::2", 1000, 443),
		testFlow("127.0.0.2", "10.0.0.2", 1000, 443),
	))
	want := [][]string{
		append(life("10.0.0.1"), life("2001:db8::1")...),
		{"new 10.0.0.1", "destroy 10.0.0.1", "new 2001:db8::1", "destroy 2001:db8::1", "new 127.0.0.2", "destroy 127.0.0.2"},
		nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events per filter (-want +got):\n%s", diff)
	}
}

// TestKernelEventFilterMark is the regression test for a mark filter that
// did not work (florianl/go-conntrack#54), including flows without mark,
// which the kernel sends without CTA_MARK, and an update to mark 0, which
// it sends with one.
func TestKernelEventFilterMark(t *testing.T) {
	filters := []*Selector{
		{Mark: oneOf(MarkMatch{Mark: 0x100, Mask: 0xff00})},
		{Mark: oneOf(MarkMatch{Mark: 0x100, Mask: 0xff00}, MarkMatch{Mark: 7})},
		{Mark: negated(oneOf(MarkMatch{Mark: 0x100, Mask: 0xff00}))},
		{Mark: oneOf(MarkMatch{})},
	}
	flows := []*Flow{
		testFlow("10.0.0.1", "10.0.0.9", 1, 2), // mark 0x1ff, then 0
		testFlow("10.0.0.2", "10.0.0.9", 1, 2), // mark 0x2ff, then 0x100
		testFlow("10.0.0.3", "10.0.0.9", 1, 2), // no mark, then 7
		testFlow("10.0.0.4", "10.0.0.9", 1, 2), // mark 0x101, unchanged
	}
	flows[0].SetMark(0x1ff)
	flows[1].SetMark(0x2ff)
	flows[3].SetMark(0x101)
	updates := []uint32{0, 0x100, 7}
	got := filterCase(t, filters, func(ctx context.Context, c *Conn) {
		for _, f := range flows {
			if err := c.Create(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		for i, m := range updates {
			u := lookupKey(flows[i])
			u.SetMark(m)
			if err := c.Update(ctx, &u); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range flows {
			if err := c.Delete(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
	})
	want := [][]string{
		{"new 10.0.0.1", "new 10.0.0.4", "update 10.0.0.2", "destroy 10.0.0.2", "destroy 10.0.0.4"},
		{"new 10.0.0.1", "new 10.0.0.4", "update 10.0.0.2", "update 10.0.0.3", "destroy 10.0.0.2", "destroy 10.0.0.3", "destroy 10.0.0.4"},
		{"new 10.0.0.2", "new 10.0.0.3", "update 10.0.0.1", "update 10.0.0.3", "destroy 10.0.0.1", "destroy 10.0.0.3"},
		{"new 10.0.0.3", "update 10.0.0.1", "destroy 10.0.0.1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events per filter (-want +got):\n%s", diff)
	}
}

// TestKernelEventFilterExpect checks Types on expectation events, which
// the flow conditions do not touch.
func TestKernelEventFilterExpect(t *testing.T) {
	ns, c := dialNS(t)
	groups := []Group{GroupNew, GroupUpdate, GroupDestroy, GroupExpNew, GroupExpDestroy}
	filters := []*Selector{
		{Types: oneOf(EventExpNew), OrigSrc: prefixes("10.0.0.0/8"), Mark: oneOf(MarkMatch{Mark: 9})},
		{Types: negated(oneOf(EventExpNew, EventExpDestroy))},
		{OrigSrc: negated(prefixes("192.0.2.0/24"))},
	}
	all := listenNS(t, ns, ListenConfig{Groups: groups})
	ls := make([]*Listener, len(filters))
	for i, f := range filters {
		ls[i] = listenNS(t, ns, ListenConfig{Groups: groups, Filter: f})
	}
	ctx := ctx(t)
	master := createMaster(t, c, "192.0.2.1", "192.0.2.2", 40000, 21, "ftp")
	e := dataExpect(master, 50000)
	e.SetHelpName("ftp")
	e.SetTimeout(100)
	if err := c.CreateExpect(ctx, e); err != nil {
		t.Fatalf("create-expect: %v", err)
	}
	if err := c.DeleteExpect(ctx, e); err != nil {
		t.Fatalf("delete-expect: %v", err)
	}
	if err := c.Delete(ctx, master); err != nil {
		t.Fatalf("delete: %v", err)
	}
	stream := queued(t, all)
	var types []EventType
	for _, ev := range stream {
		types = append(types, ev.Type)
	}
	if !slices.Contains(types, EventExpNew) || !slices.Contains(types, EventExpDestroy) || !slices.Contains(types, EventNew) {
		t.Fatalf("unfiltered events %v lack a kind this test needs", types)
	}
	pick := []func(EventType) bool{
		func(typ EventType) bool { return typ == EventExpNew },
		func(typ EventType) bool { return typ != EventExpNew && typ != EventExpDestroy },
		func(typ EventType) bool { return typ == EventExpNew || typ == EventExpDestroy },
	}
	for i, l := range ls {
		var want, got []EventType
		for _, typ := range types {
			if pick[i](typ) {
				want = append(want, typ)
			}
		}
		for _, ev := range queued(t, l) {
			got = append(got, ev.Type)
		}
		checkComplete(t, fmt.Sprintf("filter %d", i), l)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("filter %+v: event types (-want +got):\n%s", filters[i], diff)
		}
	}
}

// TestKernelEventFilterLongProgram attaches programs near the kernel's
// limit, with many long jumps.
func TestKernelEventFilterLongProgram(t *testing.T) {
	host := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}) }
	var many []netip.Prefix
	for i := range 1200 {
		many = append(many, netip.PrefixFrom(host(i), 32))
	}
	filters := []*Selector{
		{OrigSrc: OneOf[netip.Prefix]{Values: many}},
		{OrigSrc: OneOf[netip.Prefix]{Values: many, Negate: true}},
	}
	for _, f := range filters {
		insns, err := f.Program()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("program of %d instructions", len(insns))
	}
	var flows []*Flow
	var in, out []string
	for i := 0; i < 1300; i += 37 {
		flows = append(flows, testFlow(host(i).String(), "192.0.2.1", 1, 2))
		if i < 1200 {
			in = append(in, life(host(i).String())...)
		} else {
			out = append(out, life(host(i).String())...)
		}
	}
	got := filterCase(t, filters, lifecycle(t, flows...))
	if diff := cmp.Diff([][]string{in, out}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// tableLifecycle creates the flows of table, updates random ones twice and
// deletes them all in random order; it returns how many events that makes.
func tableLifecycle(ctx context.Context, t *testing.T, c *Conn, r *rand.Rand, table []Flow) int {
	t.Helper()
	want := len(table)
	if res, err := c.CreateMany(ctx, table); err != nil || len(res.Errors) > 0 {
		t.Fatalf("create: %v, %d errors, first %v", err, len(res.Errors), res.Errors[:min(1, len(res.Errors))])
	}
	for range 2 {
		ups := randomUpdates(r, table)
		if res, err := c.UpdateMany(ctx, ups); err != nil || len(res.Errors) > 0 {
			t.Fatalf("update: %v, %d errors, first %v", err, len(res.Errors), res.Errors[:min(1, len(res.Errors))])
		}
		want += len(ups)
	}
	r.Shuffle(len(table), func(i, j int) { table[i], table[j] = table[j], table[i] })
	if res, err := c.DeleteMany(ctx, table); err != nil || len(res.Errors) > 0 || res.NotFound > 0 {
		t.Fatalf("delete: %v, %+v", err, res)
	}
	want += len(table)
	return want
}
