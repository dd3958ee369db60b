package mirror

import (
	"context"
	"errors"
	"math/rand"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// relabel returns updates that give every third flow of table a new mark
// and every sixth a new label.
func relabel(table []ctnetlink.Flow) []ctnetlink.Flow {
	var upd []ctnetlink.Flow
	for i := 0; i < len(table); i += 3 {
		var u ctnetlink.Flow
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
	return upd
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
	m := startMirror(t, ns, Config{OnChange: onChange})
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
	if res, err := c.UpdateMany(ctx, relabel(table)); err != nil || len(res.Errors) > 0 {
		t.Fatalf("update: %v %d errors, first %v", err, len(res.Errors), res.Errors[:min(1, len(res.Errors))])
	}
	// Delete every fourth flow, then flush a mark.
	var del []ctnetlink.Flow
	for i := 0; i < len(table); i += 4 {
		del = append(del, table[i])
	}
	if res, err := c.DeleteMany(ctx, del); err != nil || len(res.Errors) > 0 {
		t.Fatalf("delete: %+v %v", res, err)
	}
	if err := c.Flush(ctx, &ctnetlink.Selector{Mark: ctnetlink.Is(ctnetlink.MarkMatch{Mark: 1, Mask: 0xff})}); err != nil {
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
	m := startMirror(t, ns, Config{OnChange: cons.apply})
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
				var u ctnetlink.Flow
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
	filter := &ctnetlink.Selector{Mark: ctnetlink.Is(ctnetlink.MarkMatch{Mark: 1})}
	cons := newConsumer()
	m := startMirror(t, ns, Config{Filter: filter, OnChange: cons.apply})
	if m.Len() != 50 {
		t.Fatalf("%d flows with mark 1, want 50", m.Len())
	}
	if res, err := c.CreateMany(ctx, flows[200:]); err != nil || res.Done != 200 {
		t.Fatalf("create: %+v %v", res, err)
	}
	// Move mark 1 to 2 and mark 3 to 1.
	var upd []ctnetlink.Flow
	for i := range flows {
		var u ctnetlink.Flow
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
	m := startMirror(t, ns, Config{OnChange: cons.apply, ResyncInterval: 200 * time.Millisecond})
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
		base := settledGoroutines()
		m, err := New(ctx, &Config{NetNS: ns.FD()})
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
		base := settledGoroutines()
		cctx, cancel := context.WithCancel(ctx)
		m, err := New(cctx, &Config{NetNS: ns.FD()})
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
		base := settledGoroutines()
		cctx, cancel := context.WithCancel(ctx)
		var once sync.Once
		_, err := New(cctx, &Config{NetNS: ns.FD(), OnChange: func(Change) { once.Do(cancel) }})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("NewMirror: %v, want context.Canceled", err)
		}
		if got := goroutines(base); got > base {
			t.Errorf("%d goroutines after a failed NewMirror, %d before", got, base)
		}
	})
}

// TestKernelMirrorDropCheckError checks that with ReliableDestroy a
// failure to read the kernel's drop counter reaches the caller and makes
// the mirror resynchronise, since losses could not be seen.
func TestKernelMirrorDropCheckError(t *testing.T) {
	ns, _ := dialNS(t)
	l, err := ctnetlink.Listen(&ctnetlink.ListenConfig{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	m := newMirror(withDefaults(&Config{ReliableDestroy: true, ResyncBackoff: time.Hour, MaxResyncBackoff: 2 * time.Hour}))
	m.events, m.l, m.lastEnd, m.dropsKnown = 1, l, time.Now(), true
	if !m.tick(context.Background(), time.Now()) {
		t.Fatal("tick stopped the mirror")
	}
	st := m.Stats()
	if !errors.Is(st.LastEventError, net.ErrClosed) || !st.Pending {
		t.Errorf("stats %+v, want LastEventError matching net.ErrClosed and a pending resynchronisation", st)
	}
}
