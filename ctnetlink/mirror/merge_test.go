package mirror

import (
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ctspec/ctspec/ctnetlink"
)

// mergeFlowPort is a flow with the given id, source port and mark.
func mergeFlowPort(id uint32, port uint16, mark uint32) *Entry {
	f := testFlow("192.0.2.1", "192.0.2.2", port, 80)
	f.SetID(id)
	f.SetMark(mark)
	var e Entry
	e.setFlow(f)
	return &e
}

// mergeFlow is flow id, from port id.
func mergeFlow(id uint32, mark uint32) *Entry { return mergeFlowPort(id, uint16(id), mark) }

// mergeTwin is another flow with the same id as mergeFlow(id).
func mergeTwin(id uint32, mark uint32) *Entry { return mergeFlowPort(id, uint16(id)+1000, mark) }

// withLabels is e with label bits l.
func withLabels(e *Entry, l byte) *Entry {
	f := e.Flow()
	f.SetLabels([]byte{l, 15: 0})
	var n Entry
	n.setFlow(&f)
	return &n
}

// mergeStep is one step of a merge case. Steps run in order; "dump" opens
// a dump window, "end" closes it with a sweep.
type mergeStep struct {
	op string // "event", "destroy", "destroy-unselected", "dump", "row", "end"
	e  *Entry
}

// mergeCase is a case of TestMirrorMerge.
type mergeCase struct {
	name    string
	before  []*Entry // in the mirror before the dump
	steps   []mergeStep
	want    map[string]string // by port
	changes []string          // kind/synthetic/port
}

// mergeCases are the orders of dumps and events the documentation
// describes.
var mergeCases = []mergeCase{
	{
		name:    "dump adds and sweeps",
		before:  []*Entry{mergeFlow(1, 0), mergeFlow(2, 0)},
		steps:   []mergeStep{{"dump", nil}, {"row", mergeFlow(2, 0)}, {"row", mergeFlow(3, 0)}, {"end", nil}},
		want:    map[string]string{"2": entryText(mergeFlow(2, 0)), "3": entryText(mergeFlow(3, 0))},
		changes: []string{"added/true/3", "removed/true/1"},
	},
	{
		name:    "dump updates a changed flow",
		before:  []*Entry{mergeFlow(1, 0)},
		steps:   []mergeStep{{"dump", nil}, {"row", mergeFlow(1, 5)}, {"end", nil}},
		want:    map[string]string{"1": entryText(mergeFlow(1, 5))},
		changes: []string{"updated/true/1"},
	},
	{
		name:    "destroy during the dump keeps the dump from re-adding",
		steps:   []mergeStep{{"dump", nil}, {"destroy", mergeFlow(1, 0)}, {"row", mergeFlow(1, 0)}, {"end", nil}},
		want:    map[string]string{},
		changes: []string{"added/true/1", "removed/true/1"},
	},
	{
		name:    "destroy of a flow never seen adds and removes it",
		before:  []*Entry{mergeFlow(2, 0)},
		steps:   []mergeStep{{"destroy", mergeFlow(1, 4)}},
		want:    map[string]string{"2": entryText(mergeFlow(2, 0))},
		changes: []string{"added/true/1", "removed/true/1"},
	},
	{
		name:    "destroy of a flow the filter does not select changes nothing",
		steps:   []mergeStep{{"destroy-unselected", mergeFlow(1, 0)}},
		want:    map[string]string{},
		changes: nil,
	},
	{
		name:    "destroy after the sweep removed the flow changes nothing",
		before:  []*Entry{mergeFlow(1, 0)},
		steps:   []mergeStep{{"dump", nil}, {"end", nil}, {"destroy", mergeFlow(1, 0)}},
		want:    map[string]string{},
		changes: []string{"removed/true/1"},
	},
	{
		name:    "a repeated destroy changes nothing",
		before:  []*Entry{mergeFlow(1, 0)},
		steps:   []mergeStep{{"destroy", mergeFlow(1, 0)}, {"destroy", mergeFlow(1, 0)}},
		want:    map[string]string{},
		changes: []string{"removed/false/1"},
	},
	{
		name:    "destroy of a flow re-created unseen after it left",
		before:  []*Entry{mergeFlow(1, 0)},
		steps:   []mergeStep{{"destroy", mergeFlow(1, 0)}, {"event", mergeFlow(1, 2)}, {"destroy", mergeFlow(1, 2)}},
		want:    map[string]string{},
		changes: []string{"removed/false/1", "added/false/1", "removed/false/1"},
	},
	{
		name:    "destroy during the dump of a flow the mirror had",
		before:  []*Entry{mergeFlow(1, 0)},
		steps:   []mergeStep{{"dump", nil}, {"destroy", mergeFlow(1, 0)}, {"row", mergeFlow(1, 0)}, {"end", nil}},
		want:    map[string]string{},
		changes: []string{"removed/false/1"},
	},
	{
		name:    "re-created after a destroy during the dump",
		steps:   []mergeStep{{"dump", nil}, {"destroy", mergeFlow(1, 0)}, {"event", mergeFlow(1, 3)}, {"row", mergeFlow(1, 0)}, {"end", nil}},
		want:    map[string]string{"1": entryText(mergeFlow(1, 3))},
		changes: []string{"added/true/1", "removed/true/1", "added/false/1"},
	},
	{
		name:    "event during the dump wins over the dump",
		before:  []*Entry{mergeFlow(1, 0)},
		steps:   []mergeStep{{"dump", nil}, {"event", mergeFlow(1, 7)}, {"row", mergeFlow(1, 0)}, {"end", nil}},
		want:    map[string]string{"1": entryText(mergeFlow(1, 7))},
		changes: []string{"updated/false/1"},
	},
	{
		name:    "dump fills in what the event left out",
		steps:   []mergeStep{{"dump", nil}, {"event", mergeFlow(1, 7)}, {"row", withLabels(mergeFlow(1, 0), 4)}, {"end", nil}},
		want:    map[string]string{"1": entryText(withLabels(mergeFlow(1, 7), 4))},
		changes: []string{"added/false/1", "updated/true/1"},
	},
	{
		name:    "event labels win over the dump's",
		steps:   []mergeStep{{"dump", nil}, {"event", withLabels(mergeFlow(1, 7), 2)}, {"row", withLabels(mergeFlow(1, 0), 4)}, {"end", nil}},
		want:    map[string]string{"1": entryText(withLabels(mergeFlow(1, 7), 2))},
		changes: []string{"added/false/1"},
	},
	{
		name:    "event of a flow the dump missed keeps it",
		before:  []*Entry{mergeFlow(1, 0)},
		steps:   []mergeStep{{"dump", nil}, {"event", mergeFlow(1, 2)}, {"end", nil}},
		want:    map[string]string{"1": entryText(mergeFlow(1, 2))},
		changes: []string{"updated/false/1"},
	},
	{
		name:    "update keeps the labels it does not carry",
		before:  []*Entry{withLabels(mergeFlow(1, 0), 8)},
		steps:   []mergeStep{{"event", mergeFlow(1, 2)}},
		want:    map[string]string{"1": entryText(withLabels(mergeFlow(1, 2), 8))},
		changes: []string{"updated/false/1"},
	},
	{
		name:    "flows that share an id stay apart",
		before:  []*Entry{mergeFlow(1, 0), mergeTwin(1, 0)},
		steps:   []mergeStep{{"event", mergeTwin(1, 5)}, {"destroy", mergeFlow(1, 0)}},
		want:    map[string]string{"1001": entryText(mergeTwin(1, 5))},
		changes: []string{"updated/false/1001", "removed/false/1"},
	},
	{
		name:    "a destroy during the dump blocks only its own flow",
		before:  []*Entry{mergeFlow(1, 0)},
		steps:   []mergeStep{{"dump", nil}, {"destroy", mergeFlow(1, 0)}, {"row", mergeFlow(1, 0)}, {"row", mergeTwin(1, 0)}, {"end", nil}},
		want:    map[string]string{"1001": entryText(mergeTwin(1, 0))},
		changes: []string{"removed/false/1", "added/true/1001"},
	},
	{
		name:    "the sweep removes one of two flows that share an id",
		before:  []*Entry{mergeFlow(1, 0), mergeTwin(1, 0), mergeFlow(2, 0)},
		steps:   []mergeStep{{"dump", nil}, {"row", mergeFlow(2, 0)}, {"row", mergeTwin(1, 0)}, {"end", nil}},
		want:    map[string]string{"2": entryText(mergeFlow(2, 0)), "1001": entryText(mergeTwin(1, 0))},
		changes: []string{"removed/true/1"},
	},
}

// runMerge applies steps to m.
func runMerge(m *Mirror, steps []mergeStep) {
	for _, s := range steps {
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
}

// TestMirrorMerge drives the merge of dumps and events directly, without a
// kernel, through the orders the documentation describes.
func TestMirrorMerge(t *testing.T) {
	for _, tt := range mergeCases {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			m := newMirror(Config{OnChange: func(c Change) {
				got = append(got, fmt.Sprintf("%v/%v/%d", c.Kind, c.Synthetic, c.Entry.Orig().Proto.SrcPort))
			}})
			m.events = 1
			m.gen = 1
			m.window = true
			for _, e := range tt.before {
				m.fromDump(e, 1, true)
			}
			m.window = false
			got = nil
			runMerge(m, tt.steps)
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
	m := newMirror(Config{})
	want := map[ctnetlink.EntryKey]Entry{}
	check := func(step int) {
		t.Helper()
		if len(m.tab.slots) != len(want) {
			t.Fatalf("step %d: %d slots, want %d", step, len(m.tab.slots), len(want))
		}
		seen := 0
		for id, head := range m.tab.index {
			for j := head; j >= 0; j = m.tab.slots[j].next {
				if m.tab.slots[j].ID() != id {
					t.Fatalf("step %d: slot %d with id %d in the chain of id %d", step, j, m.tab.slots[j].ID(), id)
				}
				seen++
			}
		}
		if seen != len(m.tab.slots) {
			t.Fatalf("step %d: chains reach %d slots of %d", step, seen, len(m.tab.slots))
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
		i := m.tab.find(&e)
		if _, ok := want[e.Key()]; ok != (i >= 0) {
			t.Fatalf("step %d: find %v, want present %v", step, i, ok)
		}
		switch {
		case i >= 0 && r.Intn(2) == 0:
			m.removeLocked(i)
			delete(want, e.Key())
		case i < 0:
			m.tab.insert(&e)
			want[e.Key()] = e
		}
		check(step)
	}
	// Grow, empty most of it and shrink: the chains are rebuilt.
	for port := 64; port < 8000; port++ {
		e := entry(port)
		m.tab.insert(&e)
		want[e.Key()] = e
	}
	for port := 64; port < 7500; port++ {
		e := entry(port)
		m.removeLocked(m.tab.find(&e))
		delete(want, e.Key())
	}
	c := cap(m.tab.slots)
	m.shrink()
	if cap(m.tab.slots) >= c {
		t.Errorf("capacity %d after shrink, %d before", cap(m.tab.slots), c)
	}
	check(-1)
	if got := len(m.ByID(3)); got < 2 {
		t.Errorf("ByID(3) returned %d entries, want the flows that share id 3", got)
	}
}

// TestMirrorEventError checks that an event the mirror cannot decode
// reaches the caller through Stats, not only a counter, and schedules a
// resynchronisation.
func TestMirrorEventError(t *testing.T) {
	m := newMirror(withDefaults(&Config{ResyncBackoff: time.Hour, MaxResyncBackoff: 2 * time.Hour}))
	m.events, m.lastEnd = 1, time.Now()
	bad := &ctnetlink.Error{Op: "events", Err: errors.New("update: tuple-orig: want 4 bytes, got 5")}
	if !m.handle(&record{kind: recordBad, err: bad}) {
		t.Fatal("a decode error stopped the mirror")
	}
	st := m.Stats()
	if st.LastEventError != bad || st.DecodeErrors != 1 || !st.Pending {
		t.Errorf("stats %+v, want LastEventError %v, 1 decode error and a pending resynchronisation", st, bad)
	}
}
