package mirror

import (
	"context"
	"fmt"
	"math/rand"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// dialNS makes a fresh network namespace and a Conn inside it.
func dialNS(t *testing.T) (*nstest.NS, *ctnetlink.Conn) {
	t.Helper()
	ns := nstest.New(t)
	c, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return ns, c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// testFlow is a TCP flow from src:sport to dst:dport in ESTABLISHED state.
func testFlow(src, dst string, sport, dport uint16) *ctnetlink.Flow {
	var f ctnetlink.Flow
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	f.SetTupleOrig(ctnetlink.NewTuple(unix.IPPROTO_TCP, netip.AddrPortFrom(s, sport), netip.AddrPortFrom(d, dport)))
	f.SetTupleReply(ctnetlink.NewTuple(unix.IPPROTO_TCP, netip.AddrPortFrom(d, dport), netip.AddrPortFrom(s, sport)))
	f.ProtoInfo.TCP.SetState(ctnetlink.TCPStateEstablished)
	f.SetTimeout(120)
	return &f
}

// manyFlows returns n distinct UDP flows from 10.x.y.z:4000 to
// 192.0.2.53:53, with marks 0 to 3 in turn.
func manyFlows(n int) []ctnetlink.Flow {
	flows := make([]ctnetlink.Flow, n)
	for i := range flows {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		dst := netip.MustParseAddr("192.0.2.53")
		f := &flows[i]
		f.SetTupleOrig(ctnetlink.NewTuple(unix.IPPROTO_UDP, netip.AddrPortFrom(src, 4000), netip.AddrPortFrom(dst, 53)))
		f.SetTupleReply(ctnetlink.NewTuple(unix.IPPROTO_UDP, netip.AddrPortFrom(dst, 53), netip.AddrPortFrom(src, 4000)))
		f.SetTimeout(300)
		f.SetMark(uint32(i % 4))
	}
	return flows
}

// reserveLabels makes the kernel keep label space for new flows.
func reserveLabels(t *testing.T, ns *nstest.NS) {
	ns.Run(t, "nft", "add table inet ctspec_labels")
	ns.Run(t, "nft", "add chain inet ctspec_labels c { type filter hook prerouting priority 0; }")
	ns.Run(t, "nft", "add rule inet ctspec_labels c ct label 1 counter")
}

// randomTable builds n mixed flows: TCP in several states, UDP, SCTP and
// ICMP; IPv4 and IPv6; marks, zones and labels.
func randomTable(r *rand.Rand, n int) []ctnetlink.Flow {
	protos := []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_ICMP}
	flows := make([]ctnetlink.Flow, 0, n)
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
		var f ctnetlink.Flow
		f.SetTupleOrig(ctnetlink.NewTuple(proto, netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)))
		f.SetTupleReply(ctnetlink.NewTuple(proto, netip.AddrPortFrom(dst, dport), netip.AddrPortFrom(src, sport)))
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
func randomFlowState(r *rand.Rand, f *ctnetlink.Flow, proto uint8, zone, origZone, replyZone uint16) {
	tcpStates := []ctnetlink.TCPState{ctnetlink.TCPStateSynSent, ctnetlink.TCPStateEstablished,
		ctnetlink.TCPStateFinWait, ctnetlink.TCPStateTimeWait, ctnetlink.TCPStateClose}
	sctpStates := []ctnetlink.SCTPState{ctnetlink.SCTPStateCookieWait, ctnetlink.SCTPStateEstablished, ctnetlink.SCTPStateShutdownSent}
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
