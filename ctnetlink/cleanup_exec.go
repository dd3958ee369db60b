package ctnetlink

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/nfnl"
)

// runFlushes sends every planned flush, pipelined.
func (c *Conn) runFlushes(ctx context.Context, flushes []PlannedFlush, res *CleanupResult, sample func(CleanupError)) error {
	if len(flushes) == 0 {
		return nil
	}
	s, err := c.get()
	if err != nil {
		return &Error{Op: "cleanup", Err: err}
	}
	p, err := newPipeline(s)
	if err != nil {
		s.Discard()
		c.put(s)
		return &Error{Op: "cleanup", Err: err}
	}
	defer c.put(s)
	stop := s.Watch(ctx)
	defer stop()
	reqs := make([]Flow, len(flushes))
	fams := make([]uint8, len(flushes))
	for i := range flushes {
		fams[i], reqs[i] = flushRequest(&flushes[i].Filter)
	}
	for start := 0; start < len(flushes); {
		sent, err := p.run(ctx, len(flushes)-start, MsgDelete, 0, func(i int) (uint8, *Flow) {
			return fams[start+i], &reqs[start+i]
		}, func(i int, e *nfnl.Error, req []byte) {
			if e.Errno == 0 {
				res.Flushes++
				return
			}
			sample(CleanupError{Matcher: flushes[start+i].Matcher, Err: opError("flush", kernelError(e), req, schemaFlow)})
		})
		if err != nil {
			s.Discard()
			return &Error{Op: "cleanup", Err: err}
		}
		start += sent
	}
	return nil
}

// flushRequest returns the nfgenmsg family and attributes of a flush.
func flushRequest(f *Selector) (uint8, Flow) {
	fam, q := f.kernelRequest()
	return fam, *q
}

// runScan streams one dump and deletes the flows that a scanned matcher
// selects, in pipelined windows on a second socket. With onDelete, each
// window also keeps the flows it deletes, to report those the kernel
// confirmed.
func (c *Conn) runScan(ctx context.Context, matchers []Selector, plan *Plan, idx *matcherIndex, onDelete func(*Flow), res *CleanupResult, sample func(CleanupError)) error {
	ds, err := c.get()
	if err != nil {
		return &Error{Op: "cleanup", Err: err}
	}
	p, err := newPipeline(ds)
	if err != nil {
		ds.Discard()
		c.put(ds)
		return &Error{Op: "cleanup", Err: err}
	}
	defer c.put(ds)
	del := &deleter{p: p, window: make([]Flow, 0, p.window), onDelete: onDelete}
	if onDelete != nil {
		del.flows = make([]Flow, 0, p.window)
		del.failed = make([]bool, p.window)
	}
	flush := func() error {
		stop := ds.Watch(ctx)
		defer stop()
		return del.flush(ctx, res, sample)
	}
	dump := plan.Scan.Dump
	var cands []int
	for f, err := range c.Dump(ctx, &dump) {
		if err != nil {
			if errors.Is(err, ErrDumpInterrupted) {
				if ferr := flush(); ferr != nil {
					return ferr
				}
				return ErrDumpInterrupted
			}
			return err
		}
		res.Scanned++
		cands = idx.candidates(f, cands[:0])
		for _, i := range cands {
			if matchers[i].Match(f) {
				del.add(f)
				break
			}
		}
		if len(del.window) == cap(del.window) {
			if err := flush(); err != nil {
				ds.Discard()
				return err
			}
		}
	}
	if err := flush(); err != nil {
		ds.Discard()
		return err
	}
	return nil
}

// deleter batches flow deletes for a pipeline.
type deleter struct {
	p      *pipeline
	window []Flow // lookup keys of the flows to delete
	// With onDelete: flows holds the window's flows as dumped, and failed
	// marks those whose delete did not succeed.
	onDelete func(*Flow)
	flows    []Flow
	failed   []bool
}

func (d *deleter) add(f *Flow) {
	d.window = append(d.window, lookupKey(f))
	if d.onDelete != nil {
		// Dump decodes every byte slice into fresh memory, so a shallow
		// copy stays valid after the dump reuses f.
		d.flows = append(d.flows, *f)
	}
}

func (d *deleter) flush(ctx context.Context, res *CleanupResult, sample func(CleanupError)) error {
	for start := 0; start < len(d.window); {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := len(d.window) - start
		if d.onDelete != nil {
			clear(d.failed[:n])
		}
		sent, err := d.p.run(ctx, n, MsgDelete, 0, func(i int) (uint8, *Flow) {
			f := &d.window[start+i]
			return flowFamily(f), f
		}, func(i int, e *nfnl.Error, req []byte) {
			if e.Errno != 0 && d.onDelete != nil {
				d.failed[i] = true
			}
			switch e.Errno {
			case 0:
				res.Deleted++
			case unix.ENOENT:
				res.AlreadyGone++
			default:
				sample(CleanupError{Matcher: -1, Flow: d.window[start+i].TupleOrig, Err: opError("delete", kernelError(e), req, schemaFlow)})
			}
		})
		if err != nil {
			return &Error{Op: "cleanup", Err: err}
		}
		if d.onDelete != nil {
			for i := 0; i < sent; i++ {
				if !d.failed[i] {
					d.onDelete(&d.flows[start+i])
				}
			}
		}
		start += sent
	}
	d.window = d.window[:0]
	if d.onDelete != nil {
		clear(d.flows) // drop references to label and helper memory
		d.flows = d.flows[:0]
	}
	return nil
}
