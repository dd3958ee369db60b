package mirror

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// dumpState dumps the flows filter selects.
func dumpState(t *testing.T, c *ctnetlink.Conn, filter *ctnetlink.Selector) map[ctnetlink.EntryKey]string {
	t.Helper()
	out := map[ctnetlink.EntryKey]string{}
	for f, err := range c.Dump(context.Background(), filter) {
		if err != nil {
			t.Fatalf("dump: %v", err)
		}
		out[ctnetlink.KeyOf(f)] = flowState(f)
	}
	return out
}

func mirrorState(m *Mirror) map[ctnetlink.EntryKey]string {
	out := map[ctnetlink.EntryKey]string{}
	for e := range m.Range {
		if _, dup := out[e.Key()]; dup {
			out[ctnetlink.EntryKey{}] += "duplicate " + entryText(e)
		}
		out[e.Key()] = entryText(e)
	}
	return out
}

// consumer applies a Mirror's changes to a map of its own and checks that
// each flow's changes come in lifecycle order.
type consumer struct {
	mu        sync.Mutex
	flows     map[ctnetlink.EntryKey]Entry
	history   map[ctnetlink.EntryKey][]ChangeKind
	synthetic [ChangeRemoved + 1]int
	events    [ChangeRemoved + 1]int
	errs      []string
}

func newConsumer() *consumer {
	return &consumer{flows: map[ctnetlink.EntryKey]Entry{}, history: map[ctnetlink.EntryKey][]ChangeKind{}}
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

func (c *consumer) state() map[ctnetlink.EntryKey]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[ctnetlink.EntryKey]string{}
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
func startMirror(t *testing.T, ns *nstest.NS, cfg Config) *Mirror {
	t.Helper()
	cfg.NetNS = ns.FD()
	m, err := New(context.Background(), &cfg)
	if err != nil {
		t.Fatalf("new mirror: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// waitConverged waits until the table is quiet and the mirror, and the
// consumer if not nil, equal a fresh dump flow for flow.
func waitConverged(t *testing.T, m *Mirror, c *ctnetlink.Conn, filter *ctnetlink.Selector, cons *consumer, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var diff string
	for {
		if !m.Stats().Pending {
			want := dumpState(t, c, filter)
			got := mirrorState(m)
			var cgot map[ctnetlink.EntryKey]string
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

// goroutines waits for the number of goroutines to drop to at most n and
// returns it.
// settledGoroutines returns the number of goroutines once it has stayed
// the same for 60 ms: goroutines that calls before leave to finish on
// their own (a context watcher, say) are not counted as a base.
func settledGoroutines() int {
	n, same := runtime.NumGoroutine(), 0
	for deadline := time.Now().Add(3 * time.Second); same < 3 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			same++
		} else {
			n, same = m, 0
		}
	}
	return n
}

func goroutines(n int) int {
	var got int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got = runtime.NumGoroutine(); got <= n || time.Now().After(deadline) {
			return got
		}
	}
}

// seenFlows returns the original source addresses of the flows the
// consumer has seen a change of, with how many changes each had.
func (c *consumer) seenFlows() map[netip.Addr][]ChangeKind {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[netip.Addr][]ChangeKind{}
	for k, h := range c.history {
		out[k.Src()] = append(out[k.Src()], h...)
	}
	return out
}
