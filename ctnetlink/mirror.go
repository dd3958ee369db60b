package ctnetlink

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults of MirrorConfig.
const (
	// DefaultResyncBackoff is the default MirrorConfig.ResyncBackoff.
	DefaultResyncBackoff = 100 * time.Millisecond
	// DefaultMaxResyncBackoff is the default MirrorConfig.MaxResyncBackoff.
	DefaultMaxResyncBackoff = 10 * time.Second
	// DefaultResyncInterval is the default MirrorConfig.ResyncInterval.
	DefaultResyncInterval = 30 * time.Second
)

// mirrorQueue is how many decoded events wait between the Mirror's reader
// and the goroutine that applies them.
const mirrorQueue = 1024

// mirrorDropCheck is how often a Mirror with ReliableDestroy reads the
// kernel's drop counter.
const mirrorDropCheck = time.Second

// MirrorConfig configures a Mirror. A nil *MirrorConfig means all defaults.
type MirrorConfig struct {
	// NetNS is a file descriptor of the network namespace to mirror, as in
	// Config.NetNS. The default, 0, is the namespace of the calling thread.
	NetNS int

	// Filter selects the flows to mirror. The default, nil, mirrors every
	// flow. Dumps apply it as Dump does; events are checked with
	// Selector.Match. A flow that an update moves out of the selection
	// (a new mark, say) is removed from the mirror, one that it moves in is
	// added. NewMirror keeps a copy; later changes to the filter have no
	// effect.
	Filter *Selector

	// ReadBuffer is the event socket's receive buffer, as
	// ListenConfig.ReadBuffer: 0 asks for DefaultListenReadBuffer. A small
	// buffer overruns more often and makes the mirror resynchronise more;
	// it does not make it wrong.
	ReadBuffer int

	// ReliableDestroy sets ListenConfig.ReliableDestroy on the event
	// socket. The default is false.
	//
	// With it, the kernel retries every DESTROY event it could not queue,
	// so a flow never lingers in the mirror after it ended, even between
	// resynchronisations. The price: the kernel keeps ended flows
	// allocated, and counted against net.netfilter.nf_conntrack_max, until
	// the mirror has read their DESTROY, so a mirror that falls behind
	// (a slow OnChange, say) can fill the table and make the kernel drop
	// new connections. It also turns off the kernel's overrun reports
	// (NETLINK_NO_ENOBUFS), so lost NEW and UPDATE events are no longer
	// announced: the mirror then reads the kernel's drop counter
	// (Listener.Dropped) every second and resynchronises when it grew.
	// Retried DESTROY events count as drops too, so this mode
	// resynchronises after every burst that overran the buffer, as the
	// default mode does.
	ReliableDestroy bool

	// OnChange, if not nil, is called with every change of the mirror, in
	// the order the mirror applies them, on the Mirror's own goroutine.
	// The mirror's content already includes the change when OnChange runs,
	// and the Mirror applies nothing else until it returns: a slow OnChange
	// delays events, which makes the receive buffer overrun and the mirror
	// resynchronise, but loses nothing. OnChange may call the methods that
	// read the mirror (Len, Get, ByID, Range, Stats); it must not call
	// Close or Resync, which wait for the goroutine it runs on (cancel the
	// context instead).
	OnChange func(Change)

	// ResyncBackoff and MaxResyncBackoff bound how soon a resynchronisation
	// follows the previous one when losses repeat. The first loss after a
	// calm period (no resynchronisation for MaxResyncBackoff) is repaired
	// at once; each further one waits twice as long as the last, starting
	// at ResyncBackoff and up to MaxResyncBackoff, counted from the end of
	// the previous resynchronisation. Events keep being applied while a
	// resynchronisation waits. The defaults are DefaultResyncBackoff and
	// DefaultMaxResyncBackoff.
	ResyncBackoff, MaxResyncBackoff time.Duration

	// ResyncInterval is how often to resynchronise when events cannot
	// report every change: see "Flows without events" on Mirror. It does
	// not apply when net.netfilter.nf_conntrack_events was 1 at NewMirror.
	// The default, 0, means DefaultResyncInterval; a negative value turns
	// these resynchronisations off. Resync runs one on demand.
	ResyncInterval time.Duration
}

// ChangeKind is the kind of a Change.
type ChangeKind uint8

// The kinds of changes.
const (
	// ChangeAdded is a flow entering the mirror.
	ChangeAdded ChangeKind = iota + 1
	// ChangeUpdated is a change of a flow in the mirror.
	ChangeUpdated
	// ChangeRemoved is a flow leaving the mirror.
	ChangeRemoved
)

// String returns "added", "updated" or "removed", or ChangeKind(N).
func (k ChangeKind) String() string {
	switch k {
	case ChangeAdded:
		return "added"
	case ChangeUpdated:
		return "updated"
	case ChangeRemoved:
		return "removed"
	}
	return "ChangeKind(" + strconv.FormatUint(uint64(k), 10) + ")"
}

// Change is one change of a Mirror's content.
//
// Per flow (per Entry.Key), changes come in lifecycle order: one
// ChangeAdded, any number of ChangeUpdated, one ChangeRemoved; a flow may
// then be added again. Applying every change to a map keyed by Entry.Key
// gives the mirror's content.
type Change struct {
	// Kind is what happened.
	Kind ChangeKind
	// Entry is the flow after the change; for ChangeRemoved, the last known
	// state, with the final counters when the kernel's DESTROY event
	// carried them.
	Entry Entry
	// Synthetic is true for changes found by a dump rather than reported
	// by an event: those of the initial dump, and those of a
	// resynchronisation, which adds the flows whose NEW was lost, removes
	// those whose DESTROY was lost and updates those whose UPDATE was lost.
	// It is also true for the ChangeAdded and ChangeRemoved pair of a flow
	// whose DESTROY event arrived although the mirror never held it (see
	// "Flows seen only by their end" on Mirror).
	Synthetic bool
}

// Entry is the compact copy of a flow that a Mirror keeps: 152 bytes
// without pointers, where a Flow takes about 630 bytes.
//
// It keeps both tuples (addresses, layer 4 protocol, and ports or ICMP
// type, code and identifier), the id, status, mark, zone and timeout, the
// TCP or SCTP state, the labels, and the counters and start time when the
// kernel sends them (with net.netfilter.nf_conntrack_acct and
// nf_conntrack_timestamp set to 1). It drops the helper, the NAT sequence
// adjustments, the security context, the SYN proxy state, the use count,
// TCP window scales and flags, SCTP verification tags, the stop time, the
// master tuple of a related flow, and zones that apply to one direction
// only (CTA_TUPLE_ZONE).
//
// Every value is the one of the last event or dump that carried it. The
// kernel refreshes the timeout and the counters on every packet without an
// event, so those two are as fresh as the last dump or event of the flow.
// The zero Entry has no flow.
type Entry struct {
	origSrc, origDst, replySrc, replyDst [16]byte
	labels                               [16]byte

	packetsOrig, bytesOrig, packetsReply, bytesReply uint64
	start                                            uint64

	id, status, mark, timeout uint32

	// Ports, or for ICMP and ICMPv6 the identifier in the source port and
	// type<<8|code in the destination port, as the kernel's tuple does.
	origSport, origDport, replySport, replyDport uint16
	zone                                         uint16

	family, proto, state, nlabels uint8
	flags                         entryFlags
}

// entryFlags says which optional values an Entry holds.
type entryFlags uint8

const (
	entryTimeout entryFlags = 1 << iota
	entryState
	entryLabels
	entryCounters
	entryStart
	entryPorts // the tuples have ports (or ICMP fields)

	// entryOptional are the values an UPDATE event may leave out.
	entryOptional = entryTimeout | entryState | entryLabels | entryCounters | entryStart
)

// setFlow fills e from f.
func (e *Entry) setFlow(f *Flow) {
	*e = Entry{
		id:     f.ID,
		status: uint32(f.Status),
		mark:   f.Mark,
		zone:   f.Zone,
		family: f.Family(),
	}
	o, r := &f.TupleOrig, &f.TupleReply
	e.proto = o.Proto.Num
	if !o.Proto.Has(TupleProtoAttrNum) {
		e.proto = r.Proto.Num
	}
	e.origSrc, e.origDst = o.Src().As16(), o.Dst().As16()
	e.replySrc, e.replyDst = r.Src().As16(), r.Dst().As16()
	var ports bool
	e.origSport, e.origDport, ports = tuplePorts(&o.Proto)
	e.replySport, e.replyDport, _ = tuplePorts(&r.Proto)
	if ports {
		e.flags |= entryPorts
	}
	if f.Has(FlowAttrTimeout) {
		e.timeout = f.Timeout
		e.flags |= entryTimeout
	}
	switch {
	case f.ProtoInfo.TCP.Has(ProtoInfoTCPAttrState):
		e.state = uint8(f.ProtoInfo.TCP.State)
		e.flags |= entryState
	case f.ProtoInfo.SCTP.Has(ProtoInfoSCTPAttrSCTPState):
		e.state = uint8(f.ProtoInfo.SCTP.State)
		e.flags |= entryState
	}
	if f.Has(FlowAttrLabels) {
		e.nlabels = uint8(copy(e.labels[:], f.Labels))
		e.flags |= entryLabels
	}
	if f.Has(FlowAttrCountersOrig) || f.Has(FlowAttrCountersReply) {
		e.packetsOrig, e.bytesOrig = f.CountersOrig.Packets, f.CountersOrig.Bytes
		e.packetsReply, e.bytesReply = f.CountersReply.Packets, f.CountersReply.Bytes
		e.flags |= entryCounters
	}
	if f.Timestamp.Has(TimestampAttrStart) {
		e.start = f.Timestamp.Start
		e.flags |= entryStart
	}
}

// tuplePorts returns the ports of p, or the ICMP identifier and type and
// code packed as the kernel does, and whether p has any of them.
func tuplePorts(p *TupleProto) (src, dst uint16, ok bool) {
	switch {
	case p.Has(TupleProtoAttrICMPType) || p.Has(TupleProtoAttrICMPID):
		return p.ICMPID, uint16(p.ICMPType)<<8 | uint16(p.ICMPCode), true
	case p.Has(TupleProtoAttrICMPv6Type) || p.Has(TupleProtoAttrICMPv6ID):
		return p.ICMPv6ID, uint16(p.ICMPv6Type)<<8 | uint16(p.ICMPv6Code), true
	}
	return p.SrcPort, p.DstPort, p.Has(TupleProtoAttrSrcPort) || p.Has(TupleProtoAttrDstPort)
}

// merge applies n, decoded from an event for the same flow, to e: the
// values every event carries, and the optional ones n has.
func (e *Entry) merge(n *Entry) {
	keep := *e
	*e = *n
	e.flags = n.flags | keep.flags&entryOptional
	e.fill(&keep, keep.flags&entryOptional&^n.flags)
}

// fill copies from n the optional values that which names.
func (e *Entry) fill(n *Entry, which entryFlags) {
	which &= n.flags
	if which&entryTimeout != 0 {
		e.timeout = n.timeout
	}
	if which&entryState != 0 {
		e.state = n.state
	}
	if which&entryLabels != 0 {
		e.labels, e.nlabels = n.labels, n.nlabels
	}
	if which&entryCounters != 0 {
		e.packetsOrig, e.bytesOrig, e.packetsReply, e.bytesReply = n.packetsOrig, n.bytesOrig, n.packetsReply, n.bytesReply
	}
	if which&entryStart != 0 {
		e.start = n.start
	}
	e.flags |= which
}

// sameState reports whether e and n differ at most in the values the
// kernel changes without an event: the timeout and the counters.
func (e *Entry) sameState(n *Entry) bool {
	a, b := *e, *n
	a.clearVolatile()
	b.clearVolatile()
	return a == b
}

func (e *Entry) clearVolatile() {
	e.timeout = 0
	e.packetsOrig, e.bytesOrig, e.packetsReply, e.bytesReply = 0, 0, 0, 0
	e.flags &^= entryTimeout | entryCounters
}

// ID returns the flow's id (CTA_ID). Ids are not unique: see EntryKey.
func (e *Entry) ID() uint32 { return e.id }

// EntryKey identifies a flow: its id, zone and original tuple. It is
// comparable, for use as a map key.
//
// The id alone does not identify a flow. The kernel derives it from a
// 32-bit hash of the entry's address and tuple, so ids collide: a table of
// 250,000 flows has about ten pairs of flows that share one. The original
// tuple and zone are unique in the table, and with the id they also tell a
// flow from one created later with the same tuple.
type EntryKey struct {
	src, dst [16]byte
	id       uint32
	sport    uint16
	dport    uint16
	zone     uint16
	proto    uint8
	family   uint8
}

// ID returns the flow id of the key.
func (k EntryKey) ID() uint32 { return k.id }

// Key returns the key that identifies e's flow.
func (e *Entry) Key() EntryKey {
	return EntryKey{
		src: e.origSrc, dst: e.origDst, id: e.id, sport: e.origSport, dport: e.origDport,
		zone: e.zone, proto: e.proto, family: e.family,
	}
}

// KeyOf returns the key of flow f, as Entry.Key would: for example to look
// up, with Mirror.Get, the flow of an event or of a dump.
func KeyOf(f *Flow) EntryKey {
	var e Entry
	e.setFlow(f)
	return e.Key()
}

// sameFlow reports whether e and n are the same flow: Key without building
// it.
func (e *Entry) sameFlow(n *Entry) bool {
	return e.id == n.id && e.zone == n.zone && e.proto == n.proto && e.family == n.family &&
		e.origSport == n.origSport && e.origDport == n.origDport &&
		e.origSrc == n.origSrc && e.origDst == n.origDst
}

// Family returns unix.AF_INET or unix.AF_INET6.
func (e *Entry) Family() uint8 { return e.family }

// Proto returns the layer 4 protocol number.
func (e *Entry) Proto() uint8 { return e.proto }

// Status returns the status bits.
func (e *Entry) Status() Status { return Status(e.status) }

// Mark returns the mark.
func (e *Entry) Mark() uint32 { return e.mark }

// Zone returns the zone, 0 for the default zone.
func (e *Entry) Zone() uint16 { return e.zone }

// Timeout returns the seconds left before the flow expires, as of the last
// event or dump that carried it, and false when none did (a DESTROY
// event).
func (e *Entry) Timeout() (uint32, bool) { return e.timeout, e.flags&entryTimeout != 0 }

// TCPState returns the TCP state of a TCP flow, and false for other
// protocols or when no event or dump carried it.
func (e *Entry) TCPState() (TCPState, bool) {
	return TCPState(e.state), e.proto == unix.IPPROTO_TCP && e.flags&entryState != 0
}

// SCTPState returns the SCTP state of an SCTP flow, and false otherwise.
func (e *Entry) SCTPState() (SCTPState, bool) {
	return SCTPState(e.state), e.proto == unix.IPPROTO_SCTP && e.flags&entryState != 0
}

// Labels returns the connection labels (CTA_LABELS, at most 16 bytes, in
// the kernel's order), and false when the flow has none.
func (e *Entry) Labels() ([]byte, bool) {
	if e.flags&entryLabels == 0 {
		return nil, false
	}
	return append([]byte(nil), e.labels[:e.nlabels]...), true
}

// Counters returns the packet and byte counters of the original and the
// reply direction, and false when the kernel did not send them (it does
// with net.netfilter.nf_conntrack_acct=1).
func (e *Entry) Counters() (orig, reply Counters, ok bool) {
	if e.flags&entryCounters == 0 {
		return orig, reply, false
	}
	orig.SetPackets(e.packetsOrig)
	orig.SetBytes(e.bytesOrig)
	reply.SetPackets(e.packetsReply)
	reply.SetBytes(e.bytesReply)
	return orig, reply, true
}

// Start returns the time the flow was confirmed (CTA_TIMESTAMP_START), and
// false when the kernel did not send it (it does with
// net.netfilter.nf_conntrack_timestamp=1).
func (e *Entry) Start() (time.Time, bool) {
	if e.flags&entryStart == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(e.start)), true
}

// Orig returns the tuple of the original direction.
func (e *Entry) Orig() Tuple {
	return e.tuple(e.origSrc, e.origDst, e.origSport, e.origDport)
}

// Reply returns the tuple of the reply direction.
func (e *Entry) Reply() Tuple {
	return e.tuple(e.replySrc, e.replyDst, e.replySport, e.replyDport)
}

func (e *Entry) tuple(src, dst [16]byte, sport, dport uint16) Tuple {
	var t Tuple
	if e.family == 0 {
		return t // the zero Entry
	}
	addr := func(b [16]byte) netip.Addr {
		a := netip.AddrFrom16(b)
		if e.family == unix.AF_INET {
			a = a.Unmap()
		}
		return a
	}
	t.SetSrc(addr(src))
	t.SetDst(addr(dst))
	t.Proto.SetNum(e.proto)
	if e.flags&entryPorts == 0 {
		return t
	}
	switch e.proto {
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		t.SetICMP(uint8(dport>>8), uint8(dport), sport)
	default:
		t.Proto.SetSrcPort(sport)
		t.Proto.SetDstPort(dport)
	}
	return t
}

// Flow returns the values e holds as a Flow, for example to delete the flow
// with Conn.Delete or to test it with Selector.Match.
func (e *Entry) Flow() Flow {
	var f Flow
	f.SetTupleOrig(e.Orig())
	f.SetTupleReply(e.Reply())
	f.SetID(e.id)
	f.SetStatus(Status(e.status))
	f.SetMark(e.mark)
	if e.zone != 0 {
		f.SetZone(e.zone)
	}
	if e.flags&entryTimeout != 0 {
		f.SetTimeout(e.timeout)
	}
	if e.flags&entryState != 0 {
		switch e.proto {
		case unix.IPPROTO_TCP:
			f.ProtoInfo.TCP.SetState(TCPState(e.state))
		case unix.IPPROTO_SCTP:
			f.ProtoInfo.SCTP.SetState(SCTPState(e.state))
		}
	}
	if l, ok := e.Labels(); ok {
		f.SetLabels(l)
	}
	if o, r, ok := e.Counters(); ok {
		f.SetCountersOrig(o)
		f.SetCountersReply(r)
	}
	if e.flags&entryStart != 0 {
		f.Timestamp.SetStart(e.start)
	}
	return f
}

// MirrorStats are a Mirror's counters.
type MirrorStats struct {
	// Flows is how many flows the mirror holds.
	Flows int
	// Events counts the flow events applied.
	Events uint64
	// Overruns counts the event losses the kernel reported (ErrEventsLost);
	// with ReliableDestroy, the times the kernel's drop counter grew.
	Overruns uint64
	// DecodeErrors counts events that could not be decoded; each is a lost
	// event and leads to a resynchronisation.
	DecodeErrors uint64
	// Unseen counts flows whose DESTROY event arrived although the mirror
	// never held them, because their NEW and UPDATE events were lost: each
	// was emitted as a synthetic ChangeAdded and ChangeRemoved.
	Unseen uint64
	// Resyncs counts the resynchronisations that completed, not counting
	// the initial dump.
	Resyncs uint64
	// ResyncErrors counts the dumps that failed or that the kernel flagged
	// as interrupted; each is retried after a backoff.
	ResyncErrors uint64
	// LastError is the error of the last dump if it failed, nil if it
	// succeeded.
	LastError error
	// LastEventError is the last error of the event socket that the
	// Mirror survived, nil if none: an event it could not decode (counted
	// in DecodeErrors), or, with ReliableDestroy, a failure to read the
	// kernel's drop counter. Each made it resynchronise.
	LastEventError error
	// LastResync is how long the last completed dump took, with the events
	// applied meanwhile: the initial dump, then the last resynchronisation.
	LastResync time.Duration
	// Pending reports that a resynchronisation is running or scheduled.
	Pending bool
	// Silent counts flows of the initial dump that have had no event since,
	// when net.netfilter.nf_conntrack_events was not 1 (see Mirror).
	Silent int
	// Polling reports that the mirror resynchronises every ResyncInterval
	// because events cannot report every change (see Mirror).
	Polling bool
}

// Mirror keeps an in-memory copy of the conntrack table, or of the part a
// Selector selects, and keeps it current from events, repairing it by
// itself after events were lost.
//
// NewMirror subscribes to flow events first and then dumps the table, so
// that no change falls between the dump and the events. Afterwards each
// NEW, UPDATE and DESTROY event updates the copy. Flows are identified by
// EntryKey (id, zone and original tuple) and indexed by id.
// Every change is handed to MirrorConfig.OnChange as a Change, in order.
//
// # Merging a dump with events
//
// Events are read and applied during every dump, so that the receive
// buffer does not fill up while a large table is dumped. A dumped flow and
// an event of the same flow can then arrive in either order, and the dump's
// copy may be older or newer than the event. The Mirror resolves this per
// flow (EntryKey), for the duration of the dump:
//
//   - An event wins over the dump for the values it carries. Events of one
//     flow arrive in order, so the last event applied carries the newest
//     values, and a change after the kernel dumped the flow has an event
//     that arrives after the dump's copy. The dump only fills in what the
//     events left out: UPDATE events carry the TCP state and the labels
//     only when they change, and counters and the start time not at all.
//   - A flow whose DESTROY arrived during the dump is not added back from
//     the dump, whose copy may predate the DESTROY. If the flow is created
//     again with the same id (the kernel derives the id from the entry's
//     address and tuple, so a flow re-created at once may get the old
//     one), its NEW event adds it back.
//   - A flow the mirror held before the dump that neither the dump nor an
//     event during the dump confirmed has ended, and its DESTROY was lost:
//     the Mirror removes it when the dump completes. A dump that fails or
//     that the kernel flags as interrupted removes nothing and is retried.
//   - A flow the dump holds that the mirror did not is added, one whose
//     values differ is updated; differences in the timeout and counters
//     alone, which change without events, update the entry without a
//     Change.
//
// # Losses and resynchronisation
//
// When the kernel reports an overrun (ErrEventsLost), the Mirror applies
// the events queued before the loss and then resynchronises: it dumps the
// table again and merges the dump as above, which emits the missing changes
// with Synthetic set. So every consumer that applies the changes converges
// to the kernel's table once the losses stop. Losses that come while a
// resynchronisation runs make another one follow it. Repeated losses back
// off (MirrorConfig.ResyncBackoff): a dump of a big table costs CPU, and
// during an overload that keeps overrunning the buffer, frequent dumps
// would add to the load without ever catching up. MirrorStats counts
// overruns and resynchronisations.
//
// # Flows seen only by their end
//
// A short-lived flow can start and end between two dumps with its NEW and
// UPDATE events lost in an overrun and its DESTROY delivered. No dump ever
// shows such a flow, but its DESTROY carries its tuples, status, mark and,
// with net.netfilter.nf_conntrack_acct=1, its final counters. The Mirror
// then emits the flow as a ChangeAdded immediately followed by a
// ChangeRemoved, both with Synthetic set and the DESTROY's values, and
// counts it in MirrorStats.Unseen; the flow is in the mirror only while
// OnChange handles the ChangeAdded. So OnChange sees every flow whose
// DESTROY reached the Mirror. With MirrorConfig.ReliableDestroy the kernel
// delivers every DESTROY, so OnChange sees every flow that ended while the
// Mirror ran; without it, a flow whose events were all lost leaves no trace.
// A DESTROY of a flow the Mirror removed recently (one that a dump found
// gone before its DESTROY arrived, or a DESTROY the kernel sent again) is
// recognised and changes nothing.
//
// A hash table resize (writing net.netfilter.nf_conntrack_buckets) during
// a dump can make the kernel skip flows without flagging the dump; the
// Mirror then removes them and adds them back at the next
// resynchronisation or event.
//
// # Flows without events
//
// The sysctl net.netfilter.nf_conntrack_events decides, when a flow is
// created, whether it will ever have events. With 1 it will. With 2, the
// default since Linux 5.19, only if some socket listened for conntrack
// events at that moment: in any network namespace of the host since Linux
// 6.3 (and the 6.1 and 6.2 stable updates of March 2023), in the flow's
// namespace before. A flow created while nobody listened never has
// events, not even its DESTROY, so a mirror started after it would keep
// it after it ended. With 0 no flow has events unless a ruleset asks for
// them (nft ct event set).
//
// So when the sysctl is not 1 at NewMirror (or cannot be read), flows of
// the initial dump are counted as silent until they have an event, and
// while any is left the Mirror resynchronises every ResyncInterval. With 0,
// or without the sysctl (a kernel built without
// CONFIG_NF_CONNTRACK_EVENTS), it resynchronises every ResyncInterval
// always, which makes it a poller. Set the sysctl to 1 before creating the
// Mirror to avoid both. Diagnose explains the namespace's settings.
//
// # Concurrency
//
// Len, Get, Range, Stats, Resync, Err and Done may be called from any
// goroutine at any time; Close too, except from OnChange. Reads take a
// read lock of the table and see it between two changes; Range holds the
// lock for the whole iteration, which delays the Mirror's updates (and can
// make the receive buffer overrun), so keep its loop body short. The
// Mirror runs two goroutines: one reads events and one applies them, runs
// the dumps and calls OnChange, so changes are applied and delivered one at
// a time, in order. Close and the cancellation of NewMirror's context stop
// both and release the sockets.
//
// # Memory
//
// Each flow takes one Entry (152 bytes) plus 16 bytes of bookkeeping in
// one slice without pointers, which the garbage collector does not scan,
// and a slot in the index map from id to position. A mirror of 250,000
// flows takes about 210 bytes of heap per flow (BenchmarkMirror250k),
// against about 670 for a slice of Flow. The slice shrinks after a
// resynchronisation finds the table at a quarter of its capacity.
type Mirror struct {
	cfg    MirrorConfig
	conn   *Conn
	l      *Listener
	cancel context.CancelFunc
	done   chan struct{}
	evc    chan mirrorEvent
	reqc   chan chan error
	closed atomic.Bool

	mu    sync.RWMutex
	slots []mirrorSlot
	index map[uint32]int32 // id to the first slot of that id
	stats MirrorStats      // written by the run goroutine under mu
	err   error

	// Owned by the run goroutine.
	gen        uint32
	window     bool                  // a dump is being merged
	destroyed  map[EntryKey]struct{} // flows that left during the dump
	gone       map[EntryKey]struct{} // flows that left the mirror recently
	goneOld    map[EntryKey]struct{} // the previous generation of gone
	pending    bool                  // a resynchronisation is scheduled
	again      bool                  // a loss happened during the dump
	due        time.Time
	backoff    time.Duration
	lastEnd    time.Time
	stopped    bool // the event socket failed
	mutable    bool // the filter tests values that change (mark, status)
	events     int  // net.netfilter.nf_conntrack_events at NewMirror, -1 unknown
	nextPoll   time.Time
	nextDrops  time.Time
	drops      uint32
	dropsKnown bool
}

// mirrorSlot is a mirrored flow with the merge bookkeeping.
type mirrorSlot struct {
	Entry
	gen    uint32     // the last dump or event during a dump that confirmed it
	evGen  uint32     // the last dump during which an event touched it
	next   int32      // the next slot with the same id, or -1
	evMask entryFlags // optional values events set during dump evGen
	silent bool       // from the initial dump, no event since
}

// mirrorEvent is what the reader hands to the run goroutine.
type mirrorEvent struct {
	kind  mirrorEventKind
	match bool // the flow passes the filter
	e     Entry
	err   error
}

type mirrorEventKind uint8

const (
	mirrorNew mirrorEventKind = iota + 1
	mirrorUpdate
	mirrorDestroy
	mirrorLost  // an overrun
	mirrorBad   // an event that did not decode
	mirrorFatal // the stream ended
)

// NewMirror starts a Mirror: it subscribes to flow events, dumps the table,
// and returns once the initial dump is merged, with OnChange called for
// every flow of it. ctx bounds the Mirror's life: cancelling it stops the
// Mirror as Close does, and Err then returns ctx's error.
//
// It needs CAP_NET_ADMIN, and CAP_SYS_ADMIN for another namespace. Errors
// are those of Dial, Listen and Dump, and with ReliableDestroy an *Error
// with Op "mirror" when the kernel's drop counter cannot be read
// (Listener.Dropped), without which lost events would go unseen.
func NewMirror(ctx context.Context, cfg *MirrorConfig) (*Mirror, error) {
	var c MirrorConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Filter != nil {
		c.Filter = c.Filter.clone()
	}
	if c.ResyncBackoff <= 0 {
		c.ResyncBackoff = DefaultResyncBackoff
	}
	if c.MaxResyncBackoff <= 0 {
		c.MaxResyncBackoff = DefaultMaxResyncBackoff
	}
	c.MaxResyncBackoff = max(c.MaxResyncBackoff, c.ResyncBackoff)
	if c.ResyncInterval == 0 {
		c.ResyncInterval = DefaultResyncInterval
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := Dial(&Config{NetNS: c.NetNS})
	if err != nil {
		return nil, err
	}
	l, err := Listen(&ListenConfig{NetNS: c.NetNS, ReadBuffer: c.ReadBuffer, ReliableDestroy: c.ReliableDestroy})
	if err != nil {
		conn.Close()
		return nil, err
	}
	m := &Mirror{
		cfg:       c,
		conn:      conn,
		l:         l,
		done:      make(chan struct{}),
		evc:       make(chan mirrorEvent, mirrorQueue),
		reqc:      make(chan chan error),
		index:     map[uint32]int32{},
		destroyed: map[EntryKey]struct{}{},
		events:    -1,
	}
	if c.ReliableDestroy {
		// Drops from now on stand for lost events. Without the counter
		// (before Linux 4.12) the losses would go unseen.
		n, err := l.Dropped()
		if err != nil {
			l.Close()
			conn.Close()
			return nil, &Error{Op: "mirror", Err: fmt.Errorf("ReliableDestroy needs the kernel's drop counter: %w", err)}
		}
		m.drops, m.dropsKnown = n, true
	}
	if f := c.Filter; f != nil {
		m.mutable = f.Mark.set() || f.Status.set() || f.userSpaceOnly()
	}
	if v, err := readSysctlInt(c.NetNS, sysctlEvents); err == nil {
		m.events = v
	}
	if c.Filter == nil {
		// Size the table once rather than grow it through the dump.
		if st, err := conn.Stats(ctx); err == nil {
			n := int(st.Entries) + int(st.Entries)/8 + 64
			m.slots = make([]mirrorSlot, 0, n)
			m.index = make(map[uint32]int32, n)
		}
	}
	var mctx context.Context
	mctx, m.cancel = context.WithCancel(ctx)
	ready := make(chan error, 1)
	go m.run(mctx, ready)
	if err := <-ready; err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close stops the Mirror, waits for its goroutines to return and closes its
// sockets. The content stays readable. Calling Close again does nothing.
// It must not be called from OnChange.
func (m *Mirror) Close() error {
	m.closed.Store(true)
	m.cancel()
	<-m.done
	return nil
}

// Done returns a channel that is closed once the Mirror has stopped and
// released its sockets: after Close, after its context was cancelled, or
// after its event socket failed.
func (m *Mirror) Done() <-chan struct{} { return m.done }

// Err returns why the Mirror stopped: nil while it runs and after Close,
// the context's error after a cancellation, or the failure of its event
// socket. The content is then no longer updated.
func (m *Mirror) Err() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.err
}

// Len returns how many flows the mirror holds.
func (m *Mirror) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.slots)
}

// Get returns the entry of the flow with key k, and false when the mirror
// has no such flow.
func (m *Mirror) Get(k EntryKey) (Entry, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, ok := m.index[k.id]
	for ok && i >= 0 {
		if s := &m.slots[i]; s.Key() == k {
			return s.Entry, true
		}
		i = m.slots[i].next
	}
	return Entry{}, false
}

// ByID returns the entries of the flows with the given id: none, one, or,
// rarely, more (see EntryKey).
func (m *Mirror) ByID(id uint32) []Entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Entry
	i, ok := m.index[id]
	for ok && i >= 0 {
		out = append(out, m.slots[i].Entry)
		i = m.slots[i].next
	}
	return out
}

// Range calls yield for every flow of the mirror, in no particular order,
// until yield returns false. The *Entry is valid only during the call:
// copy it to keep it. Range is an iter.Seq, so for e := range m.Range works.
//
// Range holds the table's read lock throughout, so the content does not
// change during the iteration. The loop body must not call other methods of
// the Mirror (a waiting update would deadlock it), and should be short: the
// Mirror applies no event until Range returns.
func (m *Mirror) Range(yield func(*Entry) bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for i := range m.slots {
		if !yield(&m.slots[i].Entry) {
			return
		}
	}
}

// Stats returns the Mirror's counters.
func (m *Mirror) Stats() MirrorStats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := m.stats
	st.Flows = len(m.slots)
	st.Polling = m.polling()
	return st
}

var errMirrorStopped = errors.New("mirror stopped")

// Resync dumps the table and merges it now, whatever the backoff, and
// returns once that is done, with the dump's error. After a successful
// Resync, flows that ended before the call are gone from the mirror and
// flows that lived through it are in it, whatever events were lost before.
// Use it to reconcile on a schedule of your own. It must not be called
// from OnChange.
func (m *Mirror) Resync(ctx context.Context) error {
	req := make(chan error, 1)
	stopped := func() error {
		if err := m.Err(); err != nil {
			return &Error{Op: "resync", Err: err}
		}
		return &Error{Op: "resync", Err: errMirrorStopped}
	}
	select {
	case m.reqc <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return stopped()
	}
	select {
	case err := <-req:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return stopped()
	}
}

// setErr records why the Mirror stopped, unless Close stopped it.
func (m *Mirror) setErr(err error) {
	if m.closed.Load() {
		return
	}
	m.mu.Lock()
	if m.err == nil {
		m.err = err
	}
	m.mu.Unlock()
}

// run is the Mirror's main goroutine. It starts the reader, merges the
// initial dump, and then applies events and runs resynchronisations until
// ctx ends or the event socket fails.
func (m *Mirror) run(ctx context.Context, ready chan<- error) {
	var reader sync.WaitGroup
	reader.Add(1)
	go func() {
		defer reader.Done()
		m.read(ctx)
	}()
	defer func() {
		m.cancel()
		m.l.Close()
		reader.Wait()
		m.conn.Close()
		close(m.done)
	}()

	now := time.Now()
	m.nextPoll = now.Add(m.cfg.ResyncInterval)
	m.nextDrops = now.Add(mirrorDropCheck)
	err := m.resync(ctx, true)
	if errors.Is(err, ErrDumpInterrupted) {
		// Every flow was delivered; the next resynchronisation settles
		// what the interruption may have missed.
		err = nil
	}
	if err == nil {
		err = ctx.Err()
	}
	ready <- err
	if err != nil {
		m.setErr(err)
		return
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var armed time.Time
	for {
		if wake := m.nextWake(); !wake.Equal(armed) {
			armed = wake
			if wake.IsZero() {
				timer.Stop()
			} else {
				timer.Reset(time.Until(wake))
			}
		}
		select {
		case <-ctx.Done():
			m.setErr(ctx.Err())
			return
		case ev := <-m.evc:
			if !m.handle(&ev) {
				return
			}
		case req := <-m.reqc:
			req <- m.resync(ctx, false)
			if m.stopped {
				return
			}
		case <-timer.C:
			armed = time.Time{}
			if !m.tick(ctx, time.Now()) {
				return
			}
		}
	}
}

// polling reports whether events cannot be trusted to report every change,
// so that the Mirror resynchronises every ResyncInterval.
func (m *Mirror) polling() bool {
	if m.cfg.ResyncInterval < 0 {
		return false
	}
	switch m.events {
	case 1:
		return false
	case 2:
		return m.stats.Silent > 0
	}
	return true
}

// nextWake returns when the run loop has timed work to do, or the zero
// Time.
func (m *Mirror) nextWake() time.Time {
	var t time.Time
	earliest := func(u time.Time) {
		if t.IsZero() || u.Before(t) {
			t = u
		}
	}
	if m.pending {
		earliest(m.due)
	}
	if m.polling() {
		earliest(m.nextPoll)
	}
	if m.cfg.ReliableDestroy {
		earliest(m.nextDrops)
	}
	return t
}

// tick does the timed work that is due. It returns false when the Mirror
// must stop.
func (m *Mirror) tick(ctx context.Context, now time.Time) bool {
	if m.cfg.ReliableDestroy && !now.Before(m.nextDrops) {
		m.nextDrops = now.Add(mirrorDropCheck)
		n, err := m.l.Dropped()
		switch {
		case err != nil:
			// Losses cannot be seen now: assume one, so that a dump
			// repairs whatever was lost, and say why.
			m.mu.Lock()
			m.stats.LastEventError = err
			m.mu.Unlock()
			m.dropsKnown = false
			m.schedule(now)
		case m.dropsKnown && n != m.drops:
			m.mu.Lock()
			m.stats.Overruns++
			m.mu.Unlock()
			m.schedule(now)
		}
		if err == nil {
			m.drops, m.dropsKnown = n, true
		}
	}
	if m.polling() && !now.Before(m.nextPoll) {
		if !m.pending {
			m.pending, m.due = true, now
		}
	}
	if m.pending && !now.Before(m.due) {
		m.resync(ctx, false)
		if ctx.Err() != nil {
			m.setErr(ctx.Err())
			return false
		}
		if m.stopped {
			return false
		}
	}
	return true
}

// schedule asks for a resynchronisation after a loss, with backoff.
func (m *Mirror) schedule(now time.Time) {
	if m.window {
		m.again = true
		return
	}
	if m.pending {
		return
	}
	switch {
	case m.lastEnd.IsZero() || now.Sub(m.lastEnd) >= m.cfg.MaxResyncBackoff:
		m.backoff = 0
	case m.backoff == 0:
		m.backoff = m.cfg.ResyncBackoff
	default:
		m.backoff = min(2*m.backoff, m.cfg.MaxResyncBackoff)
	}
	m.pending, m.due = true, m.lastEnd.Add(m.backoff)
	m.mu.Lock()
	m.stats.Pending = true
	m.mu.Unlock()
}

var errMirrorFatal = errors.New("event socket failed")

// resync dumps the table and merges it into the mirror.
func (m *Mirror) resync(ctx context.Context, initial bool) error {
	start := time.Now()
	m.pending, m.again = false, false
	m.gen++
	cur := m.gen
	m.window = true
	m.mu.Lock()
	m.stats.Pending = true
	m.mu.Unlock()

	var err error
	n := 0
	for f, derr := range m.conn.Dump(ctx, m.cfg.Filter) {
		if derr != nil {
			err = derr
			break
		}
		var e Entry
		e.setFlow(f)
		m.fromDump(&e, cur, initial)
		// Apply the events queued meanwhile, so that the receive buffer
		// keeps draining during a long dump.
		if n++; n%64 == 0 && !m.drain() {
			err = errMirrorFatal
			break
		}
	}
	if err == nil && !m.drain() {
		err = errMirrorFatal
	}
	if err == nil {
		m.sweep(cur)
	}
	m.window = false
	if len(m.destroyed) > 4096 {
		m.destroyed = map[EntryKey]struct{}{}
	} else {
		clear(m.destroyed)
	}

	end := time.Now()
	m.lastEnd = end
	m.nextPoll = end.Add(m.cfg.ResyncInterval)
	if err == nil {
		m.shrink()
	}
	m.mu.Lock()
	switch {
	case err == nil:
		m.stats.LastResync = end.Sub(start)
		m.stats.LastError = nil
		if !initial {
			m.stats.Resyncs++
		}
	case err != errMirrorFatal && ctx.Err() == nil:
		m.stats.ResyncErrors++
		m.stats.LastError = err
	}
	m.mu.Unlock()
	if (err != nil || m.again) && err != errMirrorFatal && ctx.Err() == nil {
		m.schedule(end)
	}
	m.mu.Lock()
	m.stats.Pending = m.pending
	m.mu.Unlock()
	if err == errMirrorFatal {
		if cause := m.Err(); cause != nil {
			return &Error{Op: "resync", Err: cause}
		}
		return &Error{Op: "resync", Err: errMirrorFatal}
	}
	return err
}

// drain applies the events waiting in the queue without blocking. It
// returns false when the event socket failed.
func (m *Mirror) drain() bool {
	for range cap(m.evc) {
		select {
		case ev := <-m.evc:
			if !m.handle(&ev) {
				return false
			}
		default:
			return true
		}
	}
	return true
}

// emit hands a change to OnChange.
func (m *Mirror) emit(c Change) {
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(c)
	}
}

// handle applies one record of the reader. It returns false when the event
// socket failed.
func (m *Mirror) handle(ev *mirrorEvent) bool {
	switch ev.kind {
	case mirrorLost:
		m.mu.Lock()
		m.stats.Overruns++
		m.mu.Unlock()
		m.schedule(time.Now())
	case mirrorBad:
		m.mu.Lock()
		m.stats.DecodeErrors++
		m.stats.LastEventError = ev.err
		m.mu.Unlock()
		m.schedule(time.Now())
	case mirrorFatal:
		m.setErr(ev.err)
		m.stopped = true
		return false
	case mirrorDestroy:
		m.destroy(&ev.e, ev.match)
	default:
		if ev.match {
			m.upsert(&ev.e)
		} else {
			m.leave(&ev.e, m.mutable)
		}
	}
	return true
}

// upsert applies a NEW or UPDATE event of a flow the filter selects.
func (m *Mirror) upsert(e *Entry) {
	m.mu.Lock()
	kind := ChangeUpdated
	var s *mirrorSlot
	if i := m.findLocked(e); i >= 0 {
		s = &m.slots[i]
		s.merge(e)
		if s.silent {
			s.silent = false
			m.stats.Silent--
		}
	} else {
		s = m.insertLocked(e)
		kind = ChangeAdded
		m.revive(e.Key())
	}
	if m.window {
		s.gen = m.gen
		if s.evGen != m.gen {
			s.evGen, s.evMask = m.gen, 0
		}
		s.evMask |= e.flags & entryOptional
	}
	out := s.Entry
	m.stats.Events++
	m.mu.Unlock()
	m.emit(Change{Kind: kind, Entry: out})
}

// leave applies an event of a flow the filter no longer selects. During a
// dump, block keeps the dump from adding the flow back.
func (m *Mirror) leave(e *Entry, block bool) {
	if m.window && block {
		m.destroyed[e.Key()] = struct{}{}
	}
	m.mu.Lock()
	i := m.findLocked(e)
	ok := i >= 0
	var out Entry
	if ok {
		out = m.slots[i].Entry
		m.removeAtLocked(i)
	}
	m.stats.Events++
	m.mu.Unlock()
	if ok {
		m.forget(out.Key())
		out.merge(e)
		m.emit(Change{Kind: ChangeRemoved, Entry: out})
	}
}

// destroy applies a DESTROY event. match reports that the filter selects
// the flow.
//
// A flow the mirror does not hold, that the filter selects and that the
// mirror did not remove recently, had its NEW and UPDATE events lost: the
// flow lived and ended unseen. destroy emits it as a synthetic ChangeAdded
// followed by a synthetic ChangeRemoved with the DESTROY's values, so that
// OnChange sees every flow whose DESTROY arrived.
func (m *Mirror) destroy(e *Entry, match bool) {
	k := e.Key()
	if m.window {
		m.destroyed[k] = struct{}{}
	}
	m.mu.Lock()
	m.stats.Events++
	if i := m.findLocked(e); i >= 0 {
		out := m.slots[i].Entry
		m.removeAtLocked(i)
		m.mu.Unlock()
		m.forget(k)
		out.merge(e)
		m.emit(Change{Kind: ChangeRemoved, Entry: out})
		return
	}
	if !match || m.wasRemoved(k) {
		m.mu.Unlock()
		return
	}
	m.stats.Unseen++
	s := m.insertLocked(e)
	s.gen = m.gen
	out := s.Entry
	m.mu.Unlock()
	m.emit(Change{Kind: ChangeAdded, Entry: out, Synthetic: true})
	m.mu.Lock()
	if i := m.findLocked(e); i >= 0 {
		m.removeAtLocked(i)
	}
	m.mu.Unlock()
	m.forget(k)
	m.emit(Change{Kind: ChangeRemoved, Entry: out, Synthetic: true})
}

// mirrorGone is how many removed flows a Mirror remembers per generation
// of its gone sets, so that a late or repeated DESTROY of a flow it already
// removed is not taken for a flow it never saw.
const mirrorGone = 1 << 14

// forget records that the flow with key k left the mirror. The caller does
// not hold mu.
func (m *Mirror) forget(k EntryKey) {
	if m.gone == nil {
		m.gone, m.goneOld = map[EntryKey]struct{}{}, map[EntryKey]struct{}{}
	}
	if len(m.gone) >= mirrorGone {
		m.goneOld, m.gone = m.gone, m.goneOld
		clear(m.gone)
	}
	m.gone[k] = struct{}{}
}

// wasRemoved reports whether the flow with key k left the mirror recently.
func (m *Mirror) wasRemoved(k EntryKey) bool {
	if _, ok := m.gone[k]; ok {
		return true
	}
	_, ok := m.goneOld[k]
	return ok
}

// revive forgets that the flow with key k left the mirror: it is back.
func (m *Mirror) revive(k EntryKey) {
	if len(m.gone) > 0 || len(m.goneOld) > 0 {
		delete(m.gone, k)
		delete(m.goneOld, k)
	}
}

// fromDump merges one flow of dump cur.
func (m *Mirror) fromDump(e *Entry, cur uint32, initial bool) {
	if len(m.destroyed) > 0 {
		if _, gone := m.destroyed[e.Key()]; gone {
			return
		}
	}
	m.mu.Lock()
	i := m.findLocked(e)
	if i < 0 {
		s := m.insertLocked(e)
		s.gen = cur
		m.revive(e.Key())
		if initial && m.events != 1 {
			s.silent = true
			m.stats.Silent++
		}
		out := s.Entry
		m.mu.Unlock()
		m.emit(Change{Kind: ChangeAdded, Entry: out, Synthetic: true})
		return
	}
	s := &m.slots[i]
	before := s.Entry
	if s.evGen == cur {
		// Events during this dump carried newer values: the dump only
		// fills in what they left out.
		s.fill(e, e.flags&entryOptional&^s.evMask)
	} else {
		s.Entry = *e
	}
	s.gen = cur
	changed := !before.sameState(&s.Entry)
	out := s.Entry
	m.mu.Unlock()
	if changed {
		m.emit(Change{Kind: ChangeUpdated, Entry: out, Synthetic: true})
	}
}

// sweep removes the flows that dump cur did not confirm.
func (m *Mirror) sweep(cur uint32) {
	// Backwards, so that the entry a removal moves into place was
	// already checked.
	for i := len(m.slots) - 1; i >= 0; i-- {
		if m.slots[i].gen == cur {
			continue
		}
		m.mu.Lock()
		out := m.slots[i].Entry
		m.removeAtLocked(i)
		m.mu.Unlock()
		m.forget(out.Key())
		m.emit(Change{Kind: ChangeRemoved, Entry: out, Synthetic: true})
	}
}

// findLocked returns the position of e's flow in the table, or -1. The
// caller holds mu.
func (m *Mirror) findLocked(e *Entry) int {
	i, ok := m.index[e.id]
	for ok && i >= 0 {
		if m.slots[i].sameFlow(e) {
			return int(i)
		}
		i = m.slots[i].next
	}
	return -1
}

// insertLocked appends e to the table, first in the chain of its id. The
// caller holds mu.
func (m *Mirror) insertLocked(e *Entry) *mirrorSlot {
	next := int32(-1)
	if i, ok := m.index[e.id]; ok {
		next = i
	}
	m.index[e.id] = int32(len(m.slots))
	m.slots = append(m.slots, mirrorSlot{Entry: *e, next: next})
	return &m.slots[len(m.slots)-1]
}

// removeAtLocked removes the entry at i, moving the last entry into its
// place. The caller holds mu.
func (m *Mirror) removeAtLocked(i int) {
	if m.slots[i].silent {
		m.stats.Silent--
	}
	m.relinkLocked(i, m.slots[i].next)
	last := len(m.slots) - 1
	if i != last {
		m.relinkLocked(last, int32(i))
		m.slots[i] = m.slots[last]
	}
	m.slots = m.slots[:last]
}

// relinkLocked makes what points at slot from, the index or the previous
// slot of the same id, point at to instead; to -1 unlinks from. The caller
// holds mu.
func (m *Mirror) relinkLocked(from int, to int32) {
	id := m.slots[from].id
	i, ok := m.index[id]
	if !ok {
		return
	}
	if int(i) == from {
		if to < 0 {
			delete(m.index, id)
		} else {
			m.index[id] = to
		}
		return
	}
	for ; i >= 0; i = m.slots[i].next {
		if int(m.slots[i].next) == from {
			m.slots[i].next = to
			return
		}
	}
}

// shrink reallocates the table when it uses less than a quarter of its
// capacity. Go maps never shrink, so the index is rebuilt too.
func (m *Mirror) shrink() {
	n := len(m.slots)
	if c := cap(m.slots); c < 4096 || n >= c/4 {
		return
	}
	slots := make([]mirrorSlot, n, n+n/4+64)
	copy(slots, m.slots)
	index := make(map[uint32]int32, cap(slots))
	for i := range slots {
		slots[i].next = -1
		if j, ok := index[slots[i].id]; ok {
			slots[i].next = j
		}
		index[slots[i].id] = int32(i)
	}
	m.mu.Lock()
	m.slots, m.index = slots, index
	m.mu.Unlock()
}

// read is the reader goroutine: it decodes events into compact records for
// the run goroutine, in the order the kernel queued them.
func (m *Mirror) read(ctx context.Context) {
	var last error
	for ev, err := range m.l.Events(ctx) {
		var r mirrorEvent
		switch {
		case err == nil:
			if ev.Flow == nil {
				continue
			}
			switch ev.Type {
			case EventNew:
				r.kind = mirrorNew
			case EventUpdate:
				r.kind = mirrorUpdate
			case EventDestroy:
				r.kind = mirrorDestroy
			default:
				continue
			}
			r.match = m.cfg.Filter.Match(ev.Flow)
			r.e.setFlow(ev.Flow)
			last = nil
		case errors.Is(err, ErrEventsLost):
			r.kind = mirrorLost
		default:
			if ctx.Err() != nil {
				return
			}
			// A message that does not decode is a lost event; a failed
			// socket ends the stream right after it.
			r.kind, r.err, last = mirrorBad, err, err
		}
		select {
		case m.evc <- r:
		case <-ctx.Done():
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	if last == nil {
		last = &Error{Op: "events", Err: errors.New("event stream ended")}
	}
	select {
	case m.evc <- mirrorEvent{kind: mirrorFatal, err: last}:
	case <-ctx.Done():
	}
}
