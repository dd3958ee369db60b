package ctnetlink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// floodResult is what a flood test saw.
type floodResult struct {
	events    int // every event yielded
	news      int // EventNew of flood flows
	destroys  int // EventDestroy of flood flows
	lost      int // ErrEventsLost yielded
	afterLoss int // events yielded after the first ErrEventsLost
	markers   int // marker flows created
}

// flood creates and deletes n flows with workers goroutines while the
// Listener is read on the test goroutine, then creates marker flows until
// the listener sees one, which shows that the stream goes on after any
// loss. It then reads what is left and returns the counts.
func flood(t *testing.T, c *Conn, l *Listener, n, workers int) floodResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var res floodResult
	seenMarker := make(chan struct{})
	markers := startFlood(ctx, t, c, n, workers, &res, seenMarker)

	marker := false
	handle := func(ev *Event, err error) {
		switch {
		case errors.Is(err, ErrEventsLost):
			if !errors.Is(err, unix.ENOBUFS) {
				t.Errorf("overrun error %v does not match unix.ENOBUFS", err)
			}
			res.lost++
		case err != nil:
			t.Errorf("events: %v", err)
		default:
			res.events++
			if res.lost > 0 {
				res.afterLoss++
			}
			switch src := ev.Flow.TupleOrig.Src().String(); {
			case src == "10.9.9.9" && !marker:
				marker = true
				close(seenMarker)
			case src == "10.0.0.1" && ev.Type == EventNew:
				res.news++
			case src == "10.0.0.1" && ev.Type == EventDestroy:
				res.destroys++
			}
		}
	}
	var failed error
	for ev, err := range l.Events(ctx) {
		if errors.Is(err, context.DeadlineExceeded) {
			failed = err
			break
		}
		handle(ev, err)
		// Stop once a marker was seen and every overrun read was yielded.
		if marker && uint64(res.lost) == l.Overruns() {
			break
		}
	}
	if failed != nil {
		cancel()
		markers.Wait()
		t.Fatalf("no marker event after %d events, %d losses: %v", res.events, res.lost, failed)
	}
	markers.Wait()
	// Nothing generates events any more: read what is queued.
	readIdle(t, l, 300*time.Millisecond, 30*time.Second, func(ev *Event, err error) bool {
		handle(ev, err)
		return true
	})
	return res
}

// checkFlood checks the flood's accounting: every event arrived, or the
// loss was reported, and the kernel's drop counter makes up the difference
// exactly.
func checkFlood(t *testing.T, l *Listener, n int, res floodResult) {
	t.Helper()
	dropped, err := l.Dropped()
	if err != nil {
		t.Fatalf("dropped: %v", err)
	}
	t.Logf("%d flows created and deleted: %d NEW, %d DESTROY seen; %d events in all, %d after the first loss; "+
		"%d overruns reported, %d events dropped by the kernel; receive buffer %d bytes",
		n, res.news, res.destroys, res.events, res.afterLoss, l.Overruns(), dropped, l.ReadBuffer())
	if uint64(res.lost) != l.Overruns() {
		t.Errorf("ErrEventsLost yielded %d times, Overruns() = %d", res.lost, l.Overruns())
	}
	if res.news+res.destroys < 2*n && (res.lost == 0 || l.Overruns() == 0) {
		t.Errorf("%d of %d flood events arrived and no loss was reported", res.news+res.destroys, 2*n)
	}
	if res.lost > 0 && res.afterLoss == 0 {
		t.Errorf("no event arrived after the overrun")
	}
	if got, want := res.events+int(dropped), 2*n+res.markers; got != want {
		t.Errorf("events seen (%d) + dropped (%d) = %d, want %d generated", res.events, dropped, got, want)
	}
}

// TestKernelEventsOverrun overruns a tiny receive buffer on purpose: a
// burst of flows is created while nobody reads, so the kernel drops most of
// their events. Reading must then yield the events still queued and
// ErrEventsLost, and the stream must go on: a flow created after the loss
// arrives. Every event is either yielded or counted as dropped by the
// kernel.
func TestKernelEventsOverrun(t *testing.T) {
	ns, c := dialNS(t)
	ns.Sysctl(t, "net.netfilter.nf_conntrack_events", "1")
	l := listenNS(t, ns, ListenConfig{Groups: []Group{GroupNew}, ReadBuffer: 4096})
	ctx := ctx(t)
	const n = 1000
	burst := make([]Flow, n)
	for i := range burst {
		burst[i] = *flowAt("10.0.0.1", i)
	}
	if res, err := c.CreateMany(ctx, burst); err != nil || res.Done != n {
		t.Fatalf("create: %+v %v", res, err)
	}
	marker := flowAt("10.9.9.9", 0)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var seen, lost, afterLoss int
	markerSeen := false
	for ev, err := range l.Events(rctx) {
		switch {
		case errors.Is(err, ErrEventsLost):
			if !errors.Is(err, unix.ENOBUFS) {
				t.Errorf("overrun error %v does not match unix.ENOBUFS", err)
			}
			if lost++; lost == 1 {
				if err := c.Create(ctx, marker); err != nil {
					t.Fatalf("create marker: %v", err)
				}
			}
			continue
		case err != nil:
			t.Fatalf("events after %d events and %d losses: %v", seen, lost, err)
		}
		if lost > 0 {
			afterLoss++
		}
		if ev.Flow.TupleOrig.Src() == marker.TupleOrig.Src() {
			markerSeen = true
			break
		}
		if lost > 0 {
			t.Errorf("event of burst flow %v after ErrEventsLost: the error must follow the events queued before the loss", ev.Flow.TupleOrig.Src())
		}
		seen++
	}
	dropped, err := l.Dropped()
	if err != nil {
		t.Fatalf("dropped: %v", err)
	}
	t.Logf("%d flows created unread: %d events yielded, %d dropped by the kernel; %d overruns yielded, %d events after the first; receive buffer %d bytes",
		n, seen, dropped, lost, afterLoss, l.ReadBuffer())
	if lost == 0 {
		t.Fatalf("no ErrEventsLost after %d events of a burst of %d into a %d-byte buffer", seen, n, l.ReadBuffer())
	}
	if !markerSeen {
		t.Errorf("the flow created after the overrun has no event: the stream did not go on")
	}
	if uint64(lost) != l.Overruns() {
		t.Errorf("ErrEventsLost yielded %d times, Overruns() = %d", lost, l.Overruns())
	}
	if seen == n {
		t.Errorf("all %d events arrived although an overrun was reported", n)
	}
	if got := seen + int(dropped); got != n {
		t.Errorf("events yielded (%d) + dropped (%d) = %d, want the %d generated", seen, dropped, got, n)
	}
}

// TestKernelEventsFlood creates and deletes many flows with the default
// buffer: every event arrives, or the loss is reported.
func TestKernelEventsFlood(t *testing.T) {
	ns, c := dialNS(t)
	l := listenNS(t, ns, ListenConfig{})
	n := 20000
	if testing.Short() {
		n = 2000
	}
	res := flood(t, c, l, n, 4)
	checkFlood(t, l, n, res)
}

// TestKernelEventsReliableDestroy deletes many flows while nobody reads a
// small buffer, then counts the DESTROY events that arrive, with and
// without ReliableDestroy.
func TestKernelEventsReliableDestroy(t *testing.T) {
	const n = 2000
	for _, reliable := range []bool{false, true} {
		t.Run(fmt.Sprintf("reliable=%v", reliable), func(t *testing.T) {
			ns, c := dialNS(t)
			l := listenNS(t, ns, ListenConfig{Groups: []Group{GroupDestroy}, ReadBuffer: 16 << 10, ReliableDestroy: reliable})
			ctx := ctx(t)
			for i := range n {
				if err := c.Create(ctx, flowAt("10.0.0.1", i)); err != nil {
					t.Fatalf("create: %v", err)
				}
			}
			start := time.Now()
			for i := range n {
				if err := c.Delete(ctx, flowAt("10.0.0.1", i)); err != nil {
					t.Fatalf("delete: %v", err)
				}
			}
			seen := map[uint16]int{}
			var lost int
			var last time.Duration
			readIdle(t, l, 2*time.Second, 60*time.Second, func(ev *Event, err error) bool {
				switch {
				case errors.Is(err, ErrEventsLost):
					lost++
				case err != nil:
					t.Errorf("events: %v", err)
				case ev.Type != EventDestroy:
					t.Errorf("unexpected %v event", ev.Type)
				default:
					seen[ev.Flow.TupleOrig.Proto.SrcPort]++
					last = time.Since(start)
				}
				return len(seen) < n
			})
			dups := 0
			for _, k := range seen {
				dups += k - 1
			}
			dropped, err := l.Dropped()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("reliable=%v: %d flows deleted, %d DESTROY events received (%d duplicates), last after %v; "+
				"%d overruns reported, %d drops counted by the kernel; receive buffer %d bytes",
				reliable, n, len(seen), dups, last.Round(time.Millisecond), lost, dropped, l.ReadBuffer())
			if reliable {
				if lost != 0 || l.Overruns() != 0 {
					t.Errorf("overruns reported with NETLINK_NO_ENOBUFS: %d yielded, Overruns() = %d", lost, l.Overruns())
				}
				if len(seen) != n {
					t.Errorf("%d of %d DESTROY events arrived with ReliableDestroy", len(seen), n)
				}
			} else if len(seen) < n && lost == 0 {
				t.Errorf("%d of %d DESTROY events arrived and no loss was reported", len(seen), n)
			}
			// The kernel frees a flow once its DESTROY was delivered.
			var entries uint32
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				st, err := c.Stats(ctx)
				if err != nil {
					t.Fatalf("stats: %v", err)
				}
				if entries = st.Entries; entries == 0 || time.Now().After(deadline) {
					break
				}
			}
			if entries != 0 {
				t.Errorf("%d flows still counted after the events", entries)
			}
		})
	}
}

// startFlood starts workers goroutines that create and delete n flows,
// and one that then creates marker flows, counted in res.markers, until
// seenMarker is closed. The returned group is done when that one returns.
func startFlood(ctx context.Context, t *testing.T, c *Conn, n, workers int, res *floodResult, seenMarker <-chan struct{}) *sync.WaitGroup {
	markers := new(sync.WaitGroup)
	markers.Add(1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				f := flowAt("10.0.0.1", i)
				if err := c.Create(ctx, f); err != nil {
					t.Errorf("create %d: %v", i, err)
					return
				}
				if err := c.Delete(ctx, f); err != nil {
					t.Errorf("delete %d: %v", i, err)
					return
				}
			}
		}()
	}
	go func() {
		defer markers.Done()
		wg.Wait()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := c.Create(ctx, flowAt("10.9.9.9", res.markers)); err != nil {
				t.Errorf("create marker: %v", err)
				return
			}
			res.markers++
			select {
			case <-seenMarker:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return markers
}
