package mirror

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// Entry is the compact copy of a flow that a Mirror keeps: 152 bytes
// without pointers, where a ctnetlink.Flow takes about 630 bytes. An Entry
// is a value: copies are independent and safe for concurrent use.
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
	packetsOrig, bytesOrig, packetsReply, bytesReply uint64
	start                                            uint64

	// key holds the id, zone, family, protocol and original tuple.
	key                ctnetlink.EntryKey
	replySrc, replyDst [16]byte
	labels             [16]byte

	status, mark, timeout uint32

	// Ports, or for ICMP and ICMPv6 the identifier in the source port and
	// type<<8|code in the destination port, as the kernel's tuple does.
	replySport, replyDport uint16

	state, nlabels uint8
	flags          entryFlags
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
func (e *Entry) setFlow(f *ctnetlink.Flow) {
	*e = Entry{
		key:    ctnetlink.KeyOf(f),
		status: uint32(f.Status),
		mark:   f.Mark,
	}
	o, r := &f.TupleOrig, &f.TupleReply
	e.replySrc, e.replyDst = r.Src().As16(), r.Dst().As16()
	e.replySport, e.replyDport, _ = ctnetlink.TuplePorts(&r.Proto)
	if _, _, ports := ctnetlink.TuplePorts(&o.Proto); ports {
		e.flags |= entryPorts
	}
	if f.Has(ctnetlink.FlowAttrTimeout) {
		e.timeout = f.Timeout
		e.flags |= entryTimeout
	}
	switch {
	case f.ProtoInfo.TCP.Has(ctnetlink.ProtoInfoTCPAttrState):
		e.state = uint8(f.ProtoInfo.TCP.State)
		e.flags |= entryState
	case f.ProtoInfo.SCTP.Has(ctnetlink.ProtoInfoSCTPAttrSCTPState):
		e.state = uint8(f.ProtoInfo.SCTP.State)
		e.flags |= entryState
	}
	if f.Has(ctnetlink.FlowAttrLabels) {
		e.nlabels = uint8(copy(e.labels[:], f.Labels))
		e.flags |= entryLabels
	}
	if f.Has(ctnetlink.FlowAttrCountersOrig) || f.Has(ctnetlink.FlowAttrCountersReply) {
		e.packetsOrig, e.bytesOrig = f.CountersOrig.Packets, f.CountersOrig.Bytes
		e.packetsReply, e.bytesReply = f.CountersReply.Packets, f.CountersReply.Bytes
		e.flags |= entryCounters
	}
	if f.Timestamp.Has(ctnetlink.TimestampAttrStart) {
		e.start = f.Timestamp.Start
		e.flags |= entryStart
	}
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

// sameCounters reports whether e and n have the same counters, or both
// none.
func (e *Entry) sameCounters(n *Entry) bool {
	return e.flags&entryCounters == n.flags&entryCounters &&
		e.packetsOrig == n.packetsOrig && e.bytesOrig == n.bytesOrig &&
		e.packetsReply == n.packetsReply && e.bytesReply == n.bytesReply
}

// ID returns the flow's id (CTA_ID). Ids are not unique: see
// ctnetlink.EntryKey.
func (e *Entry) ID() uint32 { return e.key.ID() }

// Key returns the key that identifies e's flow, the one ctnetlink.KeyOf
// returns for the flow.
func (e *Entry) Key() ctnetlink.EntryKey { return e.key }

// Family returns unix.AF_INET or unix.AF_INET6.
func (e *Entry) Family() uint8 { return e.key.Family() }

// Proto returns the layer 4 protocol number.
func (e *Entry) Proto() uint8 { return e.key.Proto() }

// Status returns the status bits.
func (e *Entry) Status() ctnetlink.Status { return ctnetlink.Status(e.status) }

// Mark returns the mark.
func (e *Entry) Mark() uint32 { return e.mark }

// Zone returns the zone, 0 for the default zone.
func (e *Entry) Zone() uint16 { return e.key.Zone() }

// Timeout returns the seconds left before the flow expires, as of the last
// event or dump that carried it, and false when none did (a DESTROY
// event).
func (e *Entry) Timeout() (uint32, bool) { return e.timeout, e.flags&entryTimeout != 0 }

// TCPState returns the TCP state of a TCP flow, and false for other
// protocols or when no event or dump carried it.
func (e *Entry) TCPState() (ctnetlink.TCPState, bool) {
	return ctnetlink.TCPState(e.state), e.Proto() == unix.IPPROTO_TCP && e.flags&entryState != 0
}

// SCTPState returns the SCTP state of an SCTP flow, and false otherwise.
func (e *Entry) SCTPState() (ctnetlink.SCTPState, bool) {
	return ctnetlink.SCTPState(e.state), e.Proto() == unix.IPPROTO_SCTP && e.flags&entryState != 0
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
func (e *Entry) Counters() (orig, reply ctnetlink.Counters, ok bool) {
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
func (e *Entry) Orig() ctnetlink.Tuple {
	sport, dport := e.key.Ports()
	return e.tuple(e.key.Src(), e.key.Dst(), sport, dport)
}

// Reply returns the tuple of the reply direction.
func (e *Entry) Reply() ctnetlink.Tuple {
	return e.tuple(e.addr(e.replySrc), e.addr(e.replyDst), e.replySport, e.replyDport)
}

func (e *Entry) addr(b [16]byte) netip.Addr {
	a := netip.AddrFrom16(b)
	if e.Family() == unix.AF_INET {
		a = a.Unmap()
	}
	return a
}

func (e *Entry) tuple(src, dst netip.Addr, sport, dport uint16) ctnetlink.Tuple {
	var t ctnetlink.Tuple
	if e.Family() == 0 {
		return t // the zero Entry
	}
	t.SetSrc(src)
	t.SetDst(dst)
	t.Proto.SetNum(e.Proto())
	if e.flags&entryPorts == 0 {
		return t
	}
	switch e.Proto() {
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		t.SetICMP(uint8(dport>>8), uint8(dport), sport)
	default:
		t.Proto.SetSrcPort(sport)
		t.Proto.SetDstPort(dport)
	}
	return t
}

// Flow returns the values e holds as a Flow, for example to delete the flow
// with ctnetlink.Conn.Delete or to test it with ctnetlink.Selector.Match.
func (e *Entry) Flow() ctnetlink.Flow {
	var f ctnetlink.Flow
	f.SetTupleOrig(e.Orig())
	f.SetTupleReply(e.Reply())
	f.SetID(e.ID())
	f.SetStatus(ctnetlink.Status(e.status))
	f.SetMark(e.mark)
	if z := e.Zone(); z != 0 {
		f.SetZone(z)
	}
	if e.flags&entryTimeout != 0 {
		f.SetTimeout(e.timeout)
	}
	if e.flags&entryState != 0 {
		switch e.Proto() {
		case unix.IPPROTO_TCP:
			f.ProtoInfo.TCP.SetState(ctnetlink.TCPState(e.state))
		case unix.IPPROTO_SCTP:
			f.ProtoInfo.SCTP.SetState(ctnetlink.SCTPState(e.state))
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
