package nfqueue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/nfnl"
)

// MaxCopyRange is the most bytes of a packet the kernel copies
// (NFQNL_MAX_COPY_RANGE, 0xffff less an attribute header): a larger packet
// arrives truncated, with its length in CapLen.
const MaxCopyRange = 0xffff - 4

// DefaultMaxLen is the kernel's queue length when none is set
// (NFQNL_QMAX_DEFAULT).
const DefaultMaxLen = 1024

// Config configures a Conn. A nil *Config binds queue 0 with the defaults.
type Config struct {
	// NetNS is a file descriptor of the network namespace of the queues.
	// The default, 0, is the namespace of the calling thread.
	NetNS int

	// Queue is the first queue number to bind, as iptables' NFQUEUE
	// --queue-num or --queue-balance names it.
	Queue uint16
	// Count is how many queues to bind: Queue to Queue+Count-1, as for
	// iptables' --queue-balance. The default, 0, means 1. Each queue has a
	// socket and a reader of its own.
	Count int

	// CopyMode says what to copy of each packet. The default, the zero
	// value CopyModeNone, means CopyModePacket: the kernel does not queue
	// to a queue in CopyModeNone at all.
	CopyMode CopyMode
	// CopyRange is how many bytes of each packet to copy in
	// CopyModePacket. The default, 0, means MaxCopyRange: the whole packet
	// up to 65531 bytes.
	CopyRange uint32
	// MaxLen is the most packets a queue holds waiting for their verdict;
	// further packets are dropped (or accepted with FlagsFailOpen) and
	// counted in Stats. The default, 0, means DefaultMaxLen.
	MaxLen uint32
	// Flags are the queue flags to set: FlagsFailOpen, FlagsConntrack,
	// FlagsGSO, FlagsUIDGID, FlagsSecCtx. Flags left out are cleared. A
	// kernel that does not know a flag fails Open with an error naming it.
	Flags Flags

	// ReadBuffer is the receive buffer of each queue's socket in bytes.
	// The default, 0, sizes it for a full queue: MaxLen times the copy
	// range and the message overhead, between 256 KiB and 64 MiB. Open
	// sets it with SO_RCVBUFFORCE (CAP_NET_ADMIN), else SO_RCVBUF, which
	// net.core.rmem_max caps.
	ReadBuffer int

	// AsyncVerdicts makes Packet.Verdict (Accept, Drop) and
	// Conn.VerdictBatch return once the verdict is written to the socket,
	// without asking the kernel for an acknowledgement and waiting for it,
	// as libnetfilter_queue does: a verdict then costs one system call
	// and no wake-up of the reader. The kernel still answers a verdict
	// that fails, for example ENOENT for a packet id it does not hold,
	// and the reader passes that error to VerdictError. The default,
	// false, waits for every verdict's answer and returns its error to
	// the caller of that verdict. Open fails when AsyncVerdicts is set
	// without VerdictError.
	AsyncVerdicts bool
	// VerdictError is called with AsyncVerdicts for each error the kernel
	// reports for a verdict: the queue, the id of the packet (for a batch
	// verdict, the highest id it covers) and the error, which matches
	// ErrUnknownPacket for ENOENT. After an overrun of the receive buffer
	// the kernel may have dropped such errors: VerdictError is then called
	// with id 0 and an error matching ErrPacketsLost. It is called from
	// the queue's reader goroutine, one call at a time per queue, and
	// must return quickly: packets wait while it runs.
	VerdictError func(queue uint16, id uint32, err error)
}

// Conn is a set of bound queues: Queue to Queue+Count-1 of Config.
//
// A Conn is safe for concurrent use by multiple goroutines: verdicts may be
// given from any goroutine while packets are being read. Packets and Run
// read the queues; use one of them at a time.
type Conn struct {
	cfg    Config
	queues []*queue

	// ready is signalled when a packet or an error reaches any inbox.
	ready chan struct{}

	closeOnce sync.Once
	closed    chan struct{}
	readers   sync.WaitGroup
}

// ErrClosed is returned by calls on a closed Conn.
var ErrClosed = errors.New("nfqueue: use of closed Conn")

// ErrPacketsLost reports that the kernel could not deliver packets because
// a queue's receive buffer was full (an ENOBUFS overrun): they were dropped,
// or accepted with FlagsFailOpen. The error Packets yields matches both
// ErrPacketsLost and unix.ENOBUFS with errors.Is; the stream goes on after
// it. Conn.Overruns counts them.
var ErrPacketsLost = errors.New("packets lost: receive buffer overrun")

// Open binds the queues of cfg to sockets of its own and configures them.
// It fails if a queue is bound to another socket, naming that socket's port
// id, or if the kernel rejects a flag, naming it. Binding needs
// CAP_NET_ADMIN in the namespace.
func Open(ctx context.Context, cfg *Config) (*Conn, error) {
	c := &Conn{ready: make(chan struct{}, 1), closed: make(chan struct{})}
	if cfg != nil {
		c.cfg = *cfg
	}
	if c.cfg.Count <= 0 {
		c.cfg.Count = 1
	}
	if int(c.cfg.Queue)+c.cfg.Count > 1<<16 {
		return nil, fmt.Errorf("nfqueue: open: queues %d to %d: past 65535", c.cfg.Queue, int(c.cfg.Queue)+c.cfg.Count-1)
	}
	if c.cfg.AsyncVerdicts && c.cfg.VerdictError == nil {
		return nil, errors.New("nfqueue: open: asynchronous verdicts need a VerdictError function")
	}
	if c.cfg.CopyMode == CopyModeNone {
		c.cfg.CopyMode = CopyModePacket
	}
	if c.cfg.CopyMode > CopyModePacket {
		return nil, fmt.Errorf("nfqueue: open: unknown copy mode %d", c.cfg.CopyMode)
	}
	if c.cfg.CopyRange == 0 || c.cfg.CopyRange > MaxCopyRange {
		c.cfg.CopyRange = MaxCopyRange
	}
	if c.cfg.MaxLen == 0 {
		c.cfg.MaxLen = DefaultMaxLen
	}
	if c.cfg.ReadBuffer <= 0 {
		c.cfg.ReadBuffer = readBufferFor(c.cfg.MaxLen, c.cfg.CopyMode, c.cfg.CopyRange)
	}
	for i := range c.cfg.Count {
		num := c.cfg.Queue + uint16(i)
		q, err := c.bind(ctx, num)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.queues = append(c.queues, q)
	}
	for _, q := range c.queues {
		c.readers.Add(1)
		go func() {
			defer c.readers.Done()
			q.read()
		}()
	}
	return c, nil
}

// readBufferFor returns the receive buffer that holds maxLen packets of the
// copy range: each costs the range, about 512 bytes of headers and
// attributes, and the kernel's skb overhead, which doubles small ones.
func readBufferFor(maxLen uint32, mode CopyMode, copyRange uint32) int {
	per := 1024
	if mode == CopyModePacket {
		per += int(min(copyRange, 2048)) + int(copyRange)
	}
	return int(min(max(int64(maxLen)*int64(per), 256<<10), 64<<20))
}

// bind opens a socket, binds queue num to it and configures the queue.
func (c *Conn) bind(ctx context.Context, num uint16) (*queue, error) {
	s, err := nfnl.DialSocket(&nfnl.SocketConfig{NetNS: c.cfg.NetNS, ReadBuffer: c.cfg.ReadBuffer})
	if err != nil {
		return nil, fmt.Errorf("nfqueue: open queue %d: %w", num, err)
	}
	q := &queue{c: c, s: s, num: num, pending: map[uint32]chan error{}, packets: map[uint32]*Packet{}, notify: make(chan struct{}, 1)}
	var m ConfigMessage
	m.SetCommand(ConfigCmd{Command: CommandBind})
	if err := q.config(ctx, &m); err != nil {
		s.Close()
		return nil, bindError(c.cfg.NetNS, num, s.Port(), err)
	}
	m = ConfigMessage{}
	m.SetParams(ConfigParams{CopyRange: c.cfg.CopyRange, CopyMode: c.cfg.CopyMode})
	m.SetQueueMaxLen(c.cfg.MaxLen)
	m.SetMask(knownFlags | c.cfg.Flags)
	m.SetFlags(c.cfg.Flags)
	if err := q.config(ctx, &m); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			err = q.flagsError(ctx, err)
		}
		s.Close()
		return nil, fmt.Errorf("nfqueue: configure queue %d: %w", num, err)
	}
	if err := q.probeGlue(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("nfqueue: configure queue %d: %w", num, err)
	}
	return q, nil
}

// probeGlue finds out whether the kernel can read and change conntrack
// entries through the queue (CONFIG_NETFILTER_NETLINK_GLUE_CT): without
// it, the kernel ignores NFQA_CT in verdicts without a word, and refuses
// FlagsConntrack with EOPNOTSUPP. Unless the queue has FlagsConntrack
// already, it sets the flag and clears it again.
func (q *queue) probeGlue(ctx context.Context) error {
	if q.c.cfg.Flags&FlagsConntrack != 0 {
		return nil
	}
	var m ConfigMessage
	m.SetMask(FlagsConntrack)
	m.SetFlags(FlagsConntrack)
	err := q.config(ctx, &m)
	if errors.Is(err, unix.EOPNOTSUPP) {
		q.noGlue = true
		return nil
	}
	if err != nil {
		return err
	}
	m.SetFlags(0)
	return q.config(ctx, &m)
}

// knownFlags are the flags this build knows; Open clears those it is not
// asked to set.
const knownFlags = FlagsFailOpen | FlagsConntrack | FlagsGSO | FlagsUIDGID | FlagsSecCtx

// flagsError finds which of the requested flags the kernel rejects, one by
// one, and names them.
func (q *queue) flagsError(ctx context.Context, err error) error {
	var bad Flags
	for bit := Flags(1); bit != 0; bit <<= 1 {
		if q.c.cfg.Flags&bit == 0 {
			continue
		}
		var m ConfigMessage
		m.SetMask(bit)
		m.SetFlags(bit)
		if e := q.config(ctx, &m); errors.Is(e, unix.EOPNOTSUPP) {
			bad |= bit
		}
	}
	if bad == 0 {
		return err
	}
	return fmt.Errorf("kernel does not support flags %s: %w", bad, err)
}

// config sends a config request and waits for its ACK; only before the
// queue's reader starts.
func (q *queue) config(ctx context.Context, m *ConfigMessage) error {
	attrs := m.AppendAttributes(nil)
	return q.s.Request(ctx, nfnl.Req{
		Type:       netlink.HeaderType(MsgConfig),
		Flags:      nfnl.Acknowledge,
		Family:     unix.AF_UNSPEC,
		ResourceID: q.num,
		Attrs:      func(b []byte) []byte { return append(b, attrs...) },
	}, nil)
}

// bindError explains a failed bind: who owns the queue, or which privilege
// is missing.
func bindError(netns int, num uint16, port uint32, err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		if st, serr := readStats(netns); serr == nil {
			for _, s := range st {
				if s.Queue == num && s.PortID != port {
					return fmt.Errorf("nfqueue: bind queue %d: bound to another socket, port id %d: %w", num, s.PortID, err)
				}
			}
		}
		return fmt.Errorf("nfqueue: bind queue %d: needs CAP_NET_ADMIN in the network namespace: %w", num, err)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("nfqueue: bind queue %d: already bound to this socket: %w", num, err)
	}
	return fmt.Errorf("nfqueue: bind queue %d: %w", num, err)
}

// Close unbinds the queues and closes their sockets; packets still waiting
// for a verdict are dropped by the kernel. A pending Packets or Run ends,
// and pending verdicts return ErrClosed. Close always returns, and a second
// Close does nothing.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		for _, q := range c.queues {
			// Closing the socket unbinds the queue (NETLINK_URELEASE).
			err = errors.Join(err, q.s.Close())
		}
		// Each reader ends pending verdicts with ErrClosed as it returns.
		c.readers.Wait()
	})
	return err
}

// Queues returns the numbers of the bound queues.
func (c *Conn) Queues() []uint16 {
	out := make([]uint16, len(c.queues))
	for i, q := range c.queues {
		out[i] = q.num
	}
	return out
}

// ReadBuffer returns the receive buffer the kernel granted to the first
// queue's socket, as SO_RCVBUF reports it.
func (c *Conn) ReadBuffer() (int, error) {
	if len(c.queues) == 0 {
		return 0, ErrClosed
	}
	return c.queues[0].s.ReadBuffer()
}

// Overruns returns how many ENOBUFS overruns the readers saw, over all
// queues: each one is one or more packets the kernel could not deliver.
func (c *Conn) Overruns() uint64 {
	var n uint64
	for _, q := range c.queues {
		n += q.overruns.Load()
	}
	return n
}

// queue is one bound queue: its socket, its reader's inbox, the packets
// waiting for a verdict and the verdicts waiting for their ACK.
type queue struct {
	c   *Conn
	s   *nfnl.Socket
	num uint16
	seq atomic.Uint32

	overruns atomic.Uint64
	// noGlue is set when the kernel cannot change conntrack entries
	// through the queue.
	noGlue bool

	mu    sync.Mutex
	inbox []item // items from inbox[head] on wait
	head  int
	// direct, when Run sets it, is called by the reader with each packet
	// instead of queueing it in the inbox; fnMu is held while a packet is
	// delivered, so that Run can wait for a call to end.
	direct  func(*Packet)
	fnMu    sync.Mutex
	err     error                 // the reader's terminal error
	pending map[uint32]chan error // verdict sequence number -> its waiter
	packets map[uint32]*Packet    // id -> packet without a verdict
	notify  chan struct{}
}

// item is one element of an inbox: a packet, or an error to yield.
type item struct {
	p   *Packet
	err error
}

// nextSeq returns a sequence number for a verdict, never 0.
func (q *queue) nextSeq() uint32 {
	for {
		if s := q.seq.Add(1); s != 0 {
			return s
		}
	}
}

// read is the queue's reader: it receives every message of the socket,
// queues packets in the inbox and hands verdict ACKs to their waiters,
// until the socket fails or closes.
func (q *queue) read() {
	ctx := context.Background()
	for {
		b, err := q.s.Receive(ctx, true)
		if errors.Is(err, unix.ENOBUFS) {
			n := q.overruns.Add(1)
			// The kernel may have dropped the answers of verdicts too.
			q.failPending(fmt.Errorf("verdict sent, its answer lost: %w", errors.Join(ErrPacketsLost, err)))
			if q.c.cfg.AsyncVerdicts {
				q.c.cfg.VerdictError(q.num, 0, fmt.Errorf("nfqueue: queue %d: overrun %d: errors of verdicts may be lost: %w", q.num, n, errors.Join(ErrPacketsLost, err)))
			}
			q.push(item{err: fmt.Errorf("nfqueue: queue %d: overrun %d: %w", q.num, n, errors.Join(ErrPacketsLost, err))})
			continue
		}
		if err != nil {
			select {
			case <-q.c.closed:
				err = ErrClosed
			default:
				err = fmt.Errorf("nfqueue: queue %d: receive: %w", q.num, err)
			}
			q.mu.Lock()
			q.err = err
			q.mu.Unlock()
			q.failPending(err)
			q.signal()
			return
		}
		q.dispatch(b)
	}
}

// dispatch handles the messages of one datagram.
func (q *queue) dispatch(b []byte) {
	for len(b) > 0 {
		h, data, rest, err := nfnl.NextMessage(b)
		if err != nil {
			q.push(item{err: fmt.Errorf("nfqueue: queue %d: %w", q.num, err)})
			return
		}
		b = rest
		switch {
		case h.Type == netlinkError:
			var answer error
			// An ACK (errno 0) is the common case: no need to decode it.
			if len(data) < 4 || binary.NativeEndian.Uint32(data) != 0 {
				e, derr := nfnl.DecodeError(netlinkMessage(h, data))
				if derr != nil {
					continue
				}
				if e.Errno != 0 {
					answer = e.OpError()
				}
				if q.c.cfg.AsyncVerdicts && answer != nil {
					q.asyncError(e, answer)
					continue
				}
			}
			q.mu.Lock()
			w := q.pending[h.Sequence]
			delete(q.pending, h.Sequence)
			q.mu.Unlock()
			if w != nil {
				w <- answer
			}
		case MsgType(h.Type) == MsgPacket:
			p, err := decodePacket(q, data)
			if err != nil {
				q.push(item{err: fmt.Errorf("nfqueue: queue %d: packet: %w", q.num, err)})
				continue
			}
			q.deliver(p)
		}
	}
}

// deliver hands p to Run's function on this goroutine when Run set it
// (see Run), else puts it in the inbox.
func (q *queue) deliver(p *Packet) {
	q.fnMu.Lock()
	defer q.fnMu.Unlock()
	q.mu.Lock()
	q.packets[p.ID] = p
	fn := q.direct
	if fn == nil {
		q.inbox = append(q.inbox, item{p: p})
	}
	q.mu.Unlock()
	if fn != nil {
		fn(p)
		return
	}
	q.signal()
}

// setDirect makes the reader call fn with each packet itself, if the inbox
// is empty, and reports whether it did; a nil fn undoes it, once a call
// that runs has returned.
func (q *queue) setDirect(fn func(*Packet)) bool {
	q.fnMu.Lock()
	defer q.fnMu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if fn != nil && q.head < len(q.inbox) {
		return false
	}
	q.direct = fn
	return true
}

// asyncError passes the kernel's error answer to an asynchronous verdict,
// whose sequence number is its packet id, to Config.VerdictError.
func (q *queue) asyncError(e *nfnl.Error, answer error) {
	what := "verdict on packet"
	if MsgType(e.Request.Type) == MsgVerdictBatch {
		what = "batch verdict up to packet"
	}
	q.c.cfg.VerdictError(q.num, e.Sequence, fmt.Errorf("nfqueue: %s %d of queue %d: %w", what, e.Sequence, q.num, verdictError(answer)))
}

func (q *queue) push(it item) {
	q.mu.Lock()
	q.inbox = append(q.inbox, it)
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
	select {
	case q.c.ready <- struct{}{}:
	default:
	}
}

// pop takes the first item of the inbox, or the terminal error once the
// inbox is empty; ok is false when there is neither.
func (q *queue) pop() (it item, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head < len(q.inbox) {
		it = q.inbox[q.head]
		q.inbox[q.head] = item{}
		q.head++
		if q.head == len(q.inbox) {
			// Empty: start again at the front, so that the inbox's
			// array is reused rather than grown.
			q.inbox, q.head = q.inbox[:0], 0
		}
		return it, true
	}
	if q.err != nil {
		return item{err: q.err}, true
	}
	return item{}, false
}

// failPending ends every verdict waiting for its ACK with err.
func (q *queue) failPending(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for seq, w := range q.pending {
		w <- err
		delete(q.pending, seq)
	}
}
