package mirror

import (
	"context"
	"errors"

	"github.com/ctspec/ctspec/ctnetlink"
)

// record is what the reader hands to the run goroutine.
type record struct {
	kind  recordKind
	match bool // the flow passes the filter
	e     Entry
	err   error
}

type recordKind uint8

const (
	recordNew recordKind = iota + 1
	recordUpdate
	recordDestroy
	recordLost  // an overrun
	recordBad   // an event that did not decode
	recordFatal // the stream ended
)

// read is the reader goroutine: it decodes events into compact records for
// the run goroutine, in the order the kernel queued them.
func (m *Mirror) read(ctx context.Context) {
	var last error
	for ev, err := range m.l.Events(ctx) {
		var r record
		switch {
		case err == nil:
			if !m.decode(ev, &r) {
				continue
			}
			last = nil
		case errors.Is(err, ctnetlink.ErrEventsLost):
			r.kind = recordLost
		default:
			if ctx.Err() != nil {
				return
			}
			// A message that does not decode is a lost event; a failed
			// socket ends the stream right after it.
			r.kind, r.err, last = recordBad, err, err
		}
		select {
		case m.evc <- r:
		case <-ctx.Done():
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	if last == nil {
		last = opError("events", errors.New("event stream ended"))
	}
	select {
	case m.evc <- record{kind: recordFatal, err: last}:
	case <-ctx.Done():
	}
}

// decode fills r from a flow event, and returns false for an event that
// is not one.
func (m *Mirror) decode(ev *ctnetlink.Event, r *record) bool {
	if ev.Flow == nil {
		return false
	}
	switch ev.Type {
	case ctnetlink.EventNew:
		r.kind = recordNew
	case ctnetlink.EventUpdate:
		r.kind = recordUpdate
	case ctnetlink.EventDestroy:
		r.kind = recordDestroy
	default:
		return false
	}
	r.match = m.cfg.Filter.Match(ev.Flow)
	r.e.setFlow(ev.Flow)
	return true
}
