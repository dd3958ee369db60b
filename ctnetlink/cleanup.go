package ctnetlink

import (
	"context"
	"errors"
	"net/netip"
)

var zeroV4 = netip.AddrFrom4([4]byte{})

// CleanupOptions tune Cleanup. A nil *CleanupOptions means the defaults.
type CleanupOptions struct {
	// DryRun plans without deleting anything; the result carries the plan.
	DryRun bool
	// NoKernelFilters evaluates every matcher in user space over one dump,
	// even where the kernel could flush by itself. The table left behind is
	// the same; it exists for kernels whose filters misbehave, and for tests.
	NoKernelFilters bool
	// MaxSamples bounds the failed deletions kept with their errors; the
	// default, 0, keeps 5.
	MaxSamples int
	// OnDelete, if not nil, is called with each flow the scan deleted,
	// right after the kernel confirmed the deletion, in the order of the
	// dump. It is called from the goroutine that called Cleanup, never
	// concurrently, and never for a flow whose delete failed or that was
	// already gone (AlreadyGone). f is the flow as the dump returned it,
	// before its deletion; it is valid only during the call: copy it to
	// keep it.
	//
	// A kernel flush does not say which flows it removed, nor how many, so
	// with OnDelete set no matcher becomes a flush: every matcher goes
	// through the shared dump, and each deleted flow reaches OnDelete. The
	// table left behind is the same. While the scan runs, Cleanup holds at
	// most one window of deleted flows (a few thousand) for OnDelete.
	OnDelete func(f *Flow)
}

// CleanupResult counts what Cleanup did. Its size does not grow with the
// table: failures beyond Samples are only counted.
type CleanupResult struct {
	// Plan is what ran.
	Plan Plan
	// Flushes counts the kernel flush requests carried out. The kernel
	// does not say how many flows a flush removed.
	Flushes int
	// Scanned counts the flows the shared dump examined.
	Scanned int
	// Deleted counts the flows the scan deleted.
	Deleted int
	// AlreadyGone counts matching flows that were gone by the time their
	// delete arrived (ENOENT); this is not an error.
	AlreadyGone int
	// Failed counts the deletes and flushes that failed otherwise.
	Failed int
	// Samples holds the first few failures.
	Samples []CleanupError
}

// CleanupError is one failed delete or flush.
type CleanupError struct {
	// Matcher is the index of the matcher whose flush failed, or -1 for a
	// delete of the scan.
	Matcher int
	// Flow identifies the flow a failed delete was for.
	Flow Tuple
	Err  error
}

// Cleanup deletes the flows that any of the selectors (the matchers)
// selects, using the kernel where it can and one shared dump for the rest.
// A selector that sets Types is an error.
//
//  1. Each matcher whose every condition the kernel can evaluate in a flush
//     (see Capabilities), and that has no Func, becomes one flush request
//     (one per address family on kernels that refuse a flush of both at
//     once), all pipelined in one write. With CleanupOptions.OnDelete or
//     NoKernelFilters set, no matcher does. Since every flush walks the
//     whole table in the kernel, more than 8 flush requests (2 when a
//     shared dump runs anyway) would cost more than one dump: then these
//     matchers join the dump instead, and Plan.Notes says so.
//  2. All other matchers share one streaming dump, narrowed in the kernel
//     by what they have in common (family, mark, protocol, status).
//     Matchers are indexed by exact host addresses and ports, so each flow
//     costs a few hash lookups and the pass is O(table + matches), not
//     O(table × matchers). Matching flows are deleted by tuple, zone and id
//     with pipelined requests while the dump streams.
//
// Memory is bounded whatever the table size: no copy of the table and no
// per-flow error list. Cancelling ctx stops promptly; the result then
// counts what was done and the error is the context's.
//
// If the kernel flags the dump as interrupted by a change of the table,
// Cleanup runs the scan once more and returns ErrDumpInterrupted only if
// that pass is interrupted too; the result counts both passes.
func (c *Conn) Cleanup(ctx context.Context, matchers []Selector, opts *CleanupOptions) (CleanupResult, error) {
	var o CleanupOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = 5
	}
	var res CleanupResult
	plan, idx, err := c.plan(ctx, matchers, &o)
	if err != nil {
		return res, err
	}
	res.Plan = *plan
	if o.DryRun || len(matchers) == 0 {
		return res, nil
	}
	sample := func(e CleanupError) {
		res.Failed++
		if len(res.Samples) < o.MaxSamples {
			res.Samples = append(res.Samples, e)
		}
	}
	if err := c.runFlushes(ctx, plan.Flushes, &res, sample); err != nil {
		return res, err
	}
	if len(plan.Scan.Matchers) == 0 {
		return res, nil
	}
	err = c.runScan(ctx, matchers, plan, idx, o.OnDelete, &res, sample)
	if errors.Is(err, ErrDumpInterrupted) {
		// The table changed under the dump; one more pass catches what it
		// may have missed. Flows deleted already no longer match.
		err = c.runScan(ctx, matchers, plan, idx, o.OnDelete, &res, sample)
	}
	return res, err
}

// Plan works out what Cleanup would do with the same options, without
// doing it.
func (c *Conn) Plan(ctx context.Context, matchers []Selector, opts *CleanupOptions) (*Plan, error) {
	var o CleanupOptions
	if opts != nil {
		o = *opts
	}
	p, _, err := c.plan(ctx, matchers, &o)
	return p, err
}
