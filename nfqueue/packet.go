package nfqueue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/nfnl"
)

const netlinkError = netlink.Error

func netlinkMessage(h netlink.Header, data []byte) netlink.Message {
	return netlink.Message{Header: h, Data: data}
}

// Packet is one queued packet, waiting for its verdict.
//
// A Packet, with its Payload and the slices of Attrs, is reused for a later
// packet once it has its verdict, so that receiving packets does not
// allocate: read what you need before the verdict, or keep a copy
// (Clone), and do not touch the Packet afterwards. A second verdict fails
// with ErrVerdictGiven until the Packet is reused. A Packet is safe for
// concurrent use: its verdict may be given from any goroutine, once.
type Packet struct {
	// ID is the packet's id in its queue (NFQA_PACKET_HDR packet_id).
	ID uint32
	// Queue is the number of the queue the packet waits in.
	Queue uint16
	// Family is the protocol family of the packet: unix.NFPROTO_IPV4,
	// NFPROTO_IPV6 or NFPROTO_BRIDGE.
	Family uint8
	// Hook is the netfilter hook the packet was queued from
	// (unix.NF_INET_PRE_ROUTING and so on).
	Hook uint8
	// HWProtocol is the packet's link layer protocol, such as
	// unix.ETH_P_IP.
	HWProtocol uint16
	// Payload is the packet from its network header on, up to the copy
	// range; nil in CopyModeMeta. It aliases the packet's buffer.
	Payload []byte
	// Truncated reports that Payload holds less than the whole packet,
	// whose length is Attrs.CapLen.
	Truncated bool
	// Attrs are all the attributes of the packet as the kernel sent them
	// (Attrs.Payload is left empty: see Payload): mark, priority,
	// interfaces, hardware address, timestamp, uid and gid, security
	// context, conntrack entry (Attrs.CT, a ctnetlink.Flow, with
	// FlagsConntrack) and its CTInfo, checksum and GSO state (SKBInfo),
	// VLAN and link layer header of bridged packets. Attrs.Has tells
	// which are present.
	Attrs Message

	q     *queue
	buf   []byte        // the message, which Payload and Attrs alias
	state atomic.Uint32 // 0 until a verdict is given
}

// Time returns the packet's receive time, or the zero Time when the kernel
// sent none.
func (p *Packet) Time() time.Time {
	if !p.Attrs.Has(MessageAttrTimestamp) {
		return time.Time{}
	}
	return time.Unix(int64(p.Attrs.Timestamp.Sec), int64(p.Attrs.Timestamp.Usec)*1000)
}

// Flow returns the packet's conntrack entry, nil unless the queue has
// FlagsConntrack and the packet has an entry.
func (p *Packet) Flow() *ctnetlink.Flow { return p.Attrs.CT }

// HWAddr returns the link layer source address, nil when absent.
func (p *Packet) HWAddr() []byte {
	if !p.Attrs.Has(MessageAttrHwaddr) {
		return nil
	}
	n := min(int(p.Attrs.HWAddr.HWAddrlen), len(p.Attrs.HWAddr.HWAddr))
	return append([]byte(nil), p.Attrs.HWAddr.HWAddr[:n]...)
}

// Clone returns a copy of p that owns its payload and attributes and stays
// valid after the verdict; it cannot be given a verdict itself.
func (p *Packet) Clone() *Packet {
	c := &Packet{ID: p.ID, Queue: p.Queue, Family: p.Family, Hook: p.Hook, HWProtocol: p.HWProtocol, Truncated: p.Truncated}
	c.state.Store(1)
	c.Payload = append([]byte(nil), p.Payload...)
	// Re-decoding our own encoding copies every slice of the attributes.
	if err := c.Attrs.UnmarshalAttributes(p.Attrs.AppendAttributes(nil)); err != nil {
		c.Attrs = p.Attrs
	}
	return c
}

// packetPool holds the Packets that had their verdict, with their
// buffers, for the packets to come.
var packetPool = sync.Pool{New: func() any { return &Packet{buf: make([]byte, 0, smallPacket)} }}

// smallPacket is the message size a pooled Packet's buffer keeps; a larger
// message gets a buffer of its own, dropped at the verdict.
const smallPacket = 2048

// decodePacket copies message payload data (nfgenmsg and attributes) into
// the buffer of a pooled Packet and decodes it.
func decodePacket(q *queue, data []byte) (*Packet, error) {
	p := packetPool.Get().(*Packet)
	buf := p.buf[:0]
	if len(data) > cap(buf) {
		buf = make([]byte, 0, len(data))
	}
	p.q, p.buf = q, append(buf, data...)
	p.Payload, p.Truncated, p.Attrs = nil, false, Message{}
	p.state.Store(0)
	if err := p.decode(p.buf); err != nil {
		p.state.Store(1)
		p.release()
		return nil, err
	}
	return p, nil
}

// decode fills p from b, a packet message after its netlink header. The
// kernel puts the payload last; then it is cut off before the generated
// decoder runs, which would copy it, and aliased instead.
func (p *Packet) decode(b []byte) error {
	h, attrs, err := nfnl.ParseHeader(b)
	if err != nil {
		return err
	}
	p.Family, p.Queue = h.Family, h.ResourceID
	rest, payload := splitPayload(attrs)
	if err := p.Attrs.UnmarshalAttributes(rest); err != nil {
		return err
	}
	if payload != nil {
		p.Payload = payload
	} else if len(p.Attrs.Payload) > 0 {
		p.Payload = p.Attrs.Payload
	}
	p.Attrs.Payload = nil
	if !p.Attrs.Has(MessageAttrPacketHdr) {
		return errors.New("no packet-hdr attribute")
	}
	p.ID = p.Attrs.PacketHeader.PacketID
	p.Hook = p.Attrs.PacketHeader.Hook
	p.HWProtocol = p.Attrs.PacketHeader.HWProtocol
	p.Truncated = p.Attrs.Has(MessageAttrCapLen) && int(p.Attrs.CapLen) > len(p.Payload)
	return nil
}

// splitPayload returns the attributes of b before a last payload attribute
// and that attribute's value, or b and nil when the last attribute is not
// the payload.
func splitPayload(b []byte) (rest, payload []byte) {
	off := 0
	for off+4 <= len(b) {
		n := int(binary.NativeEndian.Uint16(b[off:]))
		t := binary.NativeEndian.Uint16(b[off+2:]) &^ 0xc000
		if n < 4 || off+n > len(b) {
			return b, nil
		}
		next := off + (n+3)&^3
		if t == uint16(MessageAttrPayload) && next >= len(b) {
			return b[:off], b[off+4 : off+n]
		}
		off = next
	}
	return b, nil
}

// release returns the packet to the pool, once its verdict is given; the
// state stays 1 until decodePacket reuses it. It leaves q, ID and Queue
// alone, which a verdict racing with a batch still reads. A Clone is never
// pooled.
func (p *Packet) release() {
	if p.q == nil {
		return
	}
	p.Payload = nil
	p.Attrs = Message{}
	if cap(p.buf) != smallPacket {
		p.buf = make([]byte, 0, smallPacket)
	}
	packetPool.Put(p)
}

// Packets returns the packets of every queue of c as they arrive. Each
// must be given a verdict (Packet.Verdict, Conn.VerdictBatch), from any
// goroutine; until then the kernel holds it, and a queue that holds MaxLen
// of them drops further packets (accepts them with FlagsFailOpen).
//
// An overrun yields an error matching ErrPacketsLost and the stream goes
// on. The stream ends with ctx's error when ctx ends, or with the error that
// ended a queue's reader (ErrClosed after Close). Breaking out of the loop
// leaves the queues bound: call Packets again to go on.
func (c *Conn) Packets(ctx context.Context) iter.Seq2[*Packet, error] {
	return func(yield func(*Packet, error) bool) {
		next := 0
		for {
			found := false
			for range c.queues {
				q := c.queues[next]
				next = (next + 1) % len(c.queues)
				it, ok := q.pop()
				if !ok {
					continue
				}
				found = true
				if !yield(it.p, it.err) {
					return
				}
				if it.p == nil && q.terminal(it.err) {
					return
				}
			}
			if found {
				continue
			}
			select {
			case <-c.ready:
			case <-ctx.Done():
				yield(nil, ctx.Err())
				return
			}
		}
	}
}

// terminal reports whether err is the reader's terminal error.
func (q *queue) terminal(err error) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err != nil && err == q.err
}

// Run calls fn with every packet, from one goroutine per queue, so that the
// packets of one queue are handled in order and the queues in parallel. fn
// must give each packet its verdict (before or after it returns). Overruns
// are counted (Overruns) and do not stop Run. Run returns when ctx ends,
// with ctx's error, or when a queue's reader fails, with its error
// (ErrClosed after Close), after every goroutine returned.
//
// With Config.AsyncVerdicts, the goroutine of a queue is its reader
// itself, as soon as the packets queued before Run have been handled: a
// packet goes from the socket to fn with no hand-over between goroutines,
// as in libnetfilter_queue's loop. The queue reads nothing while fn runs,
// and fn must not call Close, which waits for the readers.
func (c *Conn) Run(ctx context.Context, fn func(*Packet)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, q := range c.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			direct := false
			defer func() {
				if direct {
					q.setDirect(nil)
				}
			}()
			for {
				it, ok := q.pop()
				switch {
				case !ok:
					if c.cfg.AsyncVerdicts && !direct {
						if direct = q.setDirect(fn); !direct {
							continue
						}
					}
					select {
					case <-q.notify:
					case <-ctx.Done():
						return
					}
				case it.p != nil:
					fn(it.p)
				case errors.Is(it.err, ErrPacketsLost):
				default:
					cancel(it.err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// String describes p for logs.
func (p *Packet) String() string {
	return fmt.Sprintf("packet %d of queue %d: family %d hook %d, %d bytes", p.ID, p.Queue, p.Family, p.Hook, len(p.Payload))
}
