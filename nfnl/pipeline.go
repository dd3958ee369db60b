package nfnl

import (
	"context"
	"encoding/binary"

	"github.com/mdlayher/netlink"
)

// pipelineReadBuffer is the receive buffer a Pipeline asks for; the error
// replies of a whole window must fit in it.
const pipelineReadBuffer = 4 << 20

// pipelineReplySize is a generous estimate of the kernel's memory charge
// for one capped error reply.
const pipelineReplySize = 1280

// maxWrite bounds the bytes of one write: the kernel refuses a message
// larger than the socket's send buffer (net.core.wmem_default, 208 KiB).
const maxWrite = 128 << 10

// A Pipeline sends many requests on one Socket in windows: every request
// but the last of a window goes without NLM_F_ACK, so the kernel answers
// only failures, and the last one's ACK tells that the window is done. The
// kernel handles the messages of one write in order, so every answer of the
// window precedes that ACK. Answers are matched to requests by sequence
// number.
//
// A Pipeline is not safe for concurrent use.
type Pipeline struct {
	s *Socket
	// Window is the most requests Run sends in one write, sized so that
	// the error replies of a whole window fit in the receive buffer.
	Window int
	offs   []int // offset of each request of the window in s.out
}

// NewPipeline prepares s for pipelined requests: error replies do not echo
// the request (NETLINK_CAP_ACK), and the receive buffer is raised to 4 MiB
// where the privilege allows.
func NewPipeline(s *Socket) (*Pipeline, error) {
	if err := s.SetOption(netlink.CapAcknowledge, true); err != nil {
		return nil, err
	}
	if n, _ := s.ReadBuffer(); n < pipelineReadBuffer {
		// Best effort: without CAP_NET_ADMIN the kernel caps SO_RCVBUF.
		_ = s.SetReadBuffer(pipelineReadBuffer)
	}
	rb, err := s.ReadBuffer()
	if err != nil {
		return nil, err
	}
	// The kernel reports the doubled value it charges against.
	w := rb / 2 / pipelineReplySize
	return &Pipeline{s: s, Window: max(16, min(w, 2048))}, nil
}

// ackOK stands for the answer of a request that succeeded silently.
var ackOK Error

// Run sends up to n requests, as many as fit in one write, and calls done
// once per request sent with the kernel's answer (Errno 0 for success) and
// the request's bytes: first for every answered request, in order, then
// with index -1 and no bytes for each request that succeeded silently.
// req fills in request i. Run returns how many requests it sent. The caller
// watches ctx on the socket (Socket.Watch) for the duration of its runs.
func (p *Pipeline) Run(ctx context.Context, n int, req func(i int, r *Req), done func(i int, e *Error, req []byte)) (int, error) {
	s := p.s
	s.out = s.out[:0]
	p.offs = p.offs[:0]
	first := s.seq + 1
	var r Req
	for i := 0; i < n && len(s.out) < maxWrite; i++ {
		r = Req{}
		req(i, &r)
		seq := s.nextSeq()
		if seq < first {
			// The sequence number wrapped: start the window afresh.
			first = seq
			s.out, p.offs = s.out[:0], p.offs[:0]
			i = -1
			continue
		}
		p.offs = append(p.offs, len(s.out))
		s.out = AppendRequest(s.out, &r, seq)
	}
	n = len(p.offs)
	// The last request asks for an ACK, which closes the window.
	lastOff := p.offs[n-1]
	fl := netlink.HeaderFlags(binary.NativeEndian.Uint16(s.out[lastOff+6:])) | netlink.Acknowledge
	binary.NativeEndian.PutUint16(s.out[lastOff+6:], uint16(fl))
	last := s.seq
	s.dirty = true
	if err := s.Send(s.out); err != nil {
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
		b, err := s.Receive(ctx, true)
		if err != nil {
			return 0, err
		}
		for len(b) > 0 {
			h, data, rest, err := NextMessage(b)
			if err != nil {
				return 0, err
			}
			b = rest
			if h.Sequence < first || h.Sequence > last || h.Type != netlink.Error || !s.fromKernel(&h) {
				continue
			}
			e, err := DecodeError(netlink.Message{Header: h, Data: data})
			if err != nil {
				return 0, err
			}
			i := int(h.Sequence - first)
			done(i, e, reqBytes(i))
			answered++
			if h.Sequence == last {
				s.dirty = false
				// Requests without an answer succeeded.
				for j := 0; j < n-answered; j++ {
					done(-1, &ackOK, nil)
				}
				return n, nil
			}
		}
	}
}
