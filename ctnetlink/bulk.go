package ctnetlink

import (
	"context"
	"encoding/binary"
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
	var k Flow
	return c.bulk(ctx, "delete", MsgDelete, 0, len(flows), func(i int) *Flow { k = lookupKey(&flows[i]); return &k })
}

// bulkReadBuffer is the receive buffer bulk sockets ask for; error replies
// of a whole window must fit in it.
const bulkReadBuffer = 4 << 20

// bulkReplySize is a generous estimate of the kernel's memory charge for one
// capped error reply.
const bulkReplySize = 1280

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
		s.dirty = true
		c.put(s)
		return res, &Error{Op: op, Err: err}
	}
	defer c.put(s)
	stop := s.watch(ctx)
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
			s.dirty = true
			return res, &Error{Op: op, Err: err}
		}
		start += sent
	}
	return res, nil
}

// pipeline sends requests in windows: every request but the last of a window
// goes without NLM_F_ACK, so the kernel answers only failures, and the last
// one's ACK tells that the window is done. The kernel handles the messages of
// one write in order, so every answer of the window precedes that ACK.
type pipeline struct {
	s      *sock
	window int
	offs   []int // offset of each request of the window in s.out
}

func newPipeline(s *sock) (*pipeline, error) {
	// Error replies need not echo the whole request.
	if err := s.setOption(netlink.CapAcknowledge, true); err != nil {
		return nil, err
	}
	if n, _ := s.readBuffer(); n < bulkReadBuffer {
		// Best effort: without CAP_NET_ADMIN the kernel caps SO_RCVBUF.
		_ = s.setReadBuffer(bulkReadBuffer)
	}
	rb, err := s.readBuffer()
	if err != nil {
		return nil, err
	}
	// The kernel reports the doubled value it charges against.
	w := rb / 2 / bulkReplySize
	return &pipeline{s: s, window: max(16, min(w, 2048))}, nil
}

// ackOK stands for the answer of a request that succeeded silently.
var ackOK nfnl.Error

// maxWrite bounds the bytes of one write: the kernel refuses a message
// larger than the socket's send buffer (net.core.wmem_default, 208 KiB).
const maxWrite = 128 << 10

// run sends up to n requests in one write and calls done once per request
// sent, in any order, with the kernel's answer (Errno 0 for success) and the
// request's bytes. It returns how many requests it sent.
func (p *pipeline) run(ctx context.Context, n int, typ MsgType, flags netlink.HeaderFlags, item func(int) (uint8, *Flow), done func(i int, e *nfnl.Error, req []byte)) (int, error) {
	s := p.s
	s.out = s.out[:0]
	p.offs = p.offs[:0]
	first := s.seq + 1
	for i := 0; i < n && len(s.out) < maxWrite; i++ {
		family, f := item(i)
		s.seq++
		p.offs = append(p.offs, len(s.out))
		s.out = appendRequest(s.out, typ, flags, s.seq, family, f.AppendAttributes)
	}
	n = len(p.offs)
	// The last request asks for an ACK, which closes the window.
	lastOff := p.offs[n-1]
	fl := netlink.HeaderFlags(nativeUint16(s.out[lastOff+6:])) | netlink.Acknowledge
	putNativeUint16(s.out[lastOff+6:], uint16(fl))
	last := s.seq
	if err := s.send(s.out); err != nil {
		return 0, err
	}
	answered := 0
	reqBytes := func(i int) []byte {
		end := len(s.out)
		if i+1 < len(p.offs) {
			end = p.offs[i+1]
		}
		return s.out[p.offs[i]:end]
	}
	for {
		b, err := s.recv(ctx)
		if err != nil {
			return 0, err
		}
		for len(b) > 0 {
			h, data, rest, err := nextMsg(b)
			if err != nil {
				return 0, err
			}
			b = rest
			if h.Seq < first || h.Seq > last || netlink.HeaderType(h.Type) != netlink.Error || !s.fromKernel(&h) {
				continue
			}
			e, err := nfnl.DecodeError(netlink.Message{
				Header: netlink.Header{Length: h.Len, Type: netlink.Error, Flags: netlink.HeaderFlags(h.Flags), Sequence: h.Seq},
				Data:   data,
			})
			if err != nil {
				return 0, err
			}
			i := int(h.Seq - first)
			done(i, e, reqBytes(i))
			answered++
			if h.Seq == last {
				// Requests without an answer succeeded.
				for j := 0; j < n-answered; j++ {
					done(-1, &ackOK, nil)
				}
				return n, nil
			}
		}
	}
}

func nativeUint16(b []byte) uint16       { return binary.NativeEndian.Uint16(b) }
func putNativeUint16(b []byte, v uint16) { binary.NativeEndian.PutUint16(b, v) }
