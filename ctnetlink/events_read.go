package ctnetlink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"net"
	"os"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/nfnl"
)

// Reading events: the Events loop and the decoding of each message.

var errEventsBusy = errors.New("another Events loop is running")

// Events returns the stream of events. Each value is an event or an error,
// never both. The *Event is reused: see Event.
//
// Errors come in two kinds. These leave the stream running, and the loop
// yields more values after them:
//
//   - an overrun: an *Error matching ErrEventsLost (and unix.ENOBUFS),
//     counted in Overruns; see Listener for what to do about it;
//   - a message that cannot be decoded, such as a malformed attribute, or a
//     message type this build does not know: an *Error naming it. Only that
//     message is skipped. Attributes of unknown type are no error: they are
//     skipped and counted in the Unknown field of their struct;
//   - an error message (NLMSG_ERROR) with an error code: an *Error that
//     matches the errno; one with ENOBUFS, or an NLMSG_OVERRUN, is an
//     overrun as above. Acknowledgements (error code 0) are skipped.
//
// These end the stream, as the last value:
//
//   - ctx is cancelled or its deadline passes: ctx.Err(); cancelling
//     unblocks a waiting receive at once;
//   - the Listener is closed: an *Error matching net.ErrClosed;
//   - another loop is running, or the socket fails: an *Error.
//
// So a loop body may handle every error with continue and still end. After
// a stream ends, or the caller breaks out of the loop, the Listener stays
// open and events keep queueing on its socket, up to the buffer's size,
// until Events is called again or the Listener is closed.
func (l *Listener) Events(ctx context.Context) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		if !l.busy.CompareAndSwap(false, true) {
			yield(nil, &Error{Op: "events", Err: errEventsBusy})
			return
		}
		defer l.busy.Store(false)
		if l.closed.Load() {
			yield(nil, &Error{Op: "events", Err: net.ErrClosed})
			return
		}
		if err := ctx.Err(); err != nil {
			yield(nil, err)
			return
		}
		stop := l.s.Watch(ctx)
		defer stop()
		for {
			for len(l.rest) > 0 {
				ev, err := l.next()
				if ev == nil && err == nil {
					continue
				}
				if !yield(ev, err) {
					return
				}
			}
			if l.lost && l.budget <= 0 {
				if !l.yieldLost(yield) {
					return
				}
			}
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			if !l.receive(ctx, yield) {
				return
			}
		}
	}
}

// receive reads the next datagram into l.rest, or deals with what the
// read reports instead. It returns false when the stream has ended.
func (l *Listener) receive(ctx context.Context, yield func(*Event, error) bool) bool {
	// After an overrun, read without waiting: an empty queue means every
	// event queued before the loss has been yielded.
	b, err := l.s.Receive(ctx, !l.lost)
	switch {
	case err == nil:
		l.rest = b
		if l.lost {
			l.budget -= len(b)
		}
	case err == unix.EAGAIN:
		return l.yieldLost(yield)
	case err == unix.ENOBUFS:
		// An overrun still pending is due now: the kernel reports no
		// second one before the queue has been read empty.
		more := !l.lost || l.yieldLost(yield)
		// The kernel reports an overrun before the events still queued;
		// they are at most a buffer's worth.
		l.overruns.Add(1)
		l.lost = true
		l.budget = l.rcvbuf + nfnl.RecvBufSize
		return more
	case l.closed.Load():
		yield(nil, &Error{Op: "events", Err: net.ErrClosed})
		return false
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		// A watched ctx ended; its deadline may pass before its timer has
		// run.
		<-ctx.Done()
		yield(nil, ctx.Err())
		return false
	case errors.Is(err, os.ErrDeadlineExceeded):
		if err := ctx.Err(); err != nil {
			yield(nil, err)
			return false
		}
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			// The deadline passed; ctx reports it in a moment.
			<-ctx.Done()
			yield(nil, ctx.Err())
			return false
		}
		// Not this context's deadline: clear it and read on.
		_ = l.s.SetReadDeadline(time.Time{})
		if dl, ok := ctx.Deadline(); ok {
			_ = l.s.SetReadDeadline(dl)
		}
	default:
		yield(nil, &Error{Op: "events", Err: err})
		return false
	}
	return true
}

// yieldLost yields the pending overrun.
func (l *Listener) yieldLost(yield func(*Event, error) bool) bool {
	l.lost = false
	return yield(nil, &Error{Op: "events", Err: fmt.Errorf("%w (%w)", ErrEventsLost, unix.ENOBUFS)})
}

// errorMessage returns what an error message (NLMSG_ERROR) with payload
// data reports: nil for an acknowledgement (error 0), an overrun for
// ENOBUFS, else the errno.
func (l *Listener) errorMessage(data []byte) error {
	if len(data) < 4 {
		return &Error{Op: "events", Err: fmt.Errorf("error message of %d bytes, too short for an error code", len(data))}
	}
	code := int32(binary.NativeEndian.Uint32(data))
	if code == 0 {
		return nil
	}
	errno := unix.Errno(-code)
	if code > 0 {
		errno = unix.Errno(code)
	}
	if errno == unix.ENOBUFS {
		l.overruns.Add(1)
		return &Error{Op: "events", Err: fmt.Errorf("%w (%w, NLMSG_ERROR)", ErrEventsLost, errno)}
	}
	return &Error{Op: "events", Err: fmt.Errorf("kernel error message: %w", errno)}
}

// next decodes the first message of l.rest. It returns nil, nil for a
// message that is not an event, or an event the filter rejects.
func (l *Listener) next() (*Event, error) {
	h, data, rest, err := nfnl.NextMessage(l.rest)
	if err != nil {
		l.rest = nil
		return nil, &Error{Op: "events", Err: err}
	}
	l.rest = rest
	switch netlink.HeaderType(h.Type) {
	case netlink.Noop, netlink.Done:
		return nil, nil
	case netlink.Overrun:
		// The kernel reports overruns with ENOBUFS on the socket, but an
		// NLMSG_OVERRUN means the same: events were lost.
		l.overruns.Add(1)
		return nil, &Error{Op: "events", Err: fmt.Errorf("%w (%w, NLMSG_OVERRUN)", ErrEventsLost, unix.ENOBUFS)}
	case netlink.Error:
		return nil, l.errorMessage(data)
	}
	var typ EventType
	switch MsgType(h.Type) {
	case MsgNew:
		typ = EventUpdate
		if h.Flags&unix.NLM_F_CREATE != 0 {
			typ = EventNew
		}
	case MsgDelete:
		typ = EventDestroy
	case MsgExpNew:
		typ = EventExpNew
	case MsgExpDelete:
		typ = EventExpDestroy
	default:
		return nil, &Error{Op: "events", Err: fmt.Errorf("unexpected message type %#x", uint16(h.Type))}
	}
	_, attrs, err := nfnl.ParseHeader(data)
	if err != nil {
		return nil, &Error{Op: "events", Err: fmt.Errorf("%s: %w", typ, err)}
	}
	l.ev = Event{Type: typ, PortID: h.PID}
	if typ == EventExpNew || typ == EventExpDestroy {
		err = l.exp.UnmarshalAttributes(attrs)
		l.ev.Expect = &l.exp
	} else {
		err = l.flow.UnmarshalAttributes(attrs)
		l.ev.Flow = &l.flow
	}
	if err != nil {
		return nil, &Error{Op: "events", Err: fmt.Errorf("%s: %w", typ, err)}
	}
	if l.filter != nil && !l.filter.MatchEvent(&l.ev) {
		l.discarded.Add(1)
		return nil, nil
	}
	return &l.ev, nil
}
