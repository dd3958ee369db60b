package mirror

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ctspec/ctspec/ctnetlink"
)

// activityText lists what Collect returned, sorted, one flow per line.
func activityText(as []Activity) []string {
	out := []string{}
	for _, a := range as {
		o := a.Entry.Orig()
		out = append(out, fmt.Sprintf("%v ended=%v mark=%d", o.Src(), a.Ended, a.Entry.Mark()))
	}
	slices.Sort(out)
	return out
}

// TestKernelCollector checks, in a namespace, that Collect reports a flow
// that opened and closed between two calls once, an open flow again only
// when it was active since the previous call, and nothing else.
func TestKernelCollector(t *testing.T) {
	ns, c := dialNS(t)
	ns.Sysctl(t, "net.netfilter.nf_conntrack_events", "1")
	ctx := ctx(t)
	flows := manyFlows(6) // from 10.0.0.0 to 10.0.0.5, marks 0 to 3 in turn
	idle, busy, brief, marker1, marker2 := &flows[1], &flows[2], &flows[3], &flows[4], &flows[5]
	for _, f := range []*ctnetlink.Flow{idle, busy} {
		if err := c.Create(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	cons := newConsumer()
	m := startMirror(t, ns, Config{OnChange: cons.apply})
	col := m.NewCollector(0)
	defer col.Close()
	collect := func(want ...string) {
		t.Helper()
		if diff := cmp.Diff(append([]string{}, want...), activityText(col.Collect())); diff != "" {
			t.Errorf("collect (-want +got):\n%s", diff)
		}
	}
	collect("10.0.0.1 ended=false mark=1", "10.0.0.2 ended=false mark=2")

	// A flow that opens and closes, an update of busy, and a marker: once
	// OnChange has seen the marker, the collector has seen the rest, as
	// the mirror applies events in order and notes each change before
	// OnChange runs.
	if err := c.Create(ctx, brief); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, brief); err != nil {
		t.Fatal(err)
	}
	setMark(t, c, busy, 5)
	if err := c.Create(ctx, marker1); err != nil {
		t.Fatal(err)
	}
	waitSeen(t, cons, marker1.TupleOrig.Src(), 10*time.Second)
	collect("10.0.0.2 ended=false mark=5", "10.0.0.3 ended=true mark=3", "10.0.0.4 ended=false mark=0")

	// Nothing happened since: nothing to report.
	collect()

	// Now idle is active, busy is not.
	setMark(t, c, idle, 9)
	if err := c.Create(ctx, marker2); err != nil {
		t.Fatal(err)
	}
	waitSeen(t, cons, marker2.TupleOrig.Src(), 10*time.Second)
	collect("10.0.0.1 ended=false mark=9", "10.0.0.5 ended=false mark=1")
	if n := col.Dropped(); n != 0 {
		t.Errorf("%d ended flows dropped", n)
	}
}

// setMark sets the mark of flow f in the kernel.
func setMark(t *testing.T, c *ctnetlink.Conn, f *ctnetlink.Flow, mark uint32) {
	t.Helper()
	var u ctnetlink.Flow
	u.SetTupleOrig(f.TupleOrig)
	u.SetMark(mark)
	if err := c.Update(ctx(t), &u); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// TestCollectorNotes drives a Collector through the mirror's merge
// without a kernel: traffic a dump finds counts as activity, a timeout
// alone does not, and ended flows beyond maxEnded are counted, not kept.
func TestCollectorNotes(t *testing.T) {
	entry := func(port uint16, packets uint64, timeout uint32) *Entry {
		f := testFlow("192.0.2.1", "192.0.2.2", port, 80)
		f.SetID(uint32(port))
		f.SetTimeout(timeout)
		f.CountersOrig.SetPackets(packets)
		f.CountersOrig.SetBytes(packets * 100)
		var e Entry
		e.setFlow(f)
		return &e
	}
	ports := func(as []Activity) []string {
		out := []string{}
		for _, a := range as {
			o := a.Entry.Orig()
			out = append(out, fmt.Sprintf("%d/%v", o.Proto.SrcPort, a.Ended))
		}
		slices.Sort(out)
		return out
	}
	m := newMirror(Config{})
	m.events = 1
	for p := uint16(1); p <= 3; p++ {
		m.fromDump(entry(p, 1, 100), m.gen, true)
	}
	col := m.NewCollector(2)
	if diff := cmp.Diff([]string{"1/false", "2/false", "3/false"}, ports(col.Collect())); diff != "" {
		t.Errorf("first collect (-want +got):\n%s", diff)
	}
	// A dump: flow 1 had traffic, flow 2 only a new timeout, flow 3 the
	// same values.
	m.gen++
	m.fromDump(entry(1, 2, 100), m.gen, false)
	m.fromDump(entry(2, 1, 50), m.gen, false)
	m.fromDump(entry(3, 1, 100), m.gen, false)
	if diff := cmp.Diff([]string{"1/false"}, ports(col.Collect())); diff != "" {
		t.Errorf("after a dump (-want +got):\n%s", diff)
	}
	// Three flows end and one opens and ends: two ended are kept.
	for p := uint16(1); p <= 3; p++ {
		m.destroy(entry(p, 5, 0), true)
	}
	m.upsert(entry(4, 0, 100))
	m.destroy(entry(4, 0, 0), true)
	if got := ports(col.Collect()); len(got) != 2 || col.Dropped() != 2 {
		t.Errorf("collect %v, %d dropped; want 2 ended flows kept and 2 dropped", got, col.Dropped())
	}
	col.Close()
	m.upsert(entry(5, 0, 100))
	if got := col.Collect(); len(got) != 0 {
		t.Errorf("a closed collector collected %v", activityText(got))
	}
}
