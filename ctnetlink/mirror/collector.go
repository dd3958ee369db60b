package mirror

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ctspec/ctspec/ctnetlink"
)

// DefaultMaxEnded is how many ended flows a Collector keeps until Collect
// reports them when NewCollector is given 0.
const DefaultMaxEnded = 1 << 16

// Activity is a flow that Collector.Collect reports.
type Activity struct {
	// Entry is the flow: for an open flow, the mirror's entry at the time
	// of Collect; for an ended one, its last known state, with the final
	// counters when the kernel's DESTROY event carried them.
	Entry Entry
	// Ended reports that the flow left the mirror since the previous
	// Collect: it ended, or an update moved it out of Config.Filter.
	Ended bool
}

// Collector reports the flows of a Mirror that were active since its
// previous call: every flow that opened, changed or ended, including the
// flows that opened and ended in between. It is safe for concurrent use.
//
// A flow is active when the Mirror applied a Change to it (an event, or a
// difference a resynchronisation found), or when a resynchronisation
// found that its counters moved (they do with
// net.netfilter.nf_conntrack_acct=1; packets alone cause no event). So
// with the default ResyncInterval and nf_conntrack_events=1, traffic on an
// otherwise unchanged flow is seen only by a Resync: call it before
// Collect to count traffic as activity.
//
// # Memory
//
// A Collector keeps the key of every open flow active since the previous
// Collect (about 70 bytes each, so at most that per flow of the mirror)
// and the entry of every flow that ended since then (about 200 bytes
// each), up to maxEnded of them. The ended flows beyond that are not kept
// and are counted by Dropped; call Collect often enough to avoid it.
type Collector struct {
	m        *Mirror
	maxEnded int

	mu      sync.Mutex
	open    map[ctnetlink.EntryKey]struct{}
	ended   map[ctnetlink.EntryKey]Entry
	dropped uint64
}

// NewCollector returns a Collector of the mirror's activity from now on.
// Its first Collect reports every flow the mirror holds now and those
// active since. maxEnded bounds how many ended flows it keeps between two
// calls of Collect; 0 means DefaultMaxEnded.
func (m *Mirror) NewCollector(maxEnded int) *Collector {
	if maxEnded <= 0 {
		maxEnded = DefaultMaxEnded
	}
	c := &Collector{m: m, maxEnded: maxEnded}
	c.reset()
	m.obs.mu.Lock()
	defer m.obs.mu.Unlock()
	m.mu.RLock()
	for i := range m.tab.slots {
		c.open[m.tab.slots[i].key] = struct{}{}
	}
	m.mu.RUnlock()
	m.obs.list = append(m.obs.list, c)
	m.obs.n.Store(int32(len(m.obs.list)))
	return c
}

func (c *Collector) reset() {
	c.open = map[ctnetlink.EntryKey]struct{}{}
	c.ended = map[ctnetlink.EntryKey]Entry{}
}

// Collect returns the flows active since the previous Collect (or since
// NewCollector), each once, in no particular order: the open flows that
// opened or were active meanwhile, and the flows that ended meanwhile with
// Ended set, including those that opened and ended between the two calls.
// An open flow that was not active is not reported again.
func (c *Collector) Collect() []Activity {
	c.mu.Lock()
	open, ended := c.open, c.ended
	c.reset()
	c.mu.Unlock()
	out := make([]Activity, 0, len(open)+len(ended))
	for k := range open {
		// A flow missing here left the mirror, and its removal is being
		// noted: the next Collect reports it as ended.
		if e, ok := c.m.Get(k); ok {
			out = append(out, Activity{Entry: e})
			// A flow that ended and came back with the same key is
			// reported once, as it is now.
			delete(ended, k)
		}
	}
	for _, e := range ended {
		out = append(out, Activity{Entry: e, Ended: true})
	}
	return slices.Clip(out)
}

// Dropped returns how many ended flows the Collector did not keep because
// maxEnded of them were waiting for Collect already.
func (c *Collector) Dropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// Close stops collecting. Collect still reports what was collected before.
// Calling Close again does nothing.
func (c *Collector) Close() {
	o := &c.m.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list = slices.DeleteFunc(o.list, func(x *Collector) bool { return x == c })
	o.n.Store(int32(len(o.list)))
}

// note records that the flow of e was active, and that it ended.
func (c *Collector) note(e *Entry, ended bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := e.Key()
	if !ended {
		c.open[k] = struct{}{}
		return
	}
	delete(c.open, k)
	if _, ok := c.ended[k]; !ok && len(c.ended) >= c.maxEnded {
		c.dropped++
		return
	}
	c.ended[k] = *e
}

// observers are the Collectors of a Mirror.
type observers struct {
	n    atomic.Int32 // len(list), read without mu
	mu   sync.Mutex
	list []*Collector
}

// note tells every Collector that the flow of e was active, and whether
// it ended.
func (o *observers) note(e *Entry, ended bool) {
	if o.n.Load() == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.list {
		c.note(e, ended)
	}
}
