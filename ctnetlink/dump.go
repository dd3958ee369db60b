package ctnetlink

import (
	"context"
	"errors"
	"iter"
	"slices"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Dump streams the flows of the conntrack table that filter selects (nil
// for all). The kernel filters by what it can evaluate (see Selector); the
// client checks every flow with filter.Match. A filter that sets Types,
// or that the kernel would refuse, is an error. The yielded *Flow is
// reused for the next flow: copy it to keep it.
//
// The dump reads the kernel's answer as it comes, so a table of any size
// needs memory for one flow. Breaking out of the loop ends the dump. If the
// table changed during the dump, the last value yielded is the error
// ErrDumpInterrupted; any other failure is an *Error. Other methods of the
// Conn may be called from the loop body.
func (c *Conn) Dump(ctx context.Context, filter *Selector) iter.Seq2[*Flow, error] {
	return c.dumpFlows(ctx, "dump", MsgGet, filter)
}

// DumpZero is Dump that also zeroes the counters of every flow it returns
// (IPCTNL_MSG_CT_GET_CTRZERO). The flows carry the counters read before the
// reset.
func (c *Conn) DumpZero(ctx context.Context, filter *Selector) iter.Seq2[*Flow, error] {
	return c.dumpFlows(ctx, "dump-zero", MsgGetCtrZero, filter)
}

// DumpDying streams the flows on the dying list: deleted, but still
// referenced (IPCTNL_MSG_CT_GET_DYING).
func (c *Conn) DumpDying(ctx context.Context) iter.Seq2[*Flow, error] {
	return c.dumpFlows(ctx, "dump-dying", MsgGetDying, nil)
}

// DumpUnconfirmed streams the flows on the unconfirmed list: created for a
// packet not yet through the stack (IPCTNL_MSG_CT_GET_UNCONFIRMED). Recent
// kernels keep no such list and return none.
func (c *Conn) DumpUnconfirmed(ctx context.Context) iter.Seq2[*Flow, error] {
	return c.dumpFlows(ctx, "dump-unconfirmed", MsgGetUnconfirmed, nil)
}

func (c *Conn) dumpFlows(ctx context.Context, op string, typ MsgType, filter *Selector) iter.Seq2[*Flow, error] {
	return func(yield func(*Flow, error) bool) {
		if err := filter.checkFlows(); err != nil {
			yield(nil, &Error{Op: op, Err: err})
			return
		}
		s, err := c.get()
		if err != nil {
			yield(nil, &Error{Op: op, Err: err})
			return
		}
		defer c.put(s)
		family, q := filter.kernelRequest()
		var attrs func([]byte) []byte
		if q != nil {
			attrs = q.AppendAttributes
		}
		families := []uint8{family}
		if family == unix.AF_UNSPEC && q != nil && q.Has(FlowAttrFilter) {
			// The kernel evaluates a tuple filter for one family at a time.
			families = []uint8{unix.AF_INET, unix.AF_INET6}
		}
		var f Flow
		for _, fam := range families {
			stopped := false
			err = request(ctx, s, typ, netlink.Dump, fam, attrs, func(r *reply) error {
				if err := f.UnmarshalAttributes(r.Attrs); err != nil {
					return err
				}
				if !filter.Match(&f) {
					return nil
				}
				// Flows already read are not handed out after a cancellation.
				if err := ctx.Err(); err != nil {
					return err
				}
				if !yield(&f, nil) {
					stopped = true
					return errStop
				}
				return nil
			})
			if stopped {
				s.Discard() // the rest of the dump is still queued
				return
			}
			if err != nil {
				if errors.Is(err, ErrDumpInterrupted) {
					yield(nil, &Error{Op: op, Err: err})
				} else {
					yield(nil, opError(op, err, s.Sent(), schemaFlow))
				}
				return
			}
		}
	}
}

// List returns the flows that filter selects. A dump that the kernel flags as
// interrupted by a table change is repeated, up to three times, before List
// returns the last attempt's flows with ErrDumpInterrupted.
func (c *Conn) List(ctx context.Context, filter *Selector) ([]Flow, error) {
	var flows []Flow
	var err error
	if filter == nil {
		// The table's size is a good capacity hint for an unfiltered list;
		// growing a slice of large elements costs more than the dump.
		if st, serr := c.Stats(ctx); serr == nil {
			flows = make([]Flow, 0, int(st.Entries)+int(st.Entries)/16+16)
		}
	}
	flows, err = collect(flows, func() iter.Seq2[*Flow, error] { return c.Dump(ctx, filter) })
	return flows, err
}

// collect copies what dump yields into out, repeating a dump that the kernel
// flags as interrupted up to three times; the last attempt's values come
// back with ErrDumpInterrupted.
func collect[T any](out []T, dump func() iter.Seq2[*T, error]) ([]T, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		out, err = out[:0], nil
		for v, verr := range dump() {
			if verr != nil {
				err = verr
				break
			}
			if len(out) == cap(out) {
				// Double: append's gentler growth for large elements
				// copies a big table several times over.
				out = slices.Grow(out, max(len(out), 64))
			}
			out = append(out, *v)
		}
		if !errors.Is(err, ErrDumpInterrupted) {
			break
		}
	}
	return out, err
}
