package ctnetlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctspec/ctspec/internal/nstest"
)

// TestKernelEventsCancel checks that cancelling the context or closing the
// Listener ends an idle loop promptly, and that a Listener outlives a
// finished loop.
func TestKernelEventsCancel(t *testing.T) {
	ns, c := dialNS(t)
	l := listenNS(t, ns, ListenConfig{})

	end := func(ctx context.Context, stop func()) (time.Duration, error) { return loopEnd(ctx, t, l, stop) }

	cctx, cancel := context.WithCancel(context.Background())
	d, err := end(cctx, cancel)
	if !errors.Is(err, context.Canceled) || d > 2*time.Second {
		t.Errorf("cancel: got %v after %v, want context.Canceled at once", err, d)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer dcancel()
	d, err = end(dctx, nil)
	if !errors.Is(err, context.DeadlineExceeded) || d > 2*time.Second {
		t.Errorf("deadline: got %v after %v, want context.DeadlineExceeded at once", err, d)
	}

	// A new loop after cancelled ones receives events.
	ctx := ctx(t)
	f := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)
	if err := c.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	for ev, err := range l.Events(ctx) {
		if err != nil || ev.Type != EventNew {
			t.Fatalf("after cancel: got %v, %v, want a new event", ev, err)
		}
		break
	}

	if err := c.Delete(ctx, f); err != nil {
		t.Fatal(err)
	}
	// Only one loop runs at a time.
	checkOneLoop(ctx, t, l)

	d, err = end(context.Background(), func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	var ce *Error
	if !errors.Is(err, net.ErrClosed) || !errors.As(err, &ce) || d > 2*time.Second {
		t.Errorf("close: got %v after %v, want net.ErrClosed at once", err, d)
	}
	_, err = end(context.Background(), nil)
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("events after close: got %v, want net.ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := l.Dropped(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("dropped after close: got %v, want net.ErrClosed", err)
	}
}

// TestKernelEventsCloseRace closes Listeners while their loops receive.
func TestKernelEventsCloseRace(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f := flowAt("10.0.0.1", i%1000)
			if err := c.Create(ctx, f); err == nil {
				c.Delete(ctx, f)
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for range 20 {
		l := listenNS(t, ns, ListenConfig{})
		go func() {
			time.Sleep(5 * time.Millisecond)
			l.Close()
		}()
		var last error
		for _, err := range l.Events(ctx) {
			if err != nil && !errors.Is(err, ErrEventsLost) {
				last = err
			}
		}
		if !errors.Is(last, net.ErrClosed) {
			t.Fatalf("loop ended with %v, want net.ErrClosed", last)
		}
	}
}

// exampleEvents prints the flow events of the network namespace netns to w
// until ctx ends.
func exampleEvents(ctx context.Context, netns int, w io.Writer) error {
	l, err := Listen(&ListenConfig{
		NetNS:  netns,
		Groups: []Group{GroupNew, GroupDestroy},
	})
	if err != nil {
		return err
	}
	defer l.Close()
	for ev, err := range l.Events(ctx) {
		switch {
		case errors.Is(err, ErrEventsLost):
			log.Printf("events lost (%d overruns so far): resynchronise with a dump", l.Overruns())
		case err != nil && ctx.Err() == nil:
			// A decode error skips one message; a closed Listener
			// ends the loop.
			log.Print(err)
		case err == nil:
			fmt.Fprintf(w, "%v %v\n", ev.Type, tupleString(&ev.Flow.TupleOrig))
		}
	}
	return ctx.Err()
}

// ExampleListener_Events prints the flow events of the caller's network
// namespace until interrupted.
func ExampleListener_Events() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := exampleEvents(ctx, 0, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// TestExampleEvents runs the example's code in a namespace.
func TestExampleEvents(t *testing.T) {
	ns, c := dialNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out nstest.Buffer
	done := make(chan error, 1)
	go func() { done <- exampleEvents(ctx, ns.FD(), &out) }()
	waitSubscribers(t, ns, 1)
	f := testFlow("192.0.2.1", "192.0.2.2", 1, 2)
	if err := c.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, f); err != nil {
		t.Fatal(err)
	}
	want := "new 192.0.2.1:1->192.0.2.2:2\ndestroy 192.0.2.1:1->192.0.2.2:2\n"
	for deadline := time.Now().Add(10 * time.Second); out.String() != want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("example: %v", err)
	}
	if got := out.String(); got != want {
		t.Errorf("example printed %q, want %q", got, want)
	}
}

// TestKernelEventsForeignUnbind checks that with nf_conntrack_events=2 a
// flow created while a Listener of its namespace is open has events,
// whatever listeners of other namespaces do. The kernel keeps one
// host-wide "has listener" bit per group (nf_ctnetlink_has_listener, Linux
// 6.3 and later), set by nfnetlink_bind and cleared by nfnetlink_unbind
// when netlink_has_listeners finds no socket left in the group. That
// count covers the sockets of every namespace, so a listener that comes
// and goes elsewhere cannot clear the bit while this one listens, and
// flows created meanwhile keep their events. Mirror relies on it: only
// flows of its initial dump count as silent.
func TestKernelEventsForeignUnbind(t *testing.T) {
	auto, cauto := dialNS(t)
	all, call := dialNS(t)
	other := nstest.New(t)
	auto.Sysctl(t, "net.netfilter.nf_conntrack_events", "2")
	all.Sysctl(t, "net.netfilter.nf_conntrack_events", "1")
	lauto := listenNS(t, auto, ListenConfig{Groups: []Group{GroupNew}})
	lall := listenNS(t, all, ListenConfig{Groups: []Group{GroupNew}})
	ctx := ctx(t)

	// seen reads l until the NEW of the flow with source port port arrives
	// or nothing arrived for a while.
	seen := func(l *Listener, port uint16) bool {
		got := false
		readIdle(t, l, 2*time.Second, 10*time.Second, func(ev *Event, err error) bool {
			if err != nil {
				t.Errorf("events: %v", err)
				return true
			}
			got = got || ev.Flow.TupleOrig.Proto.SrcPort == port
			return !got
		})
		return got
	}
	for i := range 20 {
		// A listener of every group that comes and goes in a third
		// namespace, as conntrack -E does.
		lo, err := Listen(&ListenConfig{NetNS: other.FD()})
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		if err := lo.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		f := flowAt("10.0.0.1", i)
		port := f.TupleOrig.Proto.SrcPort
		if err := cauto.Create(ctx, f); err != nil {
			t.Fatalf("create: %v", err)
		}
		if err := call.Create(ctx, f); err != nil {
			t.Fatalf("create: %v", err)
		}
		if !seen(lall, port) {
			t.Errorf("try %d: no NEW event with nf_conntrack_events=1", i)
		}
		if !seen(lauto, port) {
			t.Errorf("try %d: no NEW event with nf_conntrack_events=2 and a listener open", i)
		}
	}
}

// loopEnd runs an Events loop on l that must end with one error and no
// event, calling stop after 100 ms if it is not nil, and returns how long
// the loop ran and its error.
func loopEnd(ctx context.Context, t *testing.T, l *Listener, stop func()) (time.Duration, error) {
	t.Helper()
	if stop != nil {
		time.AfterFunc(100*time.Millisecond, stop)
	}
	start := time.Now()
	var last error
	n := 0
	for ev, err := range l.Events(ctx) {
		n++
		if ev != nil {
			t.Errorf("unexpected %v event", ev.Type)
		}
		last = err
	}
	if n != 1 {
		t.Errorf("loop yielded %d values, want one error", n)
	}
	return time.Since(start), last
}

// checkOneLoop checks that a second Events loop, started inside a running
// one that has a destroy event to yield, fails at once.
func checkOneLoop(ctx context.Context, t *testing.T, l *Listener) {
	t.Helper()
	for ev, err := range l.Events(ctx) {
		if err != nil || ev.Type != EventDestroy {
			t.Fatalf("outer loop: got %v, %v, want a destroy event", ev, err)
		}
		n := 0
		for _, err := range l.Events(ctx) {
			n++
			if !strings.Contains(fmt.Sprint(err), "another Events loop") {
				t.Errorf("second loop: got %v", err)
			}
		}
		if n != 1 {
			t.Errorf("second loop yielded %d values, want one error", n)
		}
		break
	}
}
