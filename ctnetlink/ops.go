package ctnetlink

import (
	"context"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// do runs one request that is not a dump on a pooled socket.
func (c *Conn) do(ctx context.Context, op string, typ MsgType, flags netlink.HeaderFlags, family uint8, top int, attrs func([]byte) []byte, fn func(*reply) error) error {
	s, err := c.get()
	if err != nil {
		return &Error{Op: op, Err: err}
	}
	defer c.put(s)
	return opError(op, request(ctx, s, typ, flags, family, attrs, fn), s.Sent(), top)
}

// flowFamily returns the family of f for the nfgenmsg header.
func flowFamily(f *Flow) uint8 {
	if fam := f.Family(); fam != 0 {
		return fam
	}
	return unix.AF_INET
}

// Get returns the flow that q identifies: its original tuple (or its reply
// tuple) and its zone, which default to 0. It fails with an error that
// matches os.ErrNotExist when there is no such flow.
func (c *Conn) Get(ctx context.Context, q *Flow) (*Flow, error) {
	req := lookupKey(q)
	if err := errors.Join(strayError("Flow", q.strayField()), req.checkKey()); err != nil {
		return nil, &Error{Op: "get", Err: err}
	}
	var out *Flow
	err := c.do(ctx, "get", MsgGet, netlink.Acknowledge, flowFamily(q), schemaFlow, req.AppendAttributes, func(r *reply) error {
		f := new(Flow)
		if err := f.UnmarshalAttributes(r.Attrs); err != nil {
			return err
		}
		out = f
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, &Error{Op: "get", Err: errors.New("kernel acknowledged without a flow")}
	}
	return out, nil
}

// lookupKey keeps the attributes that identify a flow: one tuple, the
// zone, and the id when q has one.
func lookupKey(q *Flow) (k Flow) {
	if q.Has(FlowAttrTupleOrig) {
		k.SetTupleOrig(q.TupleOrig)
	} else {
		k.SetTupleReply(q.TupleReply)
	}
	if q.Has(FlowAttrZone) {
		k.SetZone(q.Zone)
	}
	if q.Has(FlowAttrID) {
		k.SetID(q.ID)
	}
	return k
}

// Create adds flow f to the table (IPCTNL_MSG_CT_NEW with NLM_F_CREATE and
// NLM_F_EXCL). f needs both tuples and a timeout; the kernel derives the
// reply tuple's NAT from NATSrc and NATDst when given. It fails with an
// error that matches os.ErrExist when the flow exists.
func (c *Conn) Create(ctx context.Context, f *Flow) error {
	if err := f.check(); err != nil {
		return &Error{Op: "create", Err: err}
	}
	return c.do(ctx, "create", MsgNew, netlink.Acknowledge|netlink.Create|netlink.Excl, flowFamily(f), schemaFlow, f.AppendAttributes, nil)
}

// Update changes the flow that f's original tuple (or reply tuple) and zone
// identify (IPCTNL_MSG_CT_NEW without NLM_F_CREATE). The kernel changes the
// attributes f carries that it allows to change: timeout, mark (with
// MarkMask from Linux 6.x), status bits it lets user space set, labels (with
// LabelsMask), helper, sequence adjustment and protocol state. It fails with
// an error that matches os.ErrNotExist when there is no such flow.
func (c *Conn) Update(ctx context.Context, f *Flow) error {
	if err := f.check(); err != nil {
		return &Error{Op: "update", Err: err}
	}
	return c.do(ctx, "update", MsgNew, netlink.Acknowledge, flowFamily(f), schemaFlow, f.AppendAttributes, nil)
}

// Delete removes the flow that q identifies: its original tuple (or reply
// tuple), zone, and, if q carries one, its id, so that a flow re-created
// with the same tuple is not removed by mistake. It fails with an error that
// matches os.ErrNotExist when there is no such flow.
func (c *Conn) Delete(ctx context.Context, q *Flow) error {
	k := lookupKey(q)
	if err := errors.Join(strayError("Flow", q.strayField()), k.checkKey()); err != nil {
		return &Error{Op: "delete", Err: err}
	}
	return c.do(ctx, "delete", MsgDelete, netlink.Acknowledge, flowFamily(q), schemaFlow, k.AppendAttributes, nil)
}

// Flush removes the flows that filter selects; nil selects the whole table,
// which the kernel empties in one request.
//
// With a filter, Flush removes exactly the flows the filter selects, on any
// kernel: it runs Cleanup with the one selector, so the kernel flushes by itself
// when it evaluates every field of the filter (see Capabilities) and the
// client dumps and deletes the rest. Kernels are not trusted with what they
// get wrong: a flush with a family but no tuple filter removes the flows of
// both families, and kernels before 6.8 ignore a zone.
func (c *Conn) Flush(ctx context.Context, filter *Selector) error {
	if filter == nil {
		// One request per family works on every kernel, including those
		// that refuse an AF_UNSPEC flush; the second finds nothing left
		// where the first emptied both families.
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			if err := c.do(ctx, "flush", MsgDelete, netlink.Acknowledge, fam, schemaFlow, nil, nil); err != nil {
				return err
			}
		}
		return nil
	}
	if err := filter.checkFlows(); err != nil {
		return &Error{Op: "flush", Err: err}
	}
	res, err := c.Cleanup(ctx, []Selector{*filter}, nil)
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		return &Error{Op: "flush", Err: fmt.Errorf("%d deletes failed, first: %w", res.Failed, res.Samples[0].Err)}
	}
	return nil
}

// Stats returns the global conntrack statistics (IPCTNL_MSG_CT_GET_STATS):
// the number of flows and the table's limit.
func (c *Conn) Stats(ctx context.Context) (*StatsGlobal, error) {
	var st *StatsGlobal
	err := c.do(ctx, "stats", MsgGetStats, netlink.Acknowledge, unix.AF_UNSPEC, schemaStatsGlobal, nil, func(r *reply) error {
		st = new(StatsGlobal)
		return st.UnmarshalAttributes(r.Attrs)
	})
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, &Error{Op: "stats", Err: errors.New("kernel sent no statistics")}
	}
	return st, nil
}

// CPUStats is the per-CPU conntrack statistics of one CPU.
type CPUStats struct {
	CPU uint16
	StatsCPU
}

// StatsCPU returns the per-CPU conntrack statistics
// (IPCTNL_MSG_CT_GET_STATS_CPU), one entry per possible CPU.
func (c *Conn) StatsCPU(ctx context.Context) ([]CPUStats, error) {
	var out []CPUStats
	err := c.do(ctx, "stats-cpu", MsgGetStatsCPU, netlink.Dump, unix.AF_UNSPEC, schemaStatsCPU, nil, func(r *reply) error {
		var st CPUStats
		st.CPU = r.ResourceID
		if err := st.UnmarshalAttributes(r.Attrs); err != nil {
			return err
		}
		out = append(out, st)
		return nil
	})
	return out, err
}
