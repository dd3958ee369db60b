package ctnetlink

import (
	"fmt"
	"math/rand"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
)

// randomTable builds n mixed flows: TCP in several states, UDP, SCTP and
// ICMP; IPv4 and IPv6; marks, zones and labels.
func randomTable(r *rand.Rand, n int) []Flow {
	protos := []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_ICMP}
	flows := make([]Flow, 0, n)
	seen := map[string]bool{}
	for len(flows) < n {
		v6 := r.Intn(3) == 0
		proto := protos[r.Intn(len(protos))]
		if v6 && proto == unix.IPPROTO_ICMP {
			proto = unix.IPPROTO_ICMPV6
		}
		host := func(net byte) netip.Addr {
			if v6 {
				return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r.Intn(8)), 14: net})
			}
			return netip.AddrFrom4([4]byte{10, net, 0, byte(1 + r.Intn(8))})
		}
		src, dst := host(1), host(2)
		sport, dport := uint16(1000+r.Intn(4000)), []uint16{53, 80, 443, 5060}[r.Intn(4)]
		zone := uint16(r.Intn(3))
		kport := dport // an ICMP tuple has an id, no ports
		if proto == unix.IPPROTO_ICMP || proto == unix.IPPROTO_ICMPV6 {
			kport = 0
		}
		// A zone applies to both directions, or, picked by the source
		// port, to one only. The kernel refuses a flow when either
		// direction's tuple, in that direction's zone, exists already.
		origZone, replyZone := zone, zone
		if zone != 0 {
			switch sport % 4 {
			case 0:
				replyZone = 0
			case 1:
				origZone = 0
			}
		}
		keyO := fmt.Sprint("o", proto, src, dst, sport, kport, origZone)
		keyR := fmt.Sprint("r", proto, src, dst, sport, kport, replyZone)
		if seen[keyO] || seen[keyR] {
			continue
		}
		seen[keyO], seen[keyR] = true, true
		var f Flow
		f.SetTupleOrig(NewTuple(proto, netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)))
		f.SetTupleReply(NewTuple(proto, netip.AddrPortFrom(dst, dport), netip.AddrPortFrom(src, sport)))
		if proto == unix.IPPROTO_ICMP || proto == unix.IPPROTO_ICMPV6 {
			req, rep := uint8(8), uint8(0)
			if v6 {
				req, rep = 128, 129
			}
			f.TupleOrig.SetICMP(req, 0, sport)
			f.TupleReply.SetICMP(rep, 0, sport)
		}
		randomFlowState(r, &f, proto, zone, origZone, replyZone)
		flows = append(flows, f)
	}
	return flows
}

// randomFlowState gives f of protocol proto a random protocol state, a
// timeout, a random mark, its zone (zone, applying to the directions whose
// zone origZone and replyZone are not 0) and, one time in three, labels.
func randomFlowState(r *rand.Rand, f *Flow, proto uint8, zone, origZone, replyZone uint16) {
	tcpStates := []TCPState{TCPStateSynSent, TCPStateEstablished, TCPStateFinWait, TCPStateTimeWait, TCPStateClose}
	sctpStates := []SCTPState{SCTPStateCookieWait, SCTPStateEstablished, SCTPStateShutdownSent}
	switch proto {
	case unix.IPPROTO_TCP:
		f.ProtoInfo.TCP.SetState(tcpStates[r.Intn(len(tcpStates))])
	case unix.IPPROTO_SCTP:
		// The kernel wants both verification tags with the state.
		f.ProtoInfo.SCTP.SetState(sctpStates[r.Intn(len(sctpStates))])
		f.ProtoInfo.SCTP.SetVTagOriginal(r.Uint32())
		f.ProtoInfo.SCTP.SetVTagReply(r.Uint32())
	}
	f.SetTimeout(600)
	f.SetMark(uint32(r.Intn(4)) | uint32(r.Intn(2))<<8)
	switch {
	case origZone != 0 && replyZone != 0:
		f.SetZone(zone)
	case origZone != 0:
		f.TupleOrig.SetZone(zone)
	case replyZone != 0:
		f.TupleReply.SetZone(zone)
	}
	if r.Intn(3) == 0 {
		lab := make([]byte, 16)
		lab[0] = byte(1 + r.Intn(15)) // labels 0 to 3, one or more
		f.SetLabels(lab)
	}
}

// randomMatcher draws a matcher over the fields randomTable varies.
func randomMatcher(r *rand.Rand, table []Flow) Selector {
	var m Selector
	f := &table[r.Intn(len(table))]
	for _, field := range r.Perm(16)[:1+r.Intn(3)] {
		if field < 8 {
			randomTupleField(r, f, &m, field)
		} else {
			randomStateField(r, f, &m, field)
		}
	}
	return m
}

// randomTupleField sets matcher field 0 to 7 (family, protocol, addresses,
// reply port, mark, zone, labels any) from flow f.
func randomTupleField(r *rand.Rand, f *Flow, m *Selector, field int) {
	switch field {
	case 0:
		m.Family = f.Family()
	case 1:
		p := f.TupleOrig.Proto.Num
		m.Proto = Protocol(p)
		if p == unix.IPPROTO_TCP || p == unix.IPPROTO_UDP || p == unix.IPPROTO_SCTP {
			m.OrigDstPort = Port(f.TupleOrig.Proto.DstPort)
		}
	case 2:
		m.OrigDst = HostIs(f.TupleOrig.Dst())
	case 3:
		bits := 24
		if f.Family() == unix.AF_INET6 {
			bits = 120
		}
		p, _ := f.TupleOrig.Src().Prefix(bits + r.Intn(8))
		m.OrigSrc = Is(p)
	case 4:
		m.ReplySrc = HostIs(f.TupleReply.Src())
		if p := f.TupleReply.Proto.Num; p == unix.IPPROTO_TCP || p == unix.IPPROTO_UDP {
			m.Proto = Protocol(p)
			m.ReplySrcPort = Port(f.TupleReply.Proto.SrcPort)
		}
	case 5:
		m.Mark = Is(MarkMatch{f.Mark & 0xff, 0xff})
	case 6:
		m.Zone = Is(f.ZoneID())
	case 7:
		if len(f.Labels) > 0 {
			m.LabelsAny = f.Labels
		}
	}
}

// randomStateField sets matcher field 8 to 15 (states, status, labels
// all, per-direction zones, ICMP, reply destination, mark bit) from flow
// f.
func randomStateField(r *rand.Rand, f *Flow, m *Selector, field int) {
	switch field {
	case 8:
		if f.TupleOrig.Proto.Num == unix.IPPROTO_TCP {
			m.TCPStates = Is(f.ProtoInfo.TCP.State)
		} else if f.TupleOrig.Proto.Num == unix.IPPROTO_SCTP {
			m.SCTPStates = Is(f.ProtoInfo.SCTP.State)
		}
	case 9:
		m.Status = Is(StatusMatch{StatusAssured, StatusAssured})
	case 10:
		// Every label of a flow, sometimes with one it may lack, so
		// that all-of and any-of select different flows.
		if len(f.Labels) > 0 {
			m.LabelsAll = slices.Clone(f.Labels)
			m.LabelsAll[0] |= byte(r.Intn(2)) << r.Intn(4)
		}
	case 11:
		// Several states, the flow's not first.
		tcp := []TCPState{TCPStateSynSent, TCPStateEstablished, TCPStateFinWait, TCPStateTimeWait, TCPStateClose}
		sctp := []SCTPState{SCTPStateCookieWait, SCTPStateEstablished, SCTPStateShutdownSent}
		if f.TupleOrig.Proto.Num == unix.IPPROTO_SCTP {
			m.SCTPStates = AnyOf(sctp[r.Intn(len(sctp))], sctp[r.Intn(len(sctp))], f.ProtoInfo.SCTP.State)
		} else {
			m.TCPStates = AnyOf(tcp[r.Intn(len(tcp))], tcp[r.Intn(len(tcp))], f.ProtoInfo.TCP.State)
		}
	case 12:
		z := Is(uint16(r.Intn(3)))
		if r.Intn(2) == 0 {
			m.OrigZone = z
		} else {
			m.ReplyZone = z
		}
	case 13:
		switch f.TupleOrig.Proto.Num {
		case unix.IPPROTO_ICMP:
			m.ICMPType, m.ICMPID = Is(f.TupleOrig.Proto.ICMPType), Is(f.TupleOrig.Proto.ICMPID)
		case unix.IPPROTO_ICMPV6:
			m.ICMPType, m.ICMPID = Is(f.TupleOrig.Proto.ICMPv6Type), Is(f.TupleOrig.Proto.ICMPv6ID)
		default:
			m.ICMPCode = Is[uint8](0)
		}
	case 14:
		bits := 29
		if f.Family() == unix.AF_INET6 {
			bits = 125
		}
		p, _ := f.TupleReply.Dst().Prefix(bits)
		m.ReplyDst = Is(p)
	case 15:
		m.Mark = Is(MarkMatch{f.Mark & 0x100, 0x100})
	}
}
