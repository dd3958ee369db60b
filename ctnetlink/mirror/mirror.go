package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctspec/ctspec/ctnetlink"
)

// Mirror keeps an in-memory copy of the conntrack table, or of the part a
// ctnetlink.Selector selects, and keeps it current from events,
// repairing it by itself after events were lost. The package documentation
// says how.
//
// Len, Get, ByID, Range, Stats, Resync, Err, Done and NewCollector may be
// called from any goroutine at any time; Close too, except from OnChange.
type Mirror struct {
	cfg    Config
	conn   *ctnetlink.Conn
	l      *ctnetlink.Listener
	cancel context.CancelFunc
	done   chan struct{}
	evc    chan record
	reqc   chan chan error
	closed atomic.Bool

	mu    sync.RWMutex
	tab   store
	stats Stats // written by the run goroutine under mu
	err   error

	obs observers

	// Owned by the run goroutine.
	gen        uint32
	window     bool                            // a dump is being merged
	destroyed  map[ctnetlink.EntryKey]struct{} // flows that left during the dump
	gone       goneSets                        // flows that left the mirror recently
	pending    bool                            // a resynchronisation is scheduled
	again      bool                            // a loss happened during the dump
	due        time.Time
	backoff    time.Duration
	lastEnd    time.Time
	stopped    bool // the event socket failed
	mutable    bool // the filter tests values that change (mark, status)
	events     int  // net.netfilter.nf_conntrack_events at New, -1 unknown
	nextPoll   time.Time
	nextDrops  time.Time
	drops      uint32
	dropsKnown bool
}

// opError names the operation op of the mirror that failed with err.
func opError(op string, err error) error {
	return fmt.Errorf("mirror: %s: %w", op, err)
}

// New starts a Mirror: it subscribes to flow events, dumps the table, and
// returns once the initial dump is merged, with OnChange called for every
// flow of it. ctx bounds the Mirror's life: cancelling it stops the Mirror
// as Close does, and Err then returns ctx's error.
//
// It needs CAP_NET_ADMIN, and CAP_SYS_ADMIN for another namespace. Errors
// are those of ctnetlink.Dial, ctnetlink.Listen and ctnetlink.Conn.Dump,
// and with ReliableDestroy a "mirror: new" error when the kernel's drop
// counter cannot be read (ctnetlink.Listener.Dropped), without which lost
// events would go unseen.
func New(ctx context.Context, cfg *Config) (*Mirror, error) {
	c := withDefaults(cfg)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := open(c)
	if err != nil {
		return nil, err
	}
	if c.Filter == nil {
		// Size the table once rather than grow it through the dump.
		if st, err := m.conn.Stats(ctx); err == nil {
			n := int(st.Entries) + int(st.Entries)/8 + 64
			m.tab.slots = make([]slot, 0, n)
			m.tab.index = make(map[uint32]int32, n)
		}
	}
	var mctx context.Context
	mctx, m.cancel = context.WithCancel(ctx)
	ready := make(chan error, 1)
	go m.run(mctx, ready)
	if err := <-ready; err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// open opens the sockets of a Mirror with configuration c and reads what
// it needs to know of the namespace.
func open(c Config) (*Mirror, error) {
	conn, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: c.NetNS})
	if err != nil {
		return nil, err
	}
	l, err := ctnetlink.Listen(&ctnetlink.ListenConfig{NetNS: c.NetNS, ReadBuffer: c.ReadBuffer, ReliableDestroy: c.ReliableDestroy})
	if err != nil {
		conn.Close()
		return nil, err
	}
	m := newMirror(c)
	m.conn, m.l = conn, l
	if c.ReliableDestroy {
		// Drops from now on stand for lost events. Without the counter
		// (before Linux 4.12) the losses would go unseen.
		n, err := l.Dropped()
		if err != nil {
			l.Close()
			conn.Close()
			return nil, opError("new", fmt.Errorf("ReliableDestroy needs the kernel's drop counter: %w", err))
		}
		m.drops, m.dropsKnown = n, true
	}
	if d, err := ctnetlink.Diagnose(c.NetNS); err == nil {
		m.events = d.Events
	}
	return m, nil
}

// newMirror returns a Mirror with configuration c and no sockets.
func newMirror(c Config) *Mirror {
	m := &Mirror{
		cfg:       c,
		done:      make(chan struct{}),
		evc:       make(chan record, queueLen),
		reqc:      make(chan chan error),
		tab:       store{index: map[uint32]int32{}},
		destroyed: map[ctnetlink.EntryKey]struct{}{},
		events:    -1,
	}
	if f := c.Filter; f != nil {
		m.mutable = !f.Stable()
	}
	return m
}

// Close stops the Mirror, waits for its goroutines to return and closes its
// sockets. The content stays readable. Calling Close again does nothing.
// It must not be called from OnChange.
func (m *Mirror) Close() error {
	m.closed.Store(true)
	m.cancel()
	<-m.done
	return nil
}

// Done returns a channel that is closed once the Mirror has stopped and
// released its sockets: after Close, after its context was cancelled, or
// after its event socket failed.
func (m *Mirror) Done() <-chan struct{} { return m.done }

// Err returns why the Mirror stopped: nil while it runs and after Close,
// the context's error after a cancellation, or the failure of its event
// socket. The content is then no longer updated.
func (m *Mirror) Err() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.err
}

// setErr records why the Mirror stopped, unless Close stopped it.
func (m *Mirror) setErr(err error) {
	if m.closed.Load() {
		return
	}
	m.mu.Lock()
	if m.err == nil {
		m.err = err
	}
	m.mu.Unlock()
}

// Len returns how many flows the mirror holds.
func (m *Mirror) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.tab.slots)
}

// Get returns the entry of the flow with key k, and false when the mirror
// has no such flow. ctnetlink.KeyOf gives the key of a Flow.
func (m *Mirror) Get(k ctnetlink.EntryKey) (Entry, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.tab.get(k)
}

// ByID returns the entries of the flows with the given id: none, one, or,
// rarely, more (see ctnetlink.EntryKey).
func (m *Mirror) ByID(id uint32) []Entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.tab.byID(id)
}

// Range calls yield for every flow of the mirror, in no particular order,
// until yield returns false. The *Entry is valid only during the call:
// copy it to keep it. Range is an iter.Seq, so for e := range m.Range works.
//
// Range holds the table's read lock throughout, so the content does not
// change during the iteration. The loop body must not call other methods of
// the Mirror (a waiting update would deadlock it), and should be short: the
// Mirror applies no event until Range returns.
func (m *Mirror) Range(yield func(*Entry) bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for i := range m.tab.slots {
		if !yield(&m.tab.slots[i].Entry) {
			return
		}
	}
}

// Stats returns the Mirror's counters.
func (m *Mirror) Stats() Stats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := m.stats
	st.Flows = len(m.tab.slots)
	st.Polling = m.polling()
	return st
}

var errStopped = errors.New("mirror stopped")

// Resync dumps the table and merges it now, whatever the backoff, and
// returns once that is done, with the dump's error. After a successful
// Resync, flows that ended before the call are gone from the mirror and
// flows that lived through it are in it, whatever events were lost before.
// Use it to reconcile on a schedule of your own. It must not be called
// from OnChange.
func (m *Mirror) Resync(ctx context.Context) error {
	req := make(chan error, 1)
	stopped := func() error {
		if err := m.Err(); err != nil {
			return opError("resync", err)
		}
		return opError("resync", errStopped)
	}
	select {
	case m.reqc <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return stopped()
	}
	select {
	case err := <-req:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return stopped()
	}
}
