package mirror

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ctspec/ctspec/ctnetlink"
)

// run is the Mirror's main goroutine. It starts the reader, merges the
// initial dump, and then applies events and runs resynchronisations until
// ctx ends or the event socket fails.
func (m *Mirror) run(ctx context.Context, ready chan<- error) {
	var reader sync.WaitGroup
	reader.Add(1)
	go func() {
		defer reader.Done()
		m.read(ctx)
	}()
	defer func() {
		m.cancel()
		m.l.Close()
		reader.Wait()
		m.conn.Close()
		close(m.done)
	}()

	now := time.Now()
	m.nextPoll = now.Add(m.cfg.ResyncInterval)
	m.nextDrops = now.Add(dropCheck)
	err := m.resync(ctx, true)
	if errors.Is(err, ctnetlink.ErrDumpInterrupted) {
		// Every flow was delivered; the next resynchronisation settles
		// what the interruption may have missed.
		err = nil
	}
	if err == nil {
		err = ctx.Err()
	}
	ready <- err
	if err != nil {
		m.setErr(err)
		return
	}
	m.loop(ctx)
}

// loop applies events, serves Resync and does the timed work until ctx
// ends or the event socket fails.
func (m *Mirror) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var armed time.Time
	for {
		if wake := m.nextWake(); !wake.Equal(armed) {
			armed = wake
			if wake.IsZero() {
				timer.Stop()
			} else {
				timer.Reset(time.Until(wake))
			}
		}
		select {
		case <-ctx.Done():
			m.setErr(ctx.Err())
			return
		case ev := <-m.evc:
			if !m.handle(&ev) {
				return
			}
		case req := <-m.reqc:
			req <- m.resync(ctx, false)
			if m.stopped {
				return
			}
		case <-timer.C:
			armed = time.Time{}
			if !m.tick(ctx, time.Now()) {
				return
			}
		}
	}
}

// polling reports whether events cannot be trusted to report every change,
// so that the Mirror resynchronises every ResyncInterval.
func (m *Mirror) polling() bool {
	if m.cfg.ResyncInterval < 0 {
		return false
	}
	switch m.events {
	case 1:
		return false
	case 2:
		return m.stats.Silent > 0
	}
	return true
}

// nextWake returns when the run loop has timed work to do, or the zero
// Time.
func (m *Mirror) nextWake() time.Time {
	var t time.Time
	earliest := func(u time.Time) {
		if t.IsZero() || u.Before(t) {
			t = u
		}
	}
	if m.pending {
		earliest(m.due)
	}
	if m.polling() {
		earliest(m.nextPoll)
	}
	if m.cfg.ReliableDestroy {
		earliest(m.nextDrops)
	}
	return t
}

// tick does the timed work that is due. It returns false when the Mirror
// must stop.
func (m *Mirror) tick(ctx context.Context, now time.Time) bool {
	if m.cfg.ReliableDestroy && !now.Before(m.nextDrops) {
		m.checkDrops(now)
	}
	if m.polling() && !now.Before(m.nextPoll) {
		if !m.pending {
			m.pending, m.due = true, now
		}
	}
	if m.pending && !now.Before(m.due) {
		m.resync(ctx, false)
		if ctx.Err() != nil {
			m.setErr(ctx.Err())
			return false
		}
		if m.stopped {
			return false
		}
	}
	return true
}

// checkDrops reads the kernel's drop counter of the event socket and
// schedules a resynchronisation when it grew or cannot be read.
func (m *Mirror) checkDrops(now time.Time) {
	m.nextDrops = now.Add(dropCheck)
	n, err := m.l.Dropped()
	switch {
	case err != nil:
		// Losses cannot be seen now: assume one, so that a dump
		// repairs whatever was lost, and say why.
		m.mu.Lock()
		m.stats.LastEventError = err
		m.mu.Unlock()
		m.dropsKnown = false
		m.schedule(now)
	case m.dropsKnown && n != m.drops:
		m.mu.Lock()
		m.stats.Overruns++
		m.mu.Unlock()
		m.schedule(now)
	}
	if err == nil {
		m.drops, m.dropsKnown = n, true
	}
}

// schedule asks for a resynchronisation after a loss, with backoff.
func (m *Mirror) schedule(now time.Time) {
	if m.window {
		m.again = true
		return
	}
	if m.pending {
		return
	}
	switch {
	case m.lastEnd.IsZero() || now.Sub(m.lastEnd) >= m.cfg.MaxResyncBackoff:
		m.backoff = 0
	case m.backoff == 0:
		m.backoff = m.cfg.ResyncBackoff
	default:
		m.backoff = min(2*m.backoff, m.cfg.MaxResyncBackoff)
	}
	m.pending, m.due = true, m.lastEnd.Add(m.backoff)
	m.mu.Lock()
	m.stats.Pending = true
	m.mu.Unlock()
}

var errFatal = errors.New("event socket failed")

// resync dumps the table and merges it into the mirror.
func (m *Mirror) resync(ctx context.Context, initial bool) error {
	start := time.Now()
	m.pending, m.again = false, false
	m.gen++
	cur := m.gen
	m.window = true
	m.mu.Lock()
	m.stats.Pending = true
	m.mu.Unlock()

	err := m.merge(ctx, cur, initial)
	if err == nil {
		m.sweep(cur)
	}
	m.window = false
	if len(m.destroyed) > 4096 {
		m.destroyed = map[ctnetlink.EntryKey]struct{}{}
	} else {
		clear(m.destroyed)
	}
	end := time.Now()
	m.lastEnd = end
	m.nextPoll = end.Add(m.cfg.ResyncInterval)
	if err == nil {
		m.shrink()
	}
	m.account(ctx, err, end.Sub(start), initial)
	if err == errFatal {
		if cause := m.Err(); cause != nil {
			return opError("resync", cause)
		}
		return opError("resync", errFatal)
	}
	return err
}

// merge dumps the table as dump cur and merges every flow of it, applying
// the events that arrive meanwhile.
func (m *Mirror) merge(ctx context.Context, cur uint32, initial bool) error {
	n := 0
	for f, err := range m.conn.Dump(ctx, m.cfg.Filter) {
		if err != nil {
			return err
		}
		var e Entry
		e.setFlow(f)
		m.fromDump(&e, cur, initial)
		// Apply the events queued meanwhile, so that the receive buffer
		// keeps draining during a long dump.
		if n++; n%64 == 0 && !m.drain() {
			return errFatal
		}
	}
	if !m.drain() {
		return errFatal
	}
	return nil
}

// account records the outcome err of a dump that took took, and schedules
// the next one when it failed or losses came meanwhile.
func (m *Mirror) account(ctx context.Context, err error, took time.Duration, initial bool) {
	m.mu.Lock()
	switch {
	case err == nil:
		m.stats.LastResync = took
		m.stats.LastError = nil
		if !initial {
			m.stats.Resyncs++
		}
	case err != errFatal && ctx.Err() == nil:
		m.stats.ResyncErrors++
		m.stats.LastError = err
	}
	m.mu.Unlock()
	if (err != nil || m.again) && err != errFatal && ctx.Err() == nil {
		m.schedule(m.lastEnd)
	}
	m.mu.Lock()
	m.stats.Pending = m.pending
	m.mu.Unlock()
}

// shrink reallocates the table when it uses less than a quarter of its
// capacity.
func (m *Mirror) shrink() {
	if t, ok := m.tab.shrunk(); ok {
		m.mu.Lock()
		m.tab = t
		m.mu.Unlock()
	}
}

// drain applies the events waiting in the queue without blocking. It
// returns false when the event socket failed.
func (m *Mirror) drain() bool {
	for range cap(m.evc) {
		select {
		case ev := <-m.evc:
			if !m.handle(&ev) {
				return false
			}
		default:
			return true
		}
	}
	return true
}
