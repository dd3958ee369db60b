package nfnl

import (
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

const nlmsgHeaderLen = 16 // sizeof(struct nlmsghdr)

// align rounds n up to the netlink alignment of four bytes.
func align(n int) int { return (n + 3) &^ 3 }

// A Batch collects requests for one subsystem and frames them between
// MsgBatchBegin and MsgBatchEnd, to be sent in a single datagram. The
// subsystem must support batches (see the package documentation), and every
// request must belong to it; the kernel answers a request of another
// subsystem with EINVAL.
//
// A Batch is not safe for concurrent use. Its zero value is not usable; call
// NewBatch.
type Batch struct {
	subsys Subsystem
	reqs   []netlink.Message
	// first is the sequence number of the first request in the frame built by
	// the last call to Messages and n the number of requests in that frame,
	// 0 before the first call.
	first uint32
	n     int
}

// NewBatch returns an empty batch for subsystem s.
func NewBatch(s Subsystem) *Batch {
	return &Batch{subsys: s}
}

// Subsystem returns the subsystem the batch was created for.
func (b *Batch) Subsystem() Subsystem { return b.subsys }

// Add appends request m to the batch and returns its index, counting from 0.
// The batch keeps m.Data without copying it, so the caller must not change it
// until the batch is sent. Messages overwrites the sequence number and length
// in m's header.
func (b *Batch) Add(m netlink.Message) int {
	b.reqs = append(b.reqs, m)
	return len(b.reqs) - 1
}

// Len returns the number of requests in the batch, without the begin and end
// markers.
func (b *Batch) Len() int { return len(b.reqs) }

// Reset empties the batch for reuse and forgets the sequence numbers of the
// last frame.
func (b *Batch) Reset() {
	clear(b.reqs)
	b.reqs = b.reqs[:0]
	b.first, b.n = 0, 0
}

// Messages returns the framed batch: a MsgBatchBegin message, the requests in
// the order they were added, and a MsgBatchEnd message. They take consecutive
// sequence numbers starting at firstSeq for the begin marker, so request i
// takes firstSeq+1+i. Each message has the Request flag set and its length
// filled in. The markers carry a Header with family AF_UNSPEC and the
// subsystem id as resource id.
//
// Pick firstSeq so that no message gets sequence number 0: the sequence
// numbers wrap around, and github.com/mdlayher/netlink replaces a 0 with its
// own. Messages records firstSeq for Index; the returned slice is new and
// the batch may be sent more than once.
func (b *Batch) Messages(firstSeq uint32) []netlink.Message {
	marker := Header{
		Family:     unix.AF_UNSPEC,
		Version:    Version0,
		ResourceID: uint16(b.subsys),
	}
	msgs := make([]netlink.Message, 0, len(b.reqs)+2)
	seq := firstSeq
	add := func(m netlink.Message) {
		m.Header.Sequence = seq
		m.Header.Flags |= Request
		m.Header.Length = uint32(align(nlmsgHeaderLen + len(m.Data)))
		msgs = append(msgs, m)
		seq++
	}
	add(netlink.Message{
		Header: netlink.Header{Type: MsgBatchBegin},
		Data:   marker.Append(make([]byte, 0, HeaderLen)),
	})
	for _, m := range b.reqs {
		add(m)
	}
	add(netlink.Message{
		Header: netlink.Header{Type: MsgBatchEnd},
		Data:   marker.Append(make([]byte, 0, HeaderLen)),
	})
	b.first, b.n = firstSeq+1, len(b.reqs)
	return msgs
}

// Index returns the index of the request that had sequence number seq in the
// frame built by the last call to Messages, as returned by Add, and true. It
// returns false for the sequence numbers of the begin and end markers, for any
// other number, and before the first call to Messages.
func (b *Batch) Index(seq uint32) (int, bool) {
	// The subtraction wraps around like the sequence numbers do.
	i := seq - b.first
	if uint64(i) >= uint64(b.n) {
		return 0, false
	}
	return int(i), true
}
