package ctnetlink

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// EntryKey identifies a flow: its id, zone and original tuple. It is
// comparable, for use as a map key, and as a value safe for concurrent
// use.
//
// The id alone does not identify a flow. The kernel derives it from a
// 32-bit hash of the entry's address and tuple, so ids collide: a table of
// 250,000 flows has about ten pairs of flows that share one. The original
// tuple and zone are unique in the table, and with the id they also tell a
// flow from one created later with the same tuple.
//
// The zero EntryKey identifies no flow.
type EntryKey struct {
	src, dst [16]byte
	id       uint32
	sport    uint16
	dport    uint16
	zone     uint16
	proto    uint8
	family   uint8
}

// KeyOf returns the key of flow f: for example to key a table of flows
// kept from a dump and events, or to look a flow up in a mirror of the
// table.
func KeyOf(f *Flow) EntryKey {
	o := &f.TupleOrig
	k := EntryKey{
		src:    o.Src().As16(),
		dst:    o.Dst().As16(),
		id:     f.ID,
		zone:   f.Zone,
		proto:  o.Proto.Num,
		family: f.Family(),
	}
	if !o.Proto.Has(TupleProtoAttrNum) {
		k.proto = f.TupleReply.Proto.Num
	}
	k.sport, k.dport, _ = TuplePorts(&o.Proto)
	return k
}

// TuplePorts returns the ports of p, or for ICMP and ICMPv6 the
// identifier and type<<8|code, the way the kernel's tuple holds them, and
// whether p has any of them.
func TuplePorts(p *TupleProto) (src, dst uint16, ok bool) {
	switch {
	case p.Has(TupleProtoAttrICMPType) || p.Has(TupleProtoAttrICMPID):
		return p.ICMPID, uint16(p.ICMPType)<<8 | uint16(p.ICMPCode), true
	case p.Has(TupleProtoAttrICMPv6Type) || p.Has(TupleProtoAttrICMPv6ID):
		return p.ICMPv6ID, uint16(p.ICMPv6Type)<<8 | uint16(p.ICMPv6Code), true
	}
	return p.SrcPort, p.DstPort, p.Has(TupleProtoAttrSrcPort) || p.Has(TupleProtoAttrDstPort)
}

// ID returns the flow id of the key.
func (k EntryKey) ID() uint32 { return k.id }

// Zone returns the zone of the key, 0 for the default zone.
func (k EntryKey) Zone() uint16 { return k.zone }

// Family returns unix.AF_INET or unix.AF_INET6, or 0 for the zero key.
func (k EntryKey) Family() uint8 { return k.family }

// Proto returns the layer 4 protocol number of the original tuple.
func (k EntryKey) Proto() uint8 { return k.proto }

// Src returns the source address of the original tuple.
func (k EntryKey) Src() netip.Addr { return k.addr(k.src) }

// Dst returns the destination address of the original tuple.
func (k EntryKey) Dst() netip.Addr { return k.addr(k.dst) }

// Ports returns the ports of the original tuple, or as TuplePorts does the
// ICMP identifier and type<<8|code.
func (k EntryKey) Ports() (src, dst uint16) { return k.sport, k.dport }

func (k EntryKey) addr(b [16]byte) netip.Addr {
	switch k.family {
	case unix.AF_INET:
		return netip.AddrFrom16(b).Unmap()
	case unix.AF_INET6:
		return netip.AddrFrom16(b)
	}
	return netip.Addr{}
}
