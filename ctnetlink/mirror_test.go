package ctnetlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"math/rand"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// flowState is what the mirror tests compare of a flow: every value an
// Entry keeps except those the kernel changes without events (timeout,
// counters).
func flowState(f *Flow) string {
	tuple := func(t *Tuple) string {
		p := &t.Proto
		return fmt.Sprintf("%d %v:%d>%v:%d icmp=%d/%d/%d icmp6=%d/%d/%d", p.Num, t.Src(), p.SrcPort, t.Dst(), p.DstPort,
			p.ICMPType, p.ICMPCode, p.ICMPID, p.ICMPv6Type, p.ICMPv6Code, p.ICMPv6ID)
	}
	return fmt.Sprintf("id=%d %s | %s zone=%d mark=%d status=%v tcp=%v sctp=%v labels=%x",
		f.ID, tuple(&f.TupleOrig), tuple(&f.TupleReply), f.Zone, f.Mark, f.Status,
		f.ProtoInfo.TCP.State, f.ProtoInfo.SCTP.State, f.Labels)
}

func entryText(e *Entry) string {
	f := e.Flow()
	return flowState(&f)
}

// dumpState dumps the flows filter selects.
func dumpState(t *testing.T, c *Conn, filter *Selector) map[EntryKey]string {
	t.Helper()
	out := map[EntryKey]string{}
	for f, err := range c.Dump(context.Background(), filter) {
		if err != nil {
			t.Fatalf("dump: %v", err)
		}
		out[KeyOf(f)] = flowState(f)
	}
	return out
}

func mirrorState(m *Mirror) map[EntryKey]string {
	out := map[EntryKey]string{}
	for e := range m.Range {
		if _, dup := out[e.Key()]; dup {
			out[EntryKey{}] += "duplicate " + entryText(e)
		}
		out[e.Key()] = entryText(e)
	}
	return out
}

// consumer applies a Mirror's changes to a map of its own and checks that
// each flow's changes come in lifecycle order.
type consumer struct {
	mu        sync.Mutex
	flows     map[EntryKey]Entry
	history   map[EntryKey][]ChangeKind
	synthetic [ChangeRemoved + 1]int
	events    [ChangeRemoved + 1]int
	errs      []string
}

func newConsumer() *consumer {
	return &consumer{flows: map[EntryKey]Entry{}, history: map[EntryKey][]ChangeKind{}}
}

func (c *consumer) apply(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := ch.Entry.Key()
	_, have := c.flows[k]
	if have == (ch.Kind == ChangeAdded) && len(c.errs) < 10 {
		c.errs = append(c.errs, fmt.Sprintf("flow %s: %v after %v", entryText(&ch.Entry), ch.Kind, c.history[k]))
	}
	if ch.Kind == ChangeRemoved {
		delete(c.flows, k)
	} else {
		c.flows[k] = ch.Entry
	}
	if c.history != nil {
		c.history[k] = append(c.history[k], ch.Kind)
	}
	if ch.Synthetic {
		c.synthetic[ch.Kind]++
	} else {
		c.events[ch.Kind]++
	}
}

func (c *consumer) state() map[EntryKey]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[EntryKey]string{}
	for k, e := range c.flows {
		out[k] = entryText(&e)
	}
	return out
}

// counts returns the numbers of event and synthetic changes by kind so far;
// the mirror may still be emitting.
func (c *consumer) counts() (events, synthetic [ChangeRemoved + 1]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events, c.synthetic
}

func (c *consumer) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		t.Error(e)
	}
}

// startMirror starts a Mirror in ns and closes it when the test ends.
func startMirror(t *testing.T, ns *nstest.NS, cfg MirrorConfig) *Mirror {
	t.Helper()
	cfg.NetNS = ns.FD()
	m, err := NewMirror(context.Background(), &cfg)
	if err != nil {
		t.Fatalf("new mirror: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// waitConverged waits until the table is quiet and the mirror, and the
// consumer if not nil, equal a fresh dump flow for flow.
func waitConverged(t *testing.T, m *Mirror, c *Conn, filter *Selector, cons *consumer, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var diff string
	for {
		if !m.Stats().Pending {
			want := dumpState(t, c, filter)
			got := mirrorState(m)
			var cgot map[EntryKey]string
			if cons != nil {
				cgot = cons.state()
			}
			switch {
			case !maps.Equal(want, got):
				diff = "mirror (-dump +mirror):\n" + cmp.Diff(want, got)
			case cons != nil && !maps.Equal(want, cgot):
				diff = "consumer (-dump +consumer):\n" + cmp.Diff(want, cgot)
			default:
				return
			}
		} else {
			diff = "a resynchronisation is pending"
		}
		if err := m.Err(); err != nil {
			t.Fatalf("mirror stopped: %v", err)
		}
		if time.Now().After(deadline) {
			if len(diff) > 4000 {
				diff = diff[:4000] + "\n..."
			}
			t.Fatalf("mirror did not converge within %v, stats %+v\n%s", timeout, m.Stats(), diff)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMirrorEntryZero(t *testing.T) {
	var e Entry
	f := e.Flow()
	if b := f.AppendAttributes(nil); len(b) == 0 {
		t.Error("the zero Entry's Flow encodes to nothing")
	}
	if _, ok := e.Timeout(); ok {
		t.Error("the zero Entry has a timeout")
	}
	if e.Key() != (EntryKey{}) {
		t.Error("the zero Entry has a key")
	}
}

func TestMirrorEntrySize(t *testing.T) {
	if got := unsafe.Sizeof(Entry{}); got != 152 {
		t.Errorf("Entry is %d bytes, the docs say 152", got)
	}
	if got := unsafe.Sizeof(mirrorSlot{}); got != 168 {
		t.Errorf("mirrorSlot is %d bytes, the docs say 152+16", got)
	}
}

// TestMirrorEntryRoundTrip converts flows to entries and back: every value
// an Entry keeps survives.
func TestMirrorEntryRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	table := randomTable(r, 500)
	for i := range table {
		f := &table[i]
		f.SetID(r.Uint32())
		f.SetStatus(StatusConfirmed | StatusAssured)
		if i%2 == 0 {
			f.CountersOrig.SetPackets(uint64(i))
			f.CountersOrig.SetBytes(uint64(i) * 100)
			f.CountersReply.SetPackets(uint64(i) + 1)
			f.CountersReply.SetBytes(uint64(i)*100 + 1)
			f.Timestamp.SetStart(uint64(1700000000000000000 + i))
		}
	}
	for i := range table {
		f := &table[i]
		var e Entry
		e.setFlow(f)
		g := e.Flow()
		if diff := cmp.Diff(flowState(f), flowState(&g)); diff != "" {
			t.Fatalf("flow %d (-flow +entry):\n%s", i, diff)
		}
		var e2 Entry
		e2.setFlow(&g)
		if e2 != e {
			t.Fatalf("flow %d: entry changed on a round trip:\n%+v\n%+v", i, e, e2)
		}
		if to, ok := e.Timeout(); !ok || to != f.Timeout {
			t.Errorf("flow %d: timeout %d %v, want %d", i, to, ok, f.Timeout)
		}
		o, rep, ok := e.Counters()
		if ok != f.Has(FlowAttrCountersOrig) || o.Packets != f.CountersOrig.Packets || rep.Bytes != f.CountersReply.Bytes {
			t.Errorf("flow %d: counters %+v %+v %v", i, o, rep, ok)
		}
		if st, ok := e.Start(); ok != f.Timestamp.Has(TimestampAttrStart) || (ok && uint64(st.UnixNano()) != f.Timestamp.Start) {
			t.Errorf("flow %d: start %v %v", i, st, ok)
		}
		orig := e.Orig()
		if !(&Selector{OrigSrc: HostIs(f.TupleOrig.Src()), OrigDst: HostIs(f.TupleOrig.Dst()), Proto: Is[uint8](e.Proto())}).Match(&g) ||
			orig.Src() != f.TupleOrig.Src() || e.Family() != f.Family() {
			t.Errorf("flow %d: tuple %v", i, orig)
		}
	}
}

// TestMirrorMerge drives the merge of dumps and events directly, without a
// kernel, through the orders the documentation describes.
func TestMirrorMerge(t *testing.T) {
	flowPort := func(id uint32, port uint16, mark uint32) *Entry {
		f := testFlow("192.0.2.1", "192.0.2.2", port, 80)
		f.SetID(id)
		f.SetMark(mark)
		var e Entry
		e.setFlow(f)
		return &e
	}
	flow := func(id uint32, mark uint32) *Entry { return flowPort(id, uint16(id), mark) }
	// twin is another flow with the same id.
	twin := func(id uint32, mark uint32) *Entry { return flowPort(id, uint16(id)+1000, mark) }
	withLabels := func(e *Entry, l byte) *Entry {
		f := e.Flow()
		f.SetLabels([]byte{l, 15: 0})
		var n Entry
		n.setFlow(&f)
		return &n
	}
	// Steps run in order; "dump" opens a dump window, "end" closes it with
	// a sweep.
	type step struct {
		op string // "event", "destroy", "destroy-unselected", "dump", "row", "end"
		e  *Entry
	}
	tests := []struct {
		name    string
		before  []*Entry // in the mirror before the dump
		steps   []step
		want    map[string]string // by port
		changes []string          // kind/synthetic/port
	}{
		{
			name:    "dump adds and sweeps",
			before:  []*Entry{flow(1, 0), flow(2, 0)},
			steps:   []step{{"dump", nil}, {"row", flow(2, 0)}, {"row", flow(3, 0)}, {"end", nil}},
			want:    map[string]string{"2": entryText(flow(2, 0)), "3": entryText(flow(3, 0))},
			changes: []string{"added/true/3", "removed/true/1"},
		},
		{
			name:    "dump updates a changed flow",
			before:  []*Entry{flow(1, 0)},
			steps:   []step{{"dump", nil}, {"row", flow(1, 5)}, {"end", nil}},
			want:    map[string]string{"1": entryText(flow(1, 5))},
			changes: []string{"updated/true/1"},
		},
		{
			name:    "destroy during the dump keeps the dump from re-adding",
			steps:   []step{{"dump", nil}, {"destroy", flow(1, 0)}, {"row", flow(1, 0)}, {"end", nil}},
			want:    map[string]string{},
			changes: []string{"added/true/1", "removed/true/1"},
		},
		{
			name:    "destroy of a flow never seen adds and removes it",
			before:  []*Entry{flow(2, 0)},
			steps:   []step{{"destroy", flow(1, 4)}},
			want:    map[string]string{"2": entryText(flow(2, 0))},
			changes: []string{"added/true/1", "removed/true/1"},
		},
		{
			name:    "destroy of a flow the filter does not select changes nothing",
			steps:   []step{{"destroy-unselected", flow(1, 0)}},
			want:    map[string]string{},
			changes: nil,
		},
		{
			name:    "destroy after the sweep removed the flow changes nothing",
			before:  []*Entry{flow(1, 0)},
			steps:   []step{{"dump", nil}, {"end", nil}, {"destroy", flow(1, 0)}},
			want:    map[string]string{},
			changes: []string{"removed/true/1"},
		},
		{
			name:    "a repeated destroy changes nothing",
			before:  []*Entry{flow(1, 0)},
			steps:   []step{{"destroy", flow(1, 0)}, {"destroy", flow(1, 0)}},
			want:    map[string]string{},
			changes: []string{"removed/false/1"},
		},
		{
			name:    "destroy of a flow re-created unseen after it left",
			before:  []*Entry{flow(1, 0)},
			steps:   []step{{"destroy", flow(1, 0)}, {"event", flow(1, 2)}, {"destroy", flow(1, 2)}},
			want:    map[string]string{},
			changes: []string{"removed/false/1", "added/false/1", "removed/false/1"},
		},
		{
			name:    "destroy during the dump of a flow the mirror had",
			before:  []*Entry{flow(1, 0)},
			steps:   []step{{"dump", nil}, {"destroy", flow(1, 0)}, {"row", flow(1, 0)}, {"end", nil}},
			want:    map[string]string{},
			changes: []string{"removed/false/1"},
		},
		{
			name:    "re-created after a destroy during the dump",
			steps:   []step{{"dump", nil}, {"destroy", flow(1, 0)}, {"event", flow(1, 3)}, {"row", flow(1, 0)}, {"end", nil}},
			want:    map[string]string{"1": entryText(flow(1, 3))},
			changes: []string{"added/true/1", "removed/true/1", "added/false/1"},
		},
		{
			name:    "event during the dump wins over the dump",
			before:  []*Entry{flow(1, 0)},
			steps:   []step{{"dump", nil}, {"event", flow(1, 7)}, {"row", flow(1, 0)}, {"end", nil}},
			want:    map[string]string{"1": entryText(flow(1, 7))},
			changes: []string{"updated/false/1"},
		},
		{
			name:    "dump fills in what the event left out",
			steps:   []step{{"dump", nil}, {"event", flow(1, 7)}, {"row", withLabels(flow(1, 0), 4)}, {"end", nil}},
			want:    map[string]string{"1": entryText(withLabels(flow(1, 7), 4))},
			changes: []string{"added/false/1", "updated/true/1"},
		},
		{
			name:    "event labels win over the dump's",
			steps:   []step{{"dump", nil}, {"event", withLabels(flow(1, 7), 2)}, {"row", withLabels(flow(1, 0), 4)}, {"end", nil}},
			want:    map[string]string{"1": entryText(withLabels(flow(1, 7), 2))},
			changes: []string{"added/false/1"},
		},
		{
			name:    "event of a flow the dump missed keeps it",
			before:  []*Entry{flow(1, 0)},
			steps:   []step{{"dump", nil}, {"event", flow(1, 2)}, {"end", nil}},
			want:    map[string]string{"1": entryText(flow(1, 2))},
			changes: []string{"updated/false/1"},
		},
		{
			name:    "update keeps the labels it does not carry",
			before:  []*Entry{withLabels(flow(1, 0), 8)},
			steps:   []step{{"event", flow(1, 2)}},
			want:    map[string]string{"1": entryText(withLabels(flow(1, 2), 8))},
			changes: []string{"updated/false/1"},
		},
		{
			name:    "flows that share an id stay apart",
			before:  []*Entry{flow(1, 0), twin(1, 0)},
			steps:   []step{{"event", twin(1, 5)}, {"destroy", flow(1, 0)}},
			want:    map[string]string{"1001": entryText(twin(1, 5))},
			changes: []string{"updated/false/1001", "removed/false/1"},
		},
		{
			name:    "a destroy during the dump blocks only its own flow",
			before:  []*Entry{flow(1, 0)},
			steps:   []step{{"dump", nil}, {"destroy", flow(1, 0)}, {"row", flow(1, 0)}, {"row", twin(1, 0)}, {"end", nil}},
			want:    map[string]string{"1001": entryText(twin(1, 0))},
			changes: []string{"removed/false/1", "added/true/1001"},
		},
		{
			name:    "the sweep removes one of two flows that share an id",
			before:  []*Entry{flow(1, 0), twin(1, 0), flow(2, 0)},
			steps:   []step{{"dump", nil}, {"row", flow(2, 0)}, {"row", twin(1, 0)}, {"end", nil}},
			want:    map[string]string{"2": entryText(flow(2, 0)), "1001": entryText(twin(1, 0))},
			changes: []string{"removed/true/1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			m := &Mirror{
				index:     map[uint32]int32{},
				destroyed: map[EntryKey]struct{}{},
				events:    1,
				cfg: MirrorConfig{OnChange: func(c Change) {
					got = append(got, fmt.Sprintf("%v/%v/%d", c.Kind, c.Synthetic, c.Entry.Orig().Proto.SrcPort))
				}},
			}
			m.gen = 1
			m.window = true
			for _, e := range tt.before {
				m.fromDump(e, 1, true)
			}
			m.window = false
			got = nil
			for _, s := range tt.steps {
				switch s.op {
				case "dump":
					m.gen++
					m.window = true
				case "row":
					m.fromDump(s.e, m.gen, false)
				case "event":
					m.upsert(s.e)
				case "destroy":
					m.destroy(s.e, true)
				case "destroy-unselected":
					m.destroy(s.e, false)
				case "end":
					m.sweep(m.gen)
					m.window = false
					clear(m.destroyed)
				}
			}
			byPort := map[string]string{}
			for e := range m.Range {
				byPort[strconv.Itoa(int(e.Orig().Proto.SrcPort))] = entryText(e)
			}
			if diff := cmp.Diff(tt.want, byPort); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.changes, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMirrorTable adds and removes flows whose ids collide often and checks
// the table and its id chains against a plain map after every step.
func TestMirrorTable(t *testing.T) {
	m := &Mirror{index: map[uint32]int32{}}
	want := map[EntryKey]Entry{}
	check := func(step int) {
		t.Helper()
		if len(m.slots) != len(want) {
			t.Fatalf("step %d: %d slots, want %d", step, len(m.slots), len(want))
		}
		seen := 0
		for id, head := range m.index {
			for j := head; j >= 0; j = m.slots[j].next {
				if m.slots[j].id != id {
					t.Fatalf("step %d: slot %d with id %d in the chain of id %d", step, j, m.slots[j].id, id)
				}
				seen++
			}
		}
		if seen != len(m.slots) {
			t.Fatalf("step %d: chains reach %d slots of %d", step, seen, len(m.slots))
		}
		for k, e := range want {
			if got, ok := m.Get(k); !ok || got != e {
				t.Fatalf("step %d: Get(%v) = %v, %v", step, k, got, ok)
			}
		}
	}
	r := rand.New(rand.NewSource(1))
	entry := func(port int) Entry {
		f := testFlow("192.0.2.1", "192.0.2.2", uint16(port), 80)
		f.SetID(uint32(port % 8))
		var e Entry
		e.setFlow(f)
		return e
	}
	for step := 0; step < 5000; step++ {
		e := entry(r.Intn(64))
		i := m.findLocked(&e)
		if _, ok := want[e.Key()]; ok != (i >= 0) {
			t.Fatalf("step %d: find %v, want present %v", step, i, ok)
		}
		switch {
		case i >= 0 && r.Intn(2) == 0:
			m.removeAtLocked(i)
			delete(want, e.Key())
		case i < 0:
			m.insertLocked(&e)
			want[e.Key()] = e
		}
		check(step)
	}
	// Grow, empty most of it and shrink: the chains are rebuilt.
	for port := 64; port < 8000; port++ {
		e := entry(port)
		m.insertLocked(&e)
		want[e.Key()] = e
	}
	for port := 64; port < 7500; port++ {
		e := entry(port)
		m.removeAtLocked(m.findLocked(&e))
		delete(want, e.Key())
	}
	c := cap(m.slots)
	m.shrink()
	if cap(m.slots) >= c {
		t.Errorf("capacity %d after shrink, %d before", cap(m.slots), c)
	}
	check(-1)
	if got := len(m.ByID(3)); got < 2 {
		t.Errorf("ByID(3) returned %d entries, want the flows that share id 3", got)
	}
}

// TestKernelMirrorConvergence starts a mirror on a populated table, changes
// the table in every way, and checks that the mirror and a consumer of its
// changes end up equal to a fresh dump.
func TestKernelMirrorConvergence(t *testing.T) {
	nstest.RequireCommands(t, "nft")
	ns, c := dialNS(t)
	reserveLabels(t, ns)
	ns.Sysctl(t, "net.netfilter.nf_conntrack_events", "1")
	ctx := ctx(t)
	r := rand.New(rand.NewSource(1))
	table := randomTable(r, 3000)
	if res, err := c.CreateMany(ctx, table[:1000]); err != nil || len(res.Errors) > 0 {
		t.Fatalf("fill: %+v %v", res, err)
	}
	cons := newConsumer()
	// OnChange sees the mirror with the change applied.
	var mp atomic.Pointer[Mirror]
	var inconsistent atomic.Int32
	onChange := func(ch Change) {
		cons.apply(ch)
		if m := mp.Load(); m != nil {
			_, ok := m.Get(ch.Entry.Key())
			if ok != (ch.Kind != ChangeRemoved) {
				inconsistent.Add(1)
			}
		}
	}
	m := startMirror(t, ns, MirrorConfig{OnChange: onChange})
	mp.Store(m)
	defer func() {
		if n := inconsistent.Load(); n > 0 {
			t.Errorf("%d changes that Get did not reflect during OnChange", n)
		}
	}()
	if _, syn := cons.counts(); m.Len() != 1000 || syn[ChangeAdded] != 1000 {
		t.Fatalf("initial mirror has %d flows, %d synthetic adds, want 1000", m.Len(), syn[ChangeAdded])
	}
	waitConverged(t, m, c, nil, cons, 10*time.Second)

	if res, err := c.CreateMany(ctx, table[1000:]); err != nil || len(res.Errors) > 0 {
		t.Fatalf("create: %+v %v", res, err)
	}
	// New marks and labels for a third of the flows.
	var upd []Flow
	for i := 0; i < len(table); i += 3 {
		var u Flow
		u.SetTupleOrig(table[i].TupleOrig)
		if table[i].Zone != 0 {
			u.SetZone(table[i].Zone)
		}
		u.SetMark(uint32(1000 + i))
		if i%2 == 0 {
			u.SetLabels([]byte{0, 0, 0, 0x80, 15: 0})
			u.SetLabelsMask([]byte{0, 0, 0, 0x80, 15: 0})
		}
		upd = append(upd, u)
	}
	if res, err := c.UpdateMany(ctx, upd); err != nil || len(res.Errors) > 0 {
		t.Fatalf("update: %v %d errors, first %v", err, len(res.Errors), res.Errors[:min(1, len(res.Errors))])
	}
	// Delete every fourth flow, then flush a mark.
	var del []Flow
	for i := 0; i < len(table); i += 4 {
		del = append(del, table[i])
	}
	if res, err := c.DeleteMany(ctx, del); err != nil || len(res.Errors) > 0 {
		t.Fatalf("delete: %+v %v", res, err)
	}
	if err := c.Flush(ctx, &Selector{Mark: Is(MarkMatch{1, 0xff})}); err != nil {
		t.Fatalf("flush: %v", err)
	}
	waitConverged(t, m, c, nil, cons, 20*time.Second)
	cons.check(t)
	st := m.Stats()
	evs, syn := cons.counts()
	t.Logf("stats %+v; consumer: events %v, synthetic %v", st, evs, syn)
	if st.Overruns != 0 {
		t.Logf("%d overruns with the default buffer", st.Overruns)
	} else if syn != [4]int{ChangeAdded: 1000} {
		t.Errorf("synthetic changes %v without a loss, want only the initial 1000 adds", syn)
	}
	if st.Silent != 0 || st.Polling {
		t.Errorf("silent %d, polling %v with nf_conntrack_events=1", st.Silent, st.Polling)
	}
}

// TestKernelMirrorOrder checks that a consumer sees every flow, each added
// before it is updated and removed, also when the events of many flows
// interleave.
//
// The flows are all gone when the workers finish, so the mirror equals a
// dump (both empty) whether or not it has read the events still queued on
// its socket: convergence says nothing about them. A marker flow created
// after the workers is the barrier: the kernel queues its NEW after every
// earlier event, so once the consumer has seen it, it has seen every event
// that reached the socket.
func TestKernelMirrorOrder(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	cons := newConsumer()
	m := startMirror(t, ns, MirrorConfig{OnChange: cons.apply})
	const n = 2000
	flows := manyFlows(n + 1)
	marker := flows[n]
	flows = flows[:n]
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				f := &flows[i]
				if err := c.Create(ctx, f); err != nil {
					t.Errorf("create: %v", err)
					return
				}
				var u Flow
				u.SetTupleOrig(f.TupleOrig)
				u.SetMark(77)
				if err := c.Update(ctx, &u); err != nil {
					t.Errorf("update: %v", err)
					return
				}
				if err := c.Delete(ctx, f); err != nil {
					t.Errorf("delete: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if err := c.Create(ctx, &marker); err != nil {
		t.Fatalf("create marker: %v", err)
	}
	waitSeen(t, cons, marker.TupleOrig.Src(), 60*time.Second)
	if err := c.Delete(ctx, &marker); err != nil {
		t.Fatalf("delete marker: %v", err)
	}
	waitConverged(t, m, c, nil, cons, 30*time.Second)
	cons.check(t)
	st := m.Stats()
	dropped, err := m.l.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	seen := cons.seenFlows()
	missing := 0
	for i := range flows {
		h, ok := seen[flows[i].TupleOrig.Src()]
		switch {
		case !ok:
			missing++
		case h[0] != ChangeAdded || h[len(h)-1] != ChangeRemoved || slices.Contains(h[1:], ChangeAdded) || slices.Contains(h[:len(h)-1], ChangeRemoved):
			t.Errorf("flow %d: changes %v, want added, updates, removed", i, h)
		}
	}
	t.Logf("%d of %d flows seen; %d overruns, %d drops; stats %+v", n-missing, n, st.Overruns, dropped, st)
	switch {
	case st.Overruns == 0 && dropped == 0 && missing > 0:
		t.Errorf("%d of %d flows never reached OnChange, and no loss was reported", missing, n)
	case (st.Overruns > 0 || dropped > 0) && st.Resyncs == 0:
		t.Errorf("%d overruns, %d drops, and no resynchronisation", st.Overruns, dropped)
	}
}

// waitSeen waits until the consumer has seen a change of the flow from
// src.
func waitSeen(t *testing.T, cons *consumer, src netip.Addr, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, ok := cons.seenFlows()[src]; ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no change of the flow from %v within %v", src, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// churnSize is how many flows TestKernelMirrorChurn creates and deletes:
// 100,000, or 20,000 with -short; CTSPEC_MIRROR_CHURN overrides both.
func churnSize(t *testing.T) int {
	if v := os.Getenv("CTSPEC_MIRROR_CHURN"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("CTSPEC_MIRROR_CHURN=%q: want a positive number", v)
		}
		return n
	}
	if testing.Short() {
		return 20000
	}
	return 100000
}

// churn creates the flows with workers goroutines, in waves: each wave
// creates a chunk, updates the mark of a third of it and deletes all but a
// random tenth. It returns how many flows are left.
func churn(t *testing.T, c *Conn, flows []Flow, workers int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const chunk = 2000
	var mu sync.Mutex
	left := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w)))
			for start := w * chunk; start < len(flows); start += workers * chunk {
				part := flows[start:min(start+chunk, len(flows))]
				if res, err := c.CreateMany(ctx, part); err != nil || len(res.Errors) > 0 {
					t.Errorf("create: %v, %d errors", err, len(res.Errors))
					return
				}
				var upd, del []Flow
				kept := 0
				for i := range part {
					if i%3 == 0 {
						var u Flow
						u.SetTupleOrig(part[i].TupleOrig)
						u.SetMark(uint32(100 + r.Intn(100)))
						upd = append(upd, u)
					}
					if r.Intn(10) == 0 {
						kept++
					} else {
						del = append(del, part[i])
					}
				}
				if res, err := c.UpdateMany(ctx, upd); err != nil || len(res.Errors) > 0 {
					t.Errorf("update: %v, %d errors", err, len(res.Errors))
					return
				}
				if res, err := c.DeleteMany(ctx, del); err != nil || len(res.Errors) > 0 || res.Done != len(del) {
					t.Errorf("delete: %+v %v", res, err)
					return
				}
				mu.Lock()
				left += kept
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return left
}

// TestKernelMirrorChurn creates, updates and deletes many flows while a
// mirror with a small receive buffer follows: the buffer overruns, and the
// mirror must repair itself, without help, to equal a fresh dump.
func TestKernelMirrorChurn(t *testing.T) {
	for _, tt := range []struct {
		name     string
		reliable bool
		n        int
	}{
		{"enobufs", false, churnSize(t)},
		{"reliable-destroy", true, churnSize(t) / 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ns, c := dialNS(t)
			ns.Sysctl(t, "net.netfilter.nf_conntrack_events", "1")
			cons := newConsumer()
			cons.history = nil // too many flows to keep each one's history
			m := startMirror(t, ns, MirrorConfig{
				ReadBuffer:       64 << 10,
				ReliableDestroy:  tt.reliable,
				OnChange:         cons.apply,
				MaxResyncBackoff: 500 * time.Millisecond,
			})
			// Readers on other goroutines meanwhile.
			stop := make(chan struct{})
			var readers sync.WaitGroup
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					var keys []EntryKey
					for e := range m.Range {
						if len(keys) < 100 {
							keys = append(keys, e.Key())
						}
					}
					for _, k := range keys {
						if e, ok := m.Get(k); ok && e.Key() != k {
							t.Errorf("Get(%v) returned %v", k, e.Key())
						}
						m.ByID(k.ID())
					}
					_ = m.Stats()
					time.Sleep(time.Millisecond)
				}
			}()
			start := time.Now()
			left := churn(t, c, manyFlows(tt.n), 4)
			churned := time.Since(start)
			close(stop)
			readers.Wait()
			// Events queued before a resync's dump can still arrive after
			// it, and destroy events the kernel re-delivers arrive late:
			// the mirror may briefly hold a flow that is gone, and then
			// repairs itself. Wait until it agrees with the kernel and
			// holds the churn's survivors with no repair pending.
			var st MirrorStats
			deadline := time.Now().Add(30 * time.Second)
			for {
				waitConverged(t, m, c, nil, cons, 30*time.Second)
				if st = m.Stats(); !st.Pending && st.Flows == left {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("mirror holds %d flows, want %d; stats %+v", st.Flows, left, st)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			settled := time.Since(start) - churned
			cons.check(t)
			dropped, _ := m.l.Dropped()
			evs, syn := cons.counts()
			t.Logf("%d flows created and deleted, %d left, in %v; settled %v later; %d drops; stats %+v; consumer events %v, synthetic %v",
				tt.n, left, churned.Round(time.Millisecond), settled.Round(time.Millisecond), dropped, st, evs, syn)
			if st.Overruns == 0 || st.Resyncs == 0 {
				t.Errorf("overruns %d, resyncs %d: the churn did not exercise the repair", st.Overruns, st.Resyncs)
			}
			if syn[ChangeAdded] == 0 && syn[ChangeRemoved] == 0 {
				t.Errorf("no synthetic change after %d overruns", st.Overruns)
			}
		})
	}
}

// TestKernelMirrorFilter mirrors the flows of one mark: a flow whose mark
// changes leaves or enters the mirror.
func TestKernelMirrorFilter(t *testing.T) {
	ns, c := dialNS(t)
	ns.Sysctl(t, "net.netfilter.nf_conntrack_events", "1")
	ctx := ctx(t)
	flows := manyFlows(400) // marks 0 to 3
	if res, err := c.CreateMany(ctx, flows[:200]); err != nil || res.Done != 200 {
		t.Fatalf("create: %+v %v", res, err)
	}
	filter := &Selector{Mark: Is(MarkMatch{Mark: 1})}
	cons := newConsumer()
	m := startMirror(t, ns, MirrorConfig{Filter: filter, OnChange: cons.apply})
	if m.Len() != 50 {
		t.Fatalf("%d flows with mark 1, want 50", m.Len())
	}
	if res, err := c.CreateMany(ctx, flows[200:]); err != nil || res.Done != 200 {
		t.Fatalf("create: %+v %v", res, err)
	}
	// Move mark 1 to 2 and mark 3 to 1.
	var upd []Flow
	for i := range flows {
		var u Flow
		u.SetTupleOrig(flows[i].TupleOrig)
		switch flows[i].Mark {
		case 1:
			u.SetMark(2)
		case 3:
			u.SetMark(1)
		default:
			continue
		}
		upd = append(upd, u)
	}
	if res, err := c.UpdateMany(ctx, upd); err != nil || res.Done != len(upd) {
		t.Fatalf("update: %+v %v", res, err)
	}
	waitConverged(t, m, c, filter, cons, 10*time.Second)
	cons.check(t)
	if m.Len() != 100 {
		t.Errorf("%d flows with mark 1, want 100", m.Len())
	}
	for e := range m.Range {
		if e.Mark() != 1 {
			t.Fatalf("flow %d with mark %d in the mirror", e.ID(), e.Mark())
		}
	}
}

// TestKernelMirrorSilent makes flows that have no events at all, as flows
// created before any listener are with nf_conntrack_events=2, and checks
// that the mirror finds their end by resynchronising.
func TestKernelMirrorSilent(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	// Flows created while events are off never get any.
	ns.Sysctl(t, "net.netfilter.nf_conntrack_events", "0")
	flows := manyFlows(300)
	if res, err := c.CreateMany(ctx, flows); err != nil || res.Done != len(flows) {
		t.Fatalf("create: %+v %v", res, err)
	}
	ns.Sysctl(t, "net.netfilter.nf_conntrack_events", "2")
	cons := newConsumer()
	m := startMirror(t, ns, MirrorConfig{OnChange: cons.apply, ResyncInterval: 200 * time.Millisecond})
	if st := m.Stats(); st.Silent != len(flows) || !st.Polling {
		t.Fatalf("stats %+v, want %d silent flows and polling", st, len(flows))
	}
	// New flows have events: they do not count as silent.
	fresh := manyFlows(400)[300:]
	if res, err := c.CreateMany(ctx, fresh); err != nil || res.Done != len(fresh) {
		t.Fatalf("create: %+v %v", res, err)
	}
	// No DESTROY event reports these; only the periodic dump does.
	if res, err := c.DeleteMany(ctx, flows[:200]); err != nil || res.Done != 200 {
		t.Fatalf("delete: %+v %v", res, err)
	}
	waitConverged(t, m, c, nil, cons, 10*time.Second)
	if st := m.Stats(); st.Silent != 100 || !st.Polling || st.Resyncs == 0 {
		t.Errorf("stats %+v, want 100 silent flows, polling and resyncs", st)
	}
	if res, err := c.DeleteMany(ctx, flows[200:]); err != nil || res.Done != 100 {
		t.Fatalf("delete: %+v %v", res, err)
	}
	waitConverged(t, m, c, nil, cons, 10*time.Second)
	if st := m.Stats(); st.Silent != 0 || st.Polling {
		t.Errorf("stats %+v, want no silent flow and no polling", st)
	}
	cons.check(t)
	if m.Len() != len(fresh) {
		t.Errorf("%d flows, want %d", m.Len(), len(fresh))
	}
}

// goroutines waits for the number of goroutines to drop to at most n and
// returns it.
func goroutines(n int) int {
	var got int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got = runtime.NumGoroutine(); got <= n || time.Now().After(deadline) {
			return got
		}
	}
}

// TestKernelMirrorLifecycle checks that Close and a cancelled context stop
// every goroutine of the Mirror, and that Resync works and reports a
// stopped mirror.
func TestKernelMirrorLifecycle(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	if res, err := c.CreateMany(ctx, manyFlows(1000)); err != nil || res.Done != 1000 {
		t.Fatalf("create: %+v %v", res, err)
	}

	t.Run("close", func(t *testing.T) {
		base := runtime.NumGoroutine()
		m, err := NewMirror(ctx, &MirrorConfig{NetNS: ns.FD()})
		if err != nil {
			t.Fatal(err)
		}
		if got := runtime.NumGoroutine(); got < base+2 {
			t.Errorf("%d goroutines while the mirror runs, %d before: the leak check sees nothing", got, base)
		}
		if err := m.Resync(ctx); err != nil {
			t.Fatalf("resync: %v", err)
		}
		if st := m.Stats(); st.Resyncs != 1 || st.Flows != 1000 {
			t.Errorf("stats after resync %+v", st)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-m.Done():
		default:
			t.Fatal("Done not closed after Close")
		}
		if err := m.Err(); err != nil {
			t.Errorf("Err after Close: %v", err)
		}
		if err := m.Resync(ctx); err == nil {
			t.Error("resync of a closed mirror succeeded")
		}
		if got := goroutines(base); got > base {
			t.Errorf("%d goroutines after Close, %d before", got, base)
		}
		if m.Len() != 1000 {
			t.Errorf("content lost on Close: %d flows", m.Len())
		}
		m.Close()
	})

	t.Run("cancel", func(t *testing.T) {
		base := runtime.NumGoroutine()
		cctx, cancel := context.WithCancel(ctx)
		m, err := NewMirror(cctx, &MirrorConfig{NetNS: ns.FD()})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case <-m.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("mirror still running 5s after its context was cancelled")
		}
		if err := m.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("Err after cancel: %v, want context.Canceled", err)
		}
		if got := goroutines(base); got > base {
			t.Errorf("%d goroutines after cancel, %d before", got, base)
		}
		m.Close()
	})

	t.Run("cancel during initial dump", func(t *testing.T) {
		base := runtime.NumGoroutine()
		cctx, cancel := context.WithCancel(ctx)
		var once sync.Once
		_, err := NewMirror(cctx, &MirrorConfig{NetNS: ns.FD(), OnChange: func(Change) { once.Do(cancel) }})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("NewMirror: %v, want context.Canceled", err)
		}
		if got := goroutines(base); got > base {
			t.Errorf("%d goroutines after a failed NewMirror, %d before", got, base)
		}
	})
}

// BenchmarkMirror250k mirrors a table of 250,000 flows: the heap the
// mirror takes per flow (B/flow), how long the initial dump takes, and how
// long a resynchronisation of the unchanged table takes (ns/op).
func BenchmarkMirror250k(b *testing.B) {
	const n = 250000
	ns := nstest.New(b)
	c, err := Dial(&Config{NetNS: ns.FD()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if res, err := c.CreateMany(ctx, manyFlows(n)); err != nil || res.Done != n {
		b.Fatalf("fill: %+v %v", res.Done, err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	m, err := NewMirror(ctx, &MirrorConfig{NetNS: ns.FD()})
	if err != nil {
		b.Fatal(err)
	}
	initial := time.Since(start)
	defer m.Close()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if m.Len() != n {
		b.Fatalf("mirror holds %d flows", m.Len())
	}
	b.ResetTimer()
	for range b.N {
		if err := m.Resync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/flow")
	b.ReportMetric(initial.Seconds()*1000, "initial-ms")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "resync-ms")
	runtime.KeepAlive(m)
}

// exampleMirror mirrors the flows to UDP port 53 of the network namespace
// netns and prints every change to w until ctx ends.
func exampleMirror(ctx context.Context, netns int, w io.Writer) error {
	dport := uint16(53)
	m, err := NewMirror(ctx, &MirrorConfig{
		NetNS:  netns,
		Filter: &Selector{Proto: Protocol(unix.IPPROTO_UDP), OrigDstPort: Is(dport)},
		OnChange: func(c Change) {
			orig := c.Entry.Orig()
			fmt.Fprintf(w, "%v %v synthetic=%v\n", c.Kind, tupleString(&orig), c.Synthetic)
		},
	})
	if err != nil {
		return err
	}
	defer m.Close()
	// The mirror stops by itself when ctx ends. Meanwhile any goroutine
	// may read it: m.Len(), m.Get(key), m.Range, and m.Stats() for the
	// overruns it repaired.
	<-m.Done()
	return m.Err()
}

// ExampleMirror follows the DNS flows of the caller's network namespace
// until interrupted.
func ExampleMirror() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := exampleMirror(ctx, 0, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// TestExampleMirror runs the example's code in a namespace.
func TestExampleMirror(t *testing.T) {
	ns, c := dialNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flows := manyFlows(2) // UDP from 10.0.0.0 and 10.0.0.1, port 4000, to 192.0.2.53:53
	if err := c.Create(ctx, &flows[1]); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	done := make(chan error, 1)
	go func() { done <- exampleMirror(ctx, ns.FD(), &out) }()
	wait := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); out.String() != want && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if got := out.String(); got != want {
			t.Fatalf("example printed %q, want %q", got, want)
		}
	}
	want := "added 10.0.0.1:4000->192.0.2.53:53 synthetic=true\n"
	wait(want)
	if err := c.Create(ctx, &flows[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, &flows[0]); err != nil {
		t.Fatal(err)
	}
	want += "added 10.0.0.0:4000->192.0.2.53:53 synthetic=false\nremoved 10.0.0.0:4000->192.0.2.53:53 synthetic=false\n"
	wait(want)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("example: %v", err)
	}
}

func TestMirrorChangeKindString(t *testing.T) {
	got := strings.Join([]string{ChangeAdded.String(), ChangeUpdated.String(), ChangeRemoved.String(), ChangeKind(9).String()}, ",")
	if want := "added,updated,removed,ChangeKind(9)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// seenFlows returns the original source addresses of the flows the
// consumer has seen a change of, with how many changes each had.
func (c *consumer) seenFlows() map[netip.Addr][]ChangeKind {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[netip.Addr][]ChangeKind{}
	for k, h := range c.history {
		e := Entry{origSrc: k.src, family: k.family}
		o := e.Orig()
		out[o.Src()] = append(out[o.Src()], h...)
	}
	return out
}

// TestKernelMirrorShortLived creates and deletes flows in bursts that
// overrun a small receive buffer, so that many flows lose their NEW event.
// With ReliableDestroy every DESTROY arrives, so every flow must reach
// OnChange: by its own events, or as a synthetic pair of changes carrying
// the DESTROY's values.
func TestKernelMirrorShortLived(t *testing.T) {
	ns, c := dialNS(t)
	ns.Sysctl(t, "net.netfilter.nf_conntrack_events", "1")
	ns.Sysctl(t, "net.netfilter.nf_conntrack_acct", "1")
	ctx := ctx(t)
	cons := newConsumer()
	m := startMirror(t, ns, MirrorConfig{
		ReadBuffer:       32 << 10,
		ReliableDestroy:  true,
		OnChange:         cons.apply,
		MaxResyncBackoff: 500 * time.Millisecond,
	})
	n := 10000
	if testing.Short() {
		n = 4000
	}
	flows := manyFlows(n)
	const chunk = 500
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := w * chunk; start < n; start += 2 * chunk {
				part := flows[start:min(start+chunk, n)]
				if res, err := c.CreateMany(ctx, part); err != nil || len(res.Errors) > 0 {
					t.Errorf("create: %v, %d errors", err, len(res.Errors))
					return
				}
				if res, err := c.DeleteMany(ctx, part); err != nil || len(res.Errors) > 0 {
					t.Errorf("delete: %v, %d errors", err, len(res.Errors))
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Every DESTROY arrives, late ones too: wait for all of them.
	deadline := time.Now().Add(60 * time.Second)
	for len(cons.seenFlows()) < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	waitConverged(t, m, c, nil, cons, 30*time.Second)
	cons.check(t)
	seen := cons.seenFlows()
	st := m.Stats()
	dropped, err := m.l.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	evs, syn := cons.counts()
	t.Logf("%d flows created and deleted, %d reached OnChange; %d drops; stats %+v; consumer events %v, synthetic %v",
		n, len(seen), dropped, st, evs, syn)
	missing := 0
	for i := range flows {
		h, ok := seen[flows[i].TupleOrig.Src()]
		switch {
		case !ok:
			if missing++; missing <= 5 {
				t.Errorf("flow %d never reached OnChange", i)
			}
		case h[0] != ChangeAdded || h[len(h)-1] != ChangeRemoved || slices.Contains(h[1:], ChangeAdded) || slices.Contains(h[:len(h)-1], ChangeRemoved):
			t.Errorf("flow %d: changes %v, want added, updates, removed", i, h)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d flows never reached OnChange", missing, n)
	}
	if dropped == 0 || st.Unseen == 0 {
		t.Errorf("%d drops, %d flows seen only by their DESTROY: the bursts did not exercise the repair", dropped, st.Unseen)
	}
	if int(st.Unseen) > syn[ChangeAdded] || int(st.Unseen) > syn[ChangeRemoved] {
		t.Errorf("%d flows seen only by their DESTROY, but synthetic changes %v", st.Unseen, syn)
	}
}

// TestMirrorEventError checks that an event the mirror cannot decode
// reaches the caller through Stats, not only a counter, and schedules a
// resynchronisation.
func TestMirrorEventError(t *testing.T) {
	m := &Mirror{index: map[uint32]int32{}, events: 1, lastEnd: time.Now(),
		cfg: MirrorConfig{ResyncBackoff: time.Hour, MaxResyncBackoff: 2 * time.Hour}}
	bad := &Error{Op: "events", Err: errors.New("update: tuple-orig: want 4 bytes, got 5")}
	if !m.handle(&mirrorEvent{kind: mirrorBad, err: bad}) {
		t.Fatal("a decode error stopped the mirror")
	}
	st := m.Stats()
	if st.LastEventError != bad || st.DecodeErrors != 1 || !st.Pending {
		t.Errorf("stats %+v, want LastEventError %v, 1 decode error and a pending resynchronisation", st, bad)
	}
}

// TestKernelMirrorDropCheckError checks that with ReliableDestroy a
// failure to read the kernel's drop counter reaches the caller and makes
// the mirror resynchronise, since losses could not be seen.
func TestKernelMirrorDropCheckError(t *testing.T) {
	ns, _ := dialNS(t)
	l, err := Listen(&ListenConfig{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	m := &Mirror{index: map[uint32]int32{}, events: 1, l: l, lastEnd: time.Now(), dropsKnown: true,
		cfg: MirrorConfig{ReliableDestroy: true, ResyncBackoff: time.Hour, MaxResyncBackoff: 2 * time.Hour}}
	if !m.tick(context.Background(), time.Now()) {
		t.Fatal("tick stopped the mirror")
	}
	st := m.Stats()
	if !errors.Is(st.LastEventError, net.ErrClosed) || !st.Pending {
		t.Errorf("stats %+v, want LastEventError matching net.ErrClosed and a pending resynchronisation", st)
	}
}
