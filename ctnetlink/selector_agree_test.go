package ctnetlink

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestKernelSelectorZeroValuesAgree runs one table of selectors, most of
// them built on zero values (a zero mask, mark 0, zone 0, the zero
// StatusMatch), through the three lowerings: the kernel's dump filter
// without the client's check, the BPF program on the kernel's NEW and
// UPDATE events of the flows, and Match. Each must select what oracleSelects, written
// apart in cleanup_oracle_test.go, selects.
func TestKernelSelectorZeroValuesAgree(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	flows := agreeFlows()
	selectors := []Selector{
		{},
		{Mark: Is(MarkMatch{})},
		{Mark: Is(MarkMatch{Mark: 5})},
		{Mark: Is(MarkMatch{Mark: 5, Mask: 0xff})},
		{Status: Is(StatusMatch{})},
		{Status: Is(StatusMatch{Status: StatusSeenReply})},
		{Status: Is(StatusMatch{Mask: StatusSeenReply})},
		{Zone: Is[uint16](0)},
		{Zone: Is[uint16](7)},
		{Zone: Is[uint16](9)},
		{Family: unix.AF_INET6},
	}
	groups := []Group{GroupNew, GroupUpdate}
	all := listenNS(t, ns, ListenConfig{Groups: groups})
	listeners := make([]*Listener, len(selectors))
	for i := range selectors {
		listeners[i] = listenNS(t, ns, ListenConfig{Groups: groups, Filter: &selectors[i]})
	}
	for i, f := range flows {
		if err := c.Create(ctx, f); err != nil {
			t.Fatalf("create flow %d: %v", i, err)
		}
	}
	// Flows made by user space have no reply seen: set it on one.
	var u Flow
	u.SetTupleOrig(flows[1].TupleOrig)
	u.SetStatus(StatusConfirmed | StatusSeenReply)
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("update status: %v", err)
	}
	table, err := c.List(ctx, nil)
	if err != nil || len(table) != len(flows) {
		t.Fatalf("list: %d flows, %v", len(table), err)
	}
	allEvents := queued(t, all)
	for i := range selectors {
		s := &selectors[i]
		name := fmt.Sprintf("selector %d %+v", i, *s)
		var want, match []string
		for j := range table {
			if oracleSelects(s, &table[j]) {
				want = append(want, flowKey(&table[j]))
			}
			if s.Match(&table[j]) {
				match = append(match, flowKey(&table[j]))
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s: the oracle selects nothing; the test proves nothing", name)
		}
		if diff := cmp.Diff(want, match); diff != "" {
			t.Errorf("%s: Match (-oracle +got):\n%s", name, diff)
		}
		checkKernelDump(ctx, t, c, name, s, want)
		checkBPFEvents(t, name, s, allEvents, listeners[i])
	}
}

// agreeFlows returns the flows of TestKernelSelectorZeroValuesAgree: marks
// 0, 5 and 0x105, a zone of both directions and one of the original
// direction only, and an IPv6 flow.
func agreeFlows() []*Flow {
	var flows []*Flow
	add := func(src, dst string, mark uint32, set func(f *Flow)) {
		f := testFlow(src, dst, 1000, 80)
		if mark != 0 {
			f.SetMark(mark)
		}
		if set != nil {
			set(f)
		}
		flows = append(flows, f)
	}
	add("192.0.2.1", "192.0.2.9", 0, nil)
	add("192.0.2.2", "192.0.2.9", 5, nil) // SEEN_REPLY below
	add("192.0.2.3", "192.0.2.9", 0x105, func(f *Flow) { f.SetZone(7) })
	add("2001:db8::1", "2001:db8::9", 0, nil)
	add("192.0.2.5", "192.0.2.9", 0, func(f *Flow) { f.TupleOrig.SetZone(9) })
	return flows
}

// checkKernelDump checks that the kernel alone, given the dump attributes
// of s and no check of the client, sends the flows of want.
func checkKernelDump(ctx context.Context, t *testing.T, c *Conn, name string, s *Selector, want []string) {
	t.Helper()
	fam, q := s.kernelRequest()
	var kernel []string
	err := c.do(ctx, "dump", MsgGet, netlink.Dump, fam, schemaFlow, q.AppendAttributes, func(r *reply) error {
		var f Flow
		if err := f.UnmarshalAttributes(r.Attrs); err != nil {
			return err
		}
		kernel = append(kernel, flowKey(&f))
		return nil
	})
	if err != nil {
		t.Fatalf("%s: raw dump: %v", name, err)
	}
	slices.Sort(kernel)
	sorted := slices.Sorted(slices.Values(want))
	if diff := cmp.Diff(sorted, kernel); diff != "" {
		t.Errorf("%s: kernel dump (-oracle +got):\n%s", name, diff)
	}
}

// checkBPFEvents checks that the BPF program of s alone, on the kernel's
// events, keeps the events of all that the oracle selects: l, listening
// with s, yields them, and Discarded counts what MatchEvent had to drop
// after the program.
func checkBPFEvents(t *testing.T, name string, s *Selector, all []Event, l *Listener) {
	t.Helper()
	var wantEvents, events []string
	for _, ev := range all {
		if oracleSelects(s, ev.Flow) {
			wantEvents = append(wantEvents, fmt.Sprint(ev.Type, " ", flowKey(ev.Flow)))
		}
	}
	for _, ev := range queued(t, l) {
		events = append(events, fmt.Sprint(ev.Type, " ", flowKey(ev.Flow)))
	}
	if len(wantEvents) == 0 {
		t.Fatalf("%s: the oracle selects no event; the test proves nothing", name)
	}
	if diff := cmp.Diff(wantEvents, events); diff != "" {
		t.Errorf("%s: events (-oracle +got):\n%s", name, diff)
	}
	if n := l.Discarded(); n != 0 {
		t.Errorf("%s: the BPF program kept %d events that MatchEvent rejected", name, n)
	}
}
