package mirror

import (
	"time"
)

// emit hands a change to the collectors and to OnChange.
func (m *Mirror) emit(c Change) {
	m.obs.note(&c.Entry, c.Kind == ChangeRemoved)
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(c)
	}
}

// removeLocked removes the slot at i. The caller holds mu.
func (m *Mirror) removeLocked(i int) {
	if m.tab.removeAt(i) {
		m.stats.Silent--
	}
}

// handle applies one record of the reader. It returns false when the event
// socket failed.
func (m *Mirror) handle(ev *record) bool {
	switch ev.kind {
	case recordLost:
		m.mu.Lock()
		m.stats.Overruns++
		m.mu.Unlock()
		m.schedule(time.Now())
	case recordBad:
		m.mu.Lock()
		m.stats.DecodeErrors++
		m.stats.LastEventError = ev.err
		m.mu.Unlock()
		m.schedule(time.Now())
	case recordFatal:
		m.setErr(ev.err)
		m.stopped = true
		return false
	case recordDestroy:
		m.destroy(&ev.e, ev.match)
	default:
		if ev.match {
			m.upsert(&ev.e)
		} else {
			m.leave(&ev.e, m.mutable)
		}
	}
	return true
}

// upsert applies a NEW or UPDATE event of a flow the filter selects.
func (m *Mirror) upsert(e *Entry) {
	m.mu.Lock()
	kind := ChangeUpdated
	var s *slot
	if i := m.tab.find(e); i >= 0 {
		s = &m.tab.slots[i]
		s.merge(e)
		if s.silent {
			s.silent = false
			m.stats.Silent--
		}
	} else {
		s = m.tab.insert(e)
		kind = ChangeAdded
		m.gone.remove(e.Key())
	}
	if m.window {
		s.gen = m.gen
		if s.evGen != m.gen {
			s.evGen, s.evMask = m.gen, 0
		}
		s.evMask |= e.flags & entryOptional
	}
	out := s.Entry
	m.stats.Events++
	m.mu.Unlock()
	m.emit(Change{Kind: kind, Entry: out})
}

// leave applies an event of a flow the filter no longer selects. During a
// dump, block keeps the dump from adding the flow back.
func (m *Mirror) leave(e *Entry, block bool) {
	if m.window && block {
		m.destroyed[e.Key()] = struct{}{}
	}
	m.mu.Lock()
	i := m.tab.find(e)
	ok := i >= 0
	var out Entry
	if ok {
		out = m.tab.slots[i].Entry
		m.removeLocked(i)
	}
	m.stats.Events++
	m.mu.Unlock()
	if ok {
		m.gone.add(out.Key())
		out.merge(e)
		m.emit(Change{Kind: ChangeRemoved, Entry: out})
	}
}

// destroy applies a DESTROY event. match reports that the filter selects
// the flow.
//
// A flow the mirror does not hold, that the filter selects and that the
// mirror did not remove recently, had its NEW and UPDATE events lost: the
// flow lived and ended unseen. destroy emits it as a synthetic ChangeAdded
// followed by a synthetic ChangeRemoved with the DESTROY's values, so that
// OnChange sees every flow whose DESTROY arrived.
func (m *Mirror) destroy(e *Entry, match bool) {
	k := e.Key()
	if m.window {
		m.destroyed[k] = struct{}{}
	}
	m.mu.Lock()
	m.stats.Events++
	if i := m.tab.find(e); i >= 0 {
		out := m.tab.slots[i].Entry
		m.removeLocked(i)
		m.mu.Unlock()
		m.gone.add(k)
		out.merge(e)
		m.emit(Change{Kind: ChangeRemoved, Entry: out})
		return
	}
	if !match || m.gone.has(k) {
		m.mu.Unlock()
		return
	}
	m.stats.Unseen++
	s := m.tab.insert(e)
	s.gen = m.gen
	out := s.Entry
	m.mu.Unlock()
	m.emit(Change{Kind: ChangeAdded, Entry: out, Synthetic: true})
	m.mu.Lock()
	if i := m.tab.find(e); i >= 0 {
		m.removeLocked(i)
	}
	m.mu.Unlock()
	m.gone.add(k)
	m.emit(Change{Kind: ChangeRemoved, Entry: out, Synthetic: true})
}

// fromDump merges one flow of dump cur.
func (m *Mirror) fromDump(e *Entry, cur uint32, initial bool) {
	if len(m.destroyed) > 0 {
		if _, gone := m.destroyed[e.Key()]; gone {
			return
		}
	}
	m.mu.Lock()
	i := m.tab.find(e)
	if i < 0 {
		s := m.tab.insert(e)
		s.gen = cur
		m.gone.remove(e.Key())
		if initial && m.events != 1 {
			s.silent = true
			m.stats.Silent++
		}
		out := s.Entry
		m.mu.Unlock()
		m.emit(Change{Kind: ChangeAdded, Entry: out, Synthetic: true})
		return
	}
	s := &m.tab.slots[i]
	before := s.Entry
	if s.evGen == cur {
		// Events during this dump carried newer values: the dump only
		// fills in what they left out.
		s.fill(e, e.flags&entryOptional&^s.evMask)
	} else {
		s.Entry = *e
	}
	s.gen = cur
	out := s.Entry
	m.mu.Unlock()
	switch {
	case !before.sameState(&out):
		m.emit(Change{Kind: ChangeUpdated, Entry: out, Synthetic: true})
	case !before.sameCounters(&out):
		// Traffic alone: no Change, but the flow was active.
		m.obs.note(&out, false)
	}
}

// sweep removes the flows that dump cur did not confirm.
func (m *Mirror) sweep(cur uint32) {
	// Backwards, so that the entry a removal moves into place was
	// already checked.
	for i := len(m.tab.slots) - 1; i >= 0; i-- {
		if m.tab.slots[i].gen == cur {
			continue
		}
		m.mu.Lock()
		out := m.tab.slots[i].Entry
		m.removeLocked(i)
		m.mu.Unlock()
		m.gone.add(out.Key())
		m.emit(Change{Kind: ChangeRemoved, Entry: out, Synthetic: true})
	}
}
