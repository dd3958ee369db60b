package ctnetlink

import (
	"context"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/nfnl"
)

// BulkResult summarises a bulk operation. Its size does not depend on how
// many items succeeded: only failures are listed.
type BulkResult struct {
	// Done counts the items the kernel carried out.
	Done int
	// NotFound counts the items that failed because the flow did not exist
	// (ENOENT): for DeleteMany, flows that were already gone, which is not
	// an error. They are not in Errors.
	NotFound int
	// Errors lists every other failed item, in input order.
	Errors []ItemError
}

// ItemError is the failure of one item of a bulk operation.
type ItemError struct {
	// Index is the item's position in the input.
	Index int
	// Err is an *Error naming the operation and the kernel's errno.
	Err error
}

func (e ItemError) Error() string { return fmt.Sprintf("item %d: %v", e.Index, e.Err) }

// CreateMany creates flows like Create, pipelining the requests: many
// requests go to the kernel in one write and only failures come back, so
// thousands of flows take a few system calls. The error is non-nil only when
// the operation as a whole failed (socket error, cancellation); per-item
// failures are in the result.
func (c *Conn) CreateMany(ctx context.Context, flows []Flow) (BulkResult, error) {
	return c.bulk(ctx, "create", MsgNew, netlink.Create|netlink.Excl, len(flows), func(i int) *Flow { return &flows[i] })
}

// UpdateMany updates flows like Update, pipelined like CreateMany.
func (c *Conn) UpdateMany(ctx context.Context, flows []Flow) (BulkResult, error) {
	return c.bulk(ctx, "update", MsgNew, 0, len(flows), func(i int) *Flow { return &flows[i] })
}

// DeleteMany deletes flows like Delete, pipelined like CreateMany. Each flow
// is identified by its original tuple (or reply tuple), its zone and, when
// present, its id. Flows already gone are counted in NotFound.
func (c *Conn) DeleteMany(ctx context.Context, flows []Flow) (BulkResult, error) {
	for i := range flows {
		if err := strayError("Flow", flows[i].strayField()); err != nil {
			return BulkResult{}, &Error{Op: "delete", Err: fmt.Errorf("item %d: %w", i, err)}
		}
	}
	var k Flow
	return c.bulk(ctx, "delete", MsgDelete, 0, len(flows), func(i int) *Flow { k = lookupKey(&flows[i]); return &k })
}

func (c *Conn) bulk(ctx context.Context, op string, typ MsgType, flags netlink.HeaderFlags, n int, item func(int) *Flow) (BulkResult, error) {
	var res BulkResult
	if n == 0 {
		return res, nil
	}
	// Nothing is sent when any item would fail the kernel's parsing.
	for i := 0; i < n; i++ {
		if err := item(i).check(); err != nil {
			return res, &Error{Op: op, Err: fmt.Errorf("item %d: %w", i, err)}
		}
	}
	s, err := c.get()
	if err != nil {
		return res, &Error{Op: op, Err: err}
	}
	p, err := newPipeline(s)
	if err != nil {
		s.Discard()
		c.put(s)
		return res, &Error{Op: op, Err: err}
	}
	defer c.put(s)
	stop := s.Watch(ctx)
	defer stop()

	for start := 0; start < n; {
		if err := ctx.Err(); err != nil {
			return res, &Error{Op: op, Err: err}
		}
		end := min(start+p.window, n)
		sent, err := p.run(ctx, end-start, typ, flags, func(i int) (uint8, *Flow) {
			f := item(start + i)
			return flowFamily(f), f
		}, func(i int, e *nfnl.Error, req []byte) {
			switch {
			case e.Errno == 0:
				res.Done++
			case e.Errno == unix.ENOENT:
				res.NotFound++
			default:
				res.Errors = append(res.Errors, ItemError{Index: start + i, Err: opError(op, kernelError(e), req, schemaFlow)})
			}
		})
		if err != nil {
			s.Discard()
			return res, &Error{Op: op, Err: err}
		}
		start += sent
	}
	return res, nil
}

// pipeline sends flow requests in windows on one socket (see
// nfnl.Pipeline).
type pipeline struct {
	p      *nfnl.Pipeline
	window int
}

func newPipeline(s *nfnl.Socket) (*pipeline, error) {
	p, err := nfnl.NewPipeline(s)
	if err != nil {
		return nil, err
	}
	return &pipeline{p: p, window: p.Window}, nil
}

// run sends up to n requests in one write and calls done once per request
// sent, in any order, with the kernel's answer (Errno 0 for success) and the
// request's bytes. It returns how many requests it sent.
func (p *pipeline) run(ctx context.Context, n int, typ MsgType, flags netlink.HeaderFlags, item func(int) (uint8, *Flow), done func(i int, e *nfnl.Error, req []byte)) (int, error) {
	return p.p.Run(ctx, n, func(i int, r *nfnl.Req) {
		family, f := item(i)
		*r = nfnl.Req{Type: netlink.HeaderType(typ), Flags: flags, Family: family, Attrs: f.AppendAttributes}
	}, done)
}
