package mirror

import "github.com/ctspec/ctspec/ctnetlink"

// slot is a mirrored flow with the merge bookkeeping.
type slot struct {
	Entry
	gen    uint32     // the last dump or event during a dump that confirmed it
	evGen  uint32     // the last dump during which an event touched it
	next   int32      // the next slot with the same id, or -1
	evMask entryFlags // optional values events set during dump evGen
	silent bool       // from the initial dump, no event since
}

// store is the table of a Mirror: the slots, without pointers, and an
// index from id to the first slot of that id, whose slots are chained by
// slot.next. The Mirror guards it with its mu.
type store struct {
	slots []slot
	index map[uint32]int32 // id to the first slot of that id
}

// find returns the position of e's flow in the table, or -1.
func (s *store) find(e *Entry) int {
	i, ok := s.index[e.ID()]
	for ok && i >= 0 {
		if s.slots[i].key == e.key {
			return int(i)
		}
		i = s.slots[i].next
	}
	return -1
}

// get returns the entry of the flow with key k.
func (s *store) get(k ctnetlink.EntryKey) (Entry, bool) {
	i, ok := s.index[k.ID()]
	for ok && i >= 0 {
		if sl := &s.slots[i]; sl.key == k {
			return sl.Entry, true
		}
		i = s.slots[i].next
	}
	return Entry{}, false
}

// byID returns the entries with the given id.
func (s *store) byID(id uint32) []Entry {
	var out []Entry
	i, ok := s.index[id]
	for ok && i >= 0 {
		out = append(out, s.slots[i].Entry)
		i = s.slots[i].next
	}
	return out
}

// insert appends e to the table, first in the chain of its id.
func (s *store) insert(e *Entry) *slot {
	next := int32(-1)
	if i, ok := s.index[e.ID()]; ok {
		next = i
	}
	s.index[e.ID()] = int32(len(s.slots))
	s.slots = append(s.slots, slot{Entry: *e, next: next})
	return &s.slots[len(s.slots)-1]
}

// removeAt removes the entry at i, moving the last entry into its place.
// It returns whether the removed entry was silent.
func (s *store) removeAt(i int) (silent bool) {
	silent = s.slots[i].silent
	s.relink(i, s.slots[i].next)
	last := len(s.slots) - 1
	if i != last {
		s.relink(last, int32(i))
		s.slots[i] = s.slots[last]
	}
	s.slots = s.slots[:last]
	return silent
}

// relink makes what points at slot from, the index or the previous slot of
// the same id, point at to instead; to -1 unlinks from.
func (s *store) relink(from int, to int32) {
	id := s.slots[from].ID()
	i, ok := s.index[id]
	if !ok {
		return
	}
	if int(i) == from {
		if to < 0 {
			delete(s.index, id)
		} else {
			s.index[id] = to
		}
		return
	}
	for ; i >= 0; i = s.slots[i].next {
		if int(s.slots[i].next) == from {
			s.slots[i].next = to
			return
		}
	}
}

// shrunk returns a reallocated copy of the table when it uses less than a
// quarter of its capacity, and false when it does not. Go maps never
// shrink, so the index is rebuilt too.
func (s *store) shrunk() (store, bool) {
	n := len(s.slots)
	if c := cap(s.slots); c < 4096 || n >= c/4 {
		return store{}, false
	}
	out := store{slots: make([]slot, n, n+n/4+64)}
	copy(out.slots, s.slots)
	out.index = make(map[uint32]int32, cap(out.slots))
	for i := range out.slots {
		out.slots[i].next = -1
		if j, ok := out.index[out.slots[i].ID()]; ok {
			out.slots[i].next = j
		}
		out.index[out.slots[i].ID()] = int32(i)
	}
	return out, true
}

// goneSets remembers the flows that left a Mirror recently, in two
// generations of at most goneMax flows each, so that a late or repeated
// DESTROY of a flow it already removed is not taken for a flow it never
// saw. The run goroutine owns it.
type goneSets struct {
	cur, old map[ctnetlink.EntryKey]struct{}
}

// goneMax is how many removed flows a Mirror remembers per generation of
// its gone sets.
const goneMax = 1 << 14

// add records that the flow with key k left the mirror.
func (g *goneSets) add(k ctnetlink.EntryKey) {
	if g.cur == nil {
		g.cur, g.old = map[ctnetlink.EntryKey]struct{}{}, map[ctnetlink.EntryKey]struct{}{}
	}
	if len(g.cur) >= goneMax {
		g.old, g.cur = g.cur, g.old
		clear(g.cur)
	}
	g.cur[k] = struct{}{}
}

// has reports whether the flow with key k left the mirror recently.
func (g *goneSets) has(k ctnetlink.EntryKey) bool {
	if _, ok := g.cur[k]; ok {
		return true
	}
	_, ok := g.old[k]
	return ok
}

// remove forgets that the flow with key k left the mirror: it is back.
func (g *goneSets) remove(k ctnetlink.EntryKey) {
	if len(g.cur) > 0 || len(g.old) > 0 {
		delete(g.cur, k)
		delete(g.old, k)
	}
}
