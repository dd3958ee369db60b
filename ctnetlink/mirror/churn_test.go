package mirror

import (
	"context"
	"math/rand"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

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
func churn(t *testing.T, c *ctnetlink.Conn, flows []ctnetlink.Flow, workers int) int {
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
				var upd, del []ctnetlink.Flow
				kept := 0
				for i := range part {
					if i%3 == 0 {
						var u ctnetlink.Flow
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

// readWhileRunning reads m from another goroutine, checking what Get
// returns, until the function it returns is called.
func readWhileRunning(t *testing.T, m *Mirror) (stop func()) {
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			var keys []ctnetlink.EntryKey
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
	return func() {
		close(done)
		readers.Wait()
	}
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
			m := startMirror(t, ns, Config{
				ReadBuffer:       64 << 10,
				ReliableDestroy:  tt.reliable,
				OnChange:         cons.apply,
				MaxResyncBackoff: 500 * time.Millisecond,
			})
			// Readers on other goroutines meanwhile.
			stop := readWhileRunning(t, m)
			start := time.Now()
			left := churn(t, c, manyFlows(tt.n), 4)
			churned := time.Since(start)
			stop()
			// Events queued before a resync's dump can still arrive after
			// it, and destroy events the kernel re-delivers arrive late:
			// the mirror may briefly hold a flow that is gone, and then
			// repairs itself. Wait until it agrees with the kernel and
			// holds the churn's survivors with no repair pending.
			var st Stats
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

// BenchmarkMirror250k mirrors a table of 250,000 flows: the heap the
// mirror takes per flow (B/flow), how long the initial dump takes, and how
// long a resynchronisation of the unchanged table takes (ns/op).
func BenchmarkMirror250k(b *testing.B) {
	const n = 250000
	ns := nstest.New(b)
	c, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: ns.FD()})
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
	m, err := New(ctx, &Config{NetNS: ns.FD()})
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
	m := startMirror(t, ns, Config{
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
