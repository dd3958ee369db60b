package ctnetlink

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/net/bpf"

	"github.com/ctspec/ctspec/nfnl"
)

// DefaultListenReadBuffer is the receive buffer a Listener asks for when
// ListenConfig.ReadBuffer is 0: 4 MiB, which the kernel grants as 8 MiB,
// room for about 6,500 events.
const DefaultListenReadBuffer = 4 << 20

// ListenConfig configures a Listener. A nil *ListenConfig means all
// defaults.
type ListenConfig struct {
	// NetNS is a file descriptor of the network namespace to listen in, for
	// example of /var/run/netns/NAME or /proc/PID/ns/net. The default, 0, is
	// the namespace of the calling thread. Entering another namespace needs
	// CAP_SYS_ADMIN; Listen fails if it cannot.
	NetNS int

	// Groups are the multicast groups to join. The default, nil, is
	// GroupNew, GroupUpdate and GroupDestroy: every flow event and no
	// expectation events. Joining any group needs CAP_NET_ADMIN in the
	// namespace; without it Listen fails with an error that matches
	// os.ErrPermission. A value outside GroupNew..GroupExpDestroy is an
	// error.
	//
	// Leave out GroupUpdate when only the life of flows matters: a busy
	// flow has an UPDATE for every protocol state change and for every
	// change made through ctnetlink, and they are usually the bulk of the
	// traffic. The kernel sends nothing on GroupExpUpdate; joining it is
	// allowed and harmless.
	Groups []Group

	// ReadBuffer is the socket receive buffer size in bytes: how many
	// events the kernel can queue while the caller is not reading. The
	// default, 0, asks for DefaultListenReadBuffer; a negative value keeps
	// the kernel's default, net.core.rmem_default (208 KiB on most
	// systems), which bursts overrun easily.
	//
	// Listen tries SO_RCVBUFFORCE first, which needs CAP_NET_ADMIN and
	// ignores net.core.rmem_max, then falls back to SO_RCVBUF, which the
	// kernel silently caps at rmem_max. A capped buffer is not an error:
	// Listener.ReadBuffer reports what the kernel granted, which is twice
	// the request (the kernel counts its bookkeeping against the buffer)
	// or twice rmem_max when capped. Each queued event takes about 1.25 KiB
	// of the granted size: the kernel counts its whole buffer, not the
	// 200 to 400 bytes of the message.
	ReadBuffer int

	// NoENOBUFS sets NETLINK_NO_ENOBUFS: the kernel no longer reports
	// overruns of the receive buffer. Events it cannot queue are still
	// dropped, but Events then never yields ErrEventsLost and Overruns
	// stays 0: the losses go unseen except in Listener.Dropped. Use it only
	// when an occasional missing event is acceptable and a resync is not.
	// The default, false, reports every overrun. It needs no privilege.
	NoENOBUFS bool

	// ReliableDestroy asks the kernel to retry DESTROY events that it could
	// not queue, as conntrackd's NetlinkEventsReliable does. It sets
	// NETLINK_BROADCAST_ERROR, so that the kernel learns when an event
	// missed this socket, and NETLINK_NO_ENOBUFS, so the socket keeps
	// accepting events after a miss; NoENOBUFS is implied. It needs no
	// privilege. The default is false.
	//
	// What the kernel then guarantees (nf_conntrack_ecache.c): when a
	// flow's DESTROY event cannot be queued on a socket that set
	// NETLINK_BROADCAST_ERROR, the kernel takes the flow out of the table
	// but keeps it on a per-namespace list, and a kernel worker sends the
	// DESTROY again, first about 1 s later, then every 10 ms while a
	// receive buffer is still full. So every DESTROY reaches this socket
	// at least once, for as long as the Listener is open and read, for
	// every flow that has events at all (see net.netfilter.nf_conntrack_events
	// on Listener). A retried DESTROY arrives late, after events of other
	// flows that happened later, and every listener of GroupDestroy
	// receives it again, so other listeners can see it twice.
	//
	// It guarantees nothing for NEW and UPDATE events: one that cannot be
	// queued is remembered on the flow and sent merged into that flow's
	// next event, so an UPDATE may arrive flagged as NEW, and a flow may
	// have no event before its DESTROY. Overruns are not reported (see
	// NoENOBUFS); Listener.Dropped still counts every miss, retried
	// DESTROY events included.
	//
	// The cost: flows whose DESTROY is pending stay allocated and count
	// against net.netfilter.nf_conntrack_max. A Listener that stops reading
	// while flows end makes them pile up, and once the table is full the
	// kernel drops packets of new connections. Keep reading, or Close.
	ReliableDestroy bool

	// Filter, if not nil, selects the events to receive, in the kernel:
	// Listen compiles it into a classic BPF program and attaches it to the
	// socket (SO_ATTACH_FILTER) before it joins the groups, so events the
	// filter rejects are never queued, take no room in the receive buffer
	// and cause no overrun. Events checks every event again with
	// Filter.MatchEvent and yields only those it selects; see Selector for
	// the semantics, Selector.Program for what the kernel evaluates, and
	// Listener.Discarded. Listen copies the filter.
	// Attaching it needs no privilege. Listen fails with an *Error if the
	// filter is invalid or needs more than the kernel's 4096 instructions.
	// The default, nil, receives every event of the groups.
	//
	// Leaving groups out is cheaper than filtering event types: the kernel
	// does not even build the events of a group nobody joined.
	Filter *Selector
}

var defaultGroups = []Group{GroupNew, GroupUpdate, GroupDestroy}

// ErrEventsLost reports that the kernel dropped events because the
// Listener's receive buffer was full (an ENOBUFS overrun). The error that
// Events yields matches both ErrEventsLost and unix.ENOBUFS with
// errors.Is. The stream goes on after it; see Listener for how to
// resynchronise.
var ErrEventsLost = errors.New("events lost: receive buffer overrun")

// EventType is the kind of an Event.
type EventType uint8

// The kinds of events. The kernel sends no event for an expectation's
// update, so there is no EventExpUpdate.
const (
	// EventNew is a flow entering the table: IPCTNL_MSG_CT_NEW with
	// NLM_F_CREATE, on GroupNew. A related flow (the child of an
	// expectation) carries TupleMaster.
	EventNew EventType = iota + 1
	// EventUpdate is a change of a flow: IPCTNL_MSG_CT_NEW without
	// NLM_F_CREATE, on GroupUpdate. It carries the tuples, the status, the
	// timeout, the mark and whatever changed, not every attribute.
	EventUpdate
	// EventDestroy is a flow leaving the table: IPCTNL_MSG_CT_DELETE, on
	// GroupDestroy. It carries the final counters (with
	// net.netfilter.nf_conntrack_acct=1) and start and stop times (with
	// net.netfilter.nf_conntrack_timestamp=1).
	EventDestroy
	// EventExpNew is a new expectation: IPCTNL_MSG_EXP_NEW, on GroupExpNew.
	EventExpNew
	// EventExpDestroy is an expectation removed or used up:
	// IPCTNL_MSG_EXP_DELETE, on GroupExpDestroy.
	EventExpDestroy
)

// String returns the name conntrack -E prints for t, in lower case, such
// as "new" or "exp-destroy", or EventType(N) for an unknown value.
func (t EventType) String() string {
	switch t {
	case EventNew:
		return "new"
	case EventUpdate:
		return "update"
	case EventDestroy:
		return "destroy"
	case EventExpNew:
		return "exp-new"
	case EventExpDestroy:
		return "exp-destroy"
	}
	return "EventType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// Event is one conntrack event.
//
// Events reuses one Event, with its Flow and Expect, for every event: the
// values are valid until the loop body returns. Copy what you keep: *Flow
// and *Expect copy completely, for example f := *ev.Flow.
type Event struct {
	// Type is the kind of event.
	Type EventType
	// Flow is the flow of EventNew, EventUpdate and EventDestroy, and nil
	// otherwise. Attributes the kernel did not send are absent (see Has).
	//
	// Flow.TimestampEvent (CTA_TIMESTAMP_EVENT) is the time the kernel
	// generated the event, in nanoseconds since the Unix epoch. Linux 6.14
	// and later send it for flows created while
	// net.netfilter.nf_conntrack_timestamp was 1; see Time.
	Flow *Flow
	// Expect is the expectation of EventExpNew and EventExpDestroy, and nil
	// otherwise.
	Expect *Expect
	// PortID is the netlink port ID of the socket whose request caused the
	// event (the nlmsg_pid of the event's header): a Create, Update,
	// Delete or Flush of a Conn, or another program's request, such as
	// conntrack -I. It is 0 when the kernel caused the event itself:
	// packets, timeouts, the garbage collector, a ruleset. A port ID
	// names a socket of the event's network namespace while that socket
	// is open; /proc/net/netlink lists it with the socket's inode, which
	// leads to the process. conntrack -E prints it as
	// "[USERSPACE] portid=N".
	PortID uint32
}

// Time returns the time the kernel generated the event
// (CTA_TIMESTAMP_EVENT), and false when the event does not carry it:
// kernels before 6.14, expectation events, and flows created while
// net.netfilter.nf_conntrack_timestamp was 0.
func (e *Event) Time() (time.Time, bool) {
	if e.Flow == nil || !e.Flow.Has(FlowAttrTimestampEvent) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(e.Flow.TimestampEvent)), true
}

// Listener receives conntrack events from the multicast groups it joined,
// on a netlink socket of its own.
//
// # Concurrency and order
//
// Close, Overruns, Dropped, Discarded and ReadBuffer may be called from
// any goroutine at any time, also while Events runs on another. One Events
// loop runs at a time: a second loop started while one runs yields an error
// and ends.
// The loop runs on the goroutine that ranges over it and a Listener starts
// no goroutines, so Close has nothing to wait for, and events are yielded
// in the order the kernel queued them on the socket. For one flow that is
// the order in which the kernel generated them: NEW, then UPDATEs, then
// DESTROY. Deliver them to several workers by hashing the flow (its ID or
// original tuple) to keep that order.
//
// # Losses and resynchronisation
//
// The kernel drops events when the receive buffer is full, and then, until
// the queued events have been read, every further event too. Events reports
// such an overrun with an error matching ErrEventsLost and carries on. It
// yields the error after the events that were already queued when the
// kernel dropped the first one, so a dump started after it reflects every
// change whose event was lost. To keep a table of flows in sync, listen
// before the first dump and dump again after each loss; package
// ctnetlink/mirror does all of this. Flow IDs are 32-bit hashes that collide in large tables, so key the
// table by KeyOf (ID, zone and original tuple), not by ID alone:
//
//	l, err := ctnetlink.Listen(nil)
//	...
//	table := map[ctnetlink.EntryKey]ctnetlink.Flow{}
//	resync := func() error {
//		clear(table)
//		for f, err := range conn.Dump(ctx, nil) {
//			if err != nil {
//				return err
//			}
//			table[ctnetlink.KeyOf(f)] = *f
//		}
//		return nil
//	}
//	if err := resync(); err != nil {
//		...
//	}
//	for ev, err := range l.Events(ctx) {
//		switch {
//		case errors.Is(err, ctnetlink.ErrEventsLost):
//			if err := resync(); err != nil { // events queue meanwhile
//				...
//			}
//		case err != nil:
//			log.Print(err) // the loop ends by itself after a fatal error
//		case ev.Type == ctnetlink.EventDestroy:
//			delete(table, ctnetlink.KeyOf(ev.Flow))
//		default:
//			table[ctnetlink.KeyOf(ev.Flow)] = *ev.Flow // UPDATE carries no counters: merge if needed
//		}
//	}
//
// Events queued during the dump are applied after it; a flow they add
// or remove may already be in the dump's result or missing from it, which
// the map absorbs. A dump of a large table takes long enough for the
// buffer to overrun again: size ReadBuffer for it, or limit how often to
// resynchronise.
//
// # When the kernel sends events
//
// The kernel needs CONFIG_NF_CONNTRACK_EVENTS. The sysctl
// net.netfilter.nf_conntrack_events of the flow's namespace decides which
// flows have events: 0 none (except flows a ruleset assigns events to,
// such as nft ct event set), 1 all of them, and 2, the default since Linux
// 5.19, only the flows created while some socket listened on a conntrack
// group; since Linux 6.3 a listener in any namespace counts. On 2 a flow
// created before the first listener has no events at all, not even its
// DESTROY: an initial dump then shows flows whose end no event will
// report. Set the sysctl to 1 when that matters.
// Listen cannot tell whether events will come: a kernel without events
// accepts the subscription and stays silent.
type Listener struct {
	s      *nfnl.Socket
	rcvbuf int // granted receive buffer, from SO_RCVBUF

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	busy      atomic.Bool
	overruns  atomic.Uint64
	discarded atomic.Uint64
	filter    *Selector // a copy of ListenConfig.Filter, or nil

	// State of the Events loop, owned by the running loop.
	rest   []byte // unread messages of the last datagram
	lost   bool   // an overrun was read and not yet yielded
	budget int    // bytes still to read before the overrun is yielded
	ev     Event
	flow   Flow
	exp    Expect
}

// Listen opens a Listener and joins its multicast groups. Events start
// queueing on the socket at once, so events between Listen and the first
// call of Events are not lost, up to the receive buffer's size.
//
// Errors are *Error with Op "listen": os.ErrPermission without
// CAP_NET_ADMIN, or a failure to enter NetNS or set an option.
func Listen(cfg *ListenConfig) (*Listener, error) {
	var c ListenConfig
	if cfg != nil {
		c = *cfg
	}
	groups := c.Groups
	if len(groups) == 0 {
		groups = defaultGroups
	}
	var mask uint32
	for _, g := range groups {
		if g < GroupNew || g > GroupExpDestroy {
			return nil, &Error{Op: "listen", Err: fmt.Errorf("unknown multicast group %d", uint32(g))}
		}
		mask |= 1 << (g - 1)
	}
	rcvbuf := c.ReadBuffer
	switch {
	case rcvbuf == 0:
		rcvbuf = DefaultListenReadBuffer
	case rcvbuf < 0:
		rcvbuf = 0 // DialSocket keeps the kernel's default
	}
	var filter *Selector
	var prog []bpf.RawInstruction
	if !c.Filter.empty() {
		filter = c.Filter.Clone()
		insns, err := filter.program()
		if err == nil {
			prog, err = bpf.Assemble(insns)
		}
		if err != nil {
			return nil, &Error{Op: "listen", Err: fmt.Errorf("event filter: %w", err)}
		}
	}
	// With a filter, the socket joins the groups once the filter is
	// attached, so that no event arrives unfiltered.
	join := mask
	if prog != nil {
		join = 0
	}
	s, err := nfnl.DialSocket(&nfnl.SocketConfig{NetNS: c.NetNS, ReadBuffer: rcvbuf, Groups: join})
	if err != nil {
		return nil, &Error{Op: "listen", Err: err}
	}
	fail := func(err error) (*Listener, error) {
		s.Close()
		return nil, &Error{Op: "listen", Err: err}
	}
	if prog != nil {
		if err := s.SetBPF(prog); err != nil {
			return fail(fmt.Errorf("attach event filter: %w", err))
		}
		for g := GroupNew; g <= GroupExpDestroy; g++ {
			if mask&(1<<(g-1)) == 0 {
				continue
			}
			if err := s.JoinGroup(uint32(g)); err != nil {
				return fail(fmt.Errorf("join group %d: %w", uint32(g), err))
			}
		}
	}
	if c.ReliableDestroy {
		if err := s.SetOption(netlink.BroadcastError, true); err != nil {
			return fail(fmt.Errorf("set NETLINK_BROADCAST_ERROR: %w", err))
		}
	}
	if c.NoENOBUFS || c.ReliableDestroy {
		if err := s.SetOption(netlink.NoENOBUFS, true); err != nil {
			return fail(fmt.Errorf("set NETLINK_NO_ENOBUFS: %w", err))
		}
	}
	granted, err := s.ReadBuffer()
	if err != nil {
		return fail(fmt.Errorf("read receive buffer size: %w", err))
	}
	return &Listener{s: s, rcvbuf: granted, filter: filter}, nil
}

// Close closes the Listener's socket. A running Events loop, on any
// goroutine, returns promptly with an error that matches net.ErrClosed;
// events it had already read may be yielded before that. Close does not
// wait for the loop to return. Calling Close again does nothing and returns
// nil.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		l.closeErr = l.s.Close()
	})
	return l.closeErr
}

// Overruns returns how many times the kernel reported an overrun of the
// receive buffer (ENOBUFS), which is how many times Events yielded, or is
// about to yield, ErrEventsLost. One overrun stands for one or more lost
// events; Dropped counts the events. It is 0 with NoENOBUFS or
// ReliableDestroy.
func (l *Listener) Overruns() uint64 {
	return l.overruns.Load()
}

// Discarded returns how many events Events read from the socket and did
// not yield because ListenConfig.Filter does not select them. The kernel
// program decides the events the kernel sends on every condition it
// evaluates (see Selector.Program), so the count stays 0 unless the filter
// sets conditions only user space evaluates (reply ports, ICMP fields,
// the zone of one direction, labels, states, helper, Func); it is 0
// without a filter.
func (l *Listener) Discarded() uint64 {
	return l.discarded.Load()
}

// Dropped returns the kernel's count of messages it could not queue on the
// Listener's socket (sk_drops, from SO_MEMINFO, Linux 4.12 and later). It
// counts every lost event, whether or not the kernel reported the overrun,
// so it is the way to see losses with NoENOBUFS; with ReliableDestroy it
// also counts DESTROY events that the kernel retried later. Events that
// ListenConfig.Filter rejects in the kernel are not lost and not counted.
// The kernel's counter is 32 bits wide and wraps.
func (l *Listener) Dropped() (uint32, error) {
	n, err := l.s.Drops()
	if err != nil {
		if l.closed.Load() {
			err = net.ErrClosed
		}
		return 0, &Error{Op: "dropped", Err: err}
	}
	return n, nil
}

// ReadBuffer returns the receive buffer size the kernel granted, as
// SO_RCVBUF reports it when Listen set it: twice the size asked for, or
// twice net.core.rmem_max when SO_RCVBUFFORCE was not allowed and the
// request was larger.
func (l *Listener) ReadBuffer() int {
	return l.rcvbuf
}
