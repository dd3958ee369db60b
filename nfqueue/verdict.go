package nfqueue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/nfnl"
)

// Action is what the kernel does with a packet: the verdict proper.
type Action uint8

// The actions. Their values are the kernel's NF_* verdicts.
const (
	// Drop drops the packet (NF_DROP).
	Drop Action = 0
	// Accept lets the packet go on to the next rule's chain: the packet
	// continues after the rule that queued it, through the rest of the
	// hook's chains (NF_ACCEPT).
	Accept Action = 1
	// Queue sends the packet to queue Verdict.QueueNum, as if a rule
	// queued it there (NF_QUEUE); with Verdict.Bypass it is accepted when
	// that queue has no listener.
	Queue Action = 3
	// Repeat sends the packet through the hook again from its first rule,
	// so the rule that queued it sees it again: give it a mark that rule
	// skips (NF_REPEAT).
	Repeat Action = 4
)

func (a Action) String() string {
	switch a {
	case Drop:
		return "drop"
	case Accept:
		return "accept"
	case Queue:
		return "queue"
	case Repeat:
		return "repeat"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Verdict is a verdict and the changes that come with it.
type Verdict struct {
	// Action is the verdict.
	Action Action
	// QueueNum is the target queue of Queue.
	QueueNum uint16
	// Bypass makes Queue accept the packet when queue QueueNum has no
	// listener (NF_VERDICT_FLAG_QUEUE_BYPASS).
	Bypass bool
	// Mark, if not nil, is the packet's new mark (skb->mark, NFQA_MARK).
	Mark *uint32
	// Payload, if not nil, replaces the packet from its network header
	// on; it may be shorter or longer. The kernel does not recompute
	// checksums: see FixChecksums.
	Payload []byte
	// ConnMark, if not nil, is the new mark of the packet's conntrack
	// entry (CTA_MARK in NFQA_CT); it needs no queue flag.
	ConnMark *uint32
	// ConnLabels, if not nil, are the new labels of the conntrack entry
	// (CTA_LABELS, up to 16 bytes, a bit per label); the entry must have
	// the labels extension (a rule using the connlabel match, for
	// example), or the change is ignored.
	ConnLabels []byte
}

// ErrVerdictGiven is returned for a second verdict on a packet, or one on
// a packet a batch verdict covered.
var ErrVerdictGiven = errors.New("verdict already given")

// ErrNoConntrack is returned for a verdict that changes the conntrack
// entry (ConnMark, ConnLabels) when the kernel cannot: it lacks
// CONFIG_NETFILTER_NETLINK_GLUE_CT, and would ignore the change without a
// word. Such a kernel also refuses FlagsConntrack.
var ErrNoConntrack = errors.New("kernel cannot change conntrack entries through the queue (no CONFIG_NETFILTER_NETLINK_GLUE_CT)")

// ErrUnknownPacket matches the kernel's answer to a verdict whose packet it
// does not hold (ENOENT): given a verdict elsewhere, dropped when its queue
// was unbound, or never there.
var ErrUnknownPacket = errors.New("packet id unknown")

// Accept gives p the verdict Accept.
func (p *Packet) Accept(ctx context.Context) error { return p.Verdict(ctx, Verdict{Action: Accept}) }

// Drop gives p the verdict Drop.
func (p *Packet) Drop(ctx context.Context) error { return p.Verdict(ctx, Verdict{Action: Drop}) }

// Verdict gives p its verdict v and waits for the kernel's answer, unless
// ctx ends first. When the queue's receive buffer overruns, the kernel may
// drop that answer: Verdict then returns an error matching ErrPacketsLost,
// though the kernel has the verdict. A second verdict fails with
// ErrVerdictGiven, and one the kernel does not know the packet for with an
// error matching ErrUnknownPacket and os.ErrNotExist. p is reused for a
// later packet afterwards: see Packet.
//
// With Config.AsyncVerdicts, Verdict returns once the verdict is written,
// without waiting for the kernel's answer; an error the kernel reports
// then reaches Config.VerdictError with the packet's id. Verdict itself
// still fails for a bad v, a second verdict, and a failed write.
func (p *Packet) Verdict(ctx context.Context, v Verdict) error {
	// ID and Queue are read before the verdict: p is reused after it.
	q, id, num := p.q, p.ID, p.Queue
	if q == nil || p.state.Load() != 0 {
		return fmt.Errorf("nfqueue: verdict on packet %d of queue %d: %w", id, num, ErrVerdictGiven)
	}
	bp := sendPool.Get().(*[]byte)
	var err error
	*bp, err = q.verdictAttrs((*bp)[:0], id, &v)
	if err != nil {
		sendPool.Put(bp)
		return fmt.Errorf("nfqueue: verdict %s on packet %d of queue %d: %w", v.Action, id, num, err)
	}
	if !p.state.CompareAndSwap(0, 1) {
		sendPool.Put(bp)
		return fmt.Errorf("nfqueue: verdict on packet %d of queue %d: %w", id, num, ErrVerdictGiven)
	}
	q.mu.Lock()
	delete(q.packets, id)
	q.mu.Unlock()
	// The message holds a copy of all it needs of p.
	p.release()
	if err := q.verdict(ctx, MsgVerdict, bp, id); err != nil {
		return fmt.Errorf("nfqueue: verdict %s on packet %d of queue %d: %w", v.Action, id, num, err)
	}
	return nil
}

// VerdictBatch gives every packet of p's queue whose id is at most p.ID,
// p included, the verdict v (NFQNL_MSG_VERDICT_BATCH): each of them counts
// as given, and a later verdict on one fails with ErrVerdictGiven. Only
// Action, QueueNum, Bypass and Mark may be set: the kernel changes nothing
// else in a batch. Like Packet.Verdict, it waits for the kernel's answer,
// unless Config.AsyncVerdicts is set: then an error reaches
// Config.VerdictError with p's id.
func (c *Conn) VerdictBatch(ctx context.Context, p *Packet, v Verdict) error {
	q, id, num := p.q, p.ID, p.Queue
	if v.Payload != nil || v.ConnMark != nil || v.ConnLabels != nil {
		return fmt.Errorf("nfqueue: batch verdict up to packet %d of queue %d: only the action and the mark apply to a batch", id, num)
	}
	if q == nil || p.state.Load() != 0 {
		return fmt.Errorf("nfqueue: batch verdict up to packet %d of queue %d: %w", id, num, ErrVerdictGiven)
	}
	bp := sendPool.Get().(*[]byte)
	var err error
	*bp, err = q.verdictAttrs((*bp)[:0], id, &v)
	if err != nil {
		sendPool.Put(bp)
		return fmt.Errorf("nfqueue: batch verdict %s up to packet %d of queue %d: %w", v.Action, id, num, err)
	}
	q.mu.Lock()
	for pid, o := range q.packets {
		// The kernel's nfq_id_after: ids wrap around.
		if int32(pid-id) <= 0 && o.state.CompareAndSwap(0, 1) {
			delete(q.packets, pid)
			o.release()
		}
	}
	q.mu.Unlock()
	if err := q.verdict(ctx, MsgVerdictBatch, bp, id); err != nil {
		return fmt.Errorf("nfqueue: batch verdict %s up to packet %d of queue %d: %w", v.Action, id, num, err)
	}
	return nil
}

// verdictCode is the verdict header's verdict of v.
func verdictCode(v *Verdict) (uint32, error) {
	switch v.Action {
	case Drop, Accept, Repeat:
		return uint32(v.Action), nil
	case Queue:
		code := uint32(v.QueueNum)<<16 | uint32(Queue)
		if v.Bypass {
			code |= 0x8000 // NF_VERDICT_FLAG_QUEUE_BYPASS
		}
		return code, nil
	}
	return 0, fmt.Errorf("unknown action %d", v.Action)
}

// verdictAttrs checks v and appends the attributes of its verdict message
// for id to b.
func (q *queue) verdictAttrs(b []byte, id uint32, v *Verdict) ([]byte, error) {
	code, err := verdictCode(v)
	if err != nil {
		return nil, err
	}
	var m Message
	m.SetVerdictHeader(VerdictHeader{Verdict: code, ID: id})
	if v.Mark != nil {
		m.SetMark(*v.Mark)
	}
	if v.Payload != nil {
		if len(v.Payload) > MaxCopyRange {
			return nil, fmt.Errorf("payload: want at most %d bytes, got %d", MaxCopyRange, len(v.Payload))
		}
		m.SetPayload(v.Payload)
	}
	if v.ConnMark != nil || v.ConnLabels != nil {
		if q.noGlue {
			return nil, ErrNoConntrack
		}
		var f ctnetlink.Flow
		if v.ConnMark != nil {
			f.SetMark(*v.ConnMark)
		}
		if v.ConnLabels != nil {
			if len(v.ConnLabels) == 0 || len(v.ConnLabels) > 16 || len(v.ConnLabels)%4 != 0 {
				return nil, fmt.Errorf("conntrack labels: want 4, 8, 12 or 16 bytes, got %d", len(v.ConnLabels))
			}
			f.SetLabels(v.ConnLabels)
		}
		m.SetCT(&f)
	}
	return m.AppendAttributes(b), nil
}

// verdict sends the verdict message of type typ for packet id whose
// attributes *bp holds, and waits for its answer unless verdicts are
// asynchronous. It returns bp to sendPool.
func (q *queue) verdict(ctx context.Context, typ MsgType, bp *[]byte, id uint32) error {
	if q.c.cfg.AsyncVerdicts {
		return q.verdictAsync(typ, bp, id)
	}
	w := waiterPool.Get().(chan error)
	seq := q.nextSeq()
	q.mu.Lock()
	if q.err != nil {
		err := q.err
		q.mu.Unlock()
		sendPool.Put(bp)
		return err
	}
	q.pending[seq] = w
	q.mu.Unlock()
	// After an overrun, the kernel may drop further messages, answers
	// included, without reporting ENOBUFS again until the socket's queue
	// drains: such a verdict watches the socket's drop counter instead.
	var dropsAtSend uint32
	watch := q.overruns.Load() > 0
	if watch {
		dropsAtSend, _ = q.s.Drops()
	}
	// The reader only receives, so this send never waits for it.
	if err := q.send(typ, nfnl.Acknowledge, seq, bp); err != nil {
		q.forget(seq)
		return err
	}
	var tick <-chan time.Time
	if watch {
		t := time.NewTicker(answerCheck)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-w:
			// Answered: nobody else holds w now.
			waiterPool.Put(w)
			return verdictError(err)
		case <-tick:
			if d, err := q.s.Drops(); err == nil && d != dropsAtSend {
				q.forget(seq)
				return fmt.Errorf("verdict sent, its answer lost: %w", errors.Join(ErrPacketsLost, unix.ENOBUFS))
			}
		case <-ctx.Done():
			q.forget(seq)
			return ctx.Err()
		}
	}
}

// verdictAsync sends a verdict without NLM_F_ACK. Its sequence number is
// the packet id: the kernel answers only when the verdict fails, with an
// NLMSG_ERROR carrying that number, which the reader passes to
// Config.VerdictError.
func (q *queue) verdictAsync(typ MsgType, bp *[]byte, id uint32) error {
	q.mu.Lock()
	err := q.err
	q.mu.Unlock()
	if err != nil {
		sendPool.Put(bp)
		return err
	}
	return q.send(typ, 0, id, bp)
}

// send writes the verdict message of type typ with flags and sequence
// number seq whose attributes *bp holds, and returns bp to sendPool.
func (q *queue) send(typ MsgType, flags netlink.HeaderFlags, seq uint32, bp *[]byte) error {
	req := sendPool.Get().(*[]byte)
	b := nfnl.AppendRequest((*req)[:0], &nfnl.Req{
		Type:       netlink.HeaderType(typ),
		Flags:      flags,
		Family:     unix.AF_UNSPEC,
		ResourceID: q.num,
	}, seq)
	b = append(b, *bp...)
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	err := q.s.Send(b)
	*req = b
	sendPool.Put(req)
	sendPool.Put(bp)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// verdictError is the error of a verdict the kernel answered with err:
// ENOENT also matches ErrUnknownPacket.
func verdictError(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%w: %w", ErrUnknownPacket, err)
	}
	return err
}

// answerCheck is how long a verdict waits for its answer, after an overrun,
// before it looks whether the kernel dropped messages of the socket.
const answerCheck = 50 * time.Millisecond

// waiterPool holds the channels verdicts wait on for their answer.
var waiterPool = sync.Pool{New: func() any { return make(chan error, 1) }}

func (q *queue) forget(seq uint32) {
	q.mu.Lock()
	delete(q.pending, seq)
	q.mu.Unlock()
}

var sendPool = newBufPool(256)
