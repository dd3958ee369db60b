package nflog

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// comparePacket compares what the zero-copy decoder made of a message with
// what the generated decoder made of it, and returns the differences.
func comparePacket(p *Packet, m *PacketMsg) string {
	var diffs []string
	eq := func(name string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			diffs = append(diffs, fmt.Sprintf("%s: %v, generated %v", name, got, want))
		}
	}
	eqb := func(name string, got, want []byte) {
		if !bytes.Equal(got, want) || (got == nil) != (want == nil) && len(want) > 0 {
			diffs = append(diffs, fmt.Sprintf("%s: %x, generated %x", name, got, want))
		}
	}
	for a := PacketMsgAttrPacketHdr; a <= PacketMsgAttrL2hdr; a++ {
		eq("has "+a.String(), p.Has(a), m.Has(a))
	}
	eq("hw protocol", p.HWProtocol, m.PacketHdr.HWProtocol)
	eq("hook", p.Hook, m.PacketHdr.Hook)
	eq("mark", p.Mark, m.Mark)
	if m.Has(PacketMsgAttrTimestamp) && m.Timestamp.Usec < 1e6 && m.Timestamp.Sec < 1<<40 {
		// Times the kernel can send; time.Unix normalises any other.
		eq("timestamp", p.Timestamp.Unix(), int64(m.Timestamp.Sec))
		eq("timestamp µs", p.Timestamp.Nanosecond()/1000, int64(m.Timestamp.Usec)%1e6)
	} else if !m.Has(PacketMsgAttrTimestamp) {
		eq("timestamp", p.Timestamp, time.Time{})
	}
	eq("indev", p.InDev, m.IfindexIndev)
	eq("outdev", p.OutDev, m.IfindexOutdev)
	eq("physindev", p.PhysInDev, m.IfindexPhysindev)
	eq("physoutdev", p.PhysOutDev, m.IfindexPhysoutdev)
	if m.Has(PacketMsgAttrHwaddr) {
		n := min(int(m.Hwaddr.HWAddrlen), 8)
		eqb("hwaddr", p.HWAddr, m.Hwaddr.HWAddr[:n])
	}
	eqb("payload", p.Payload, m.Payload)
	eq("prefix", p.Prefix, m.Prefix)
	eq("uid", p.UID, m.Uid)
	eq("gid", p.GID, m.Gid)
	eq("seq", p.Seq, m.Seq)
	eq("seq global", p.SeqGlobal, m.SeqGlobal)
	eq("hwtype", p.HWType, m.Hwtype)
	eqb("hwheader", p.HWHeader, m.Hwheader)
	eq("hwlen", p.HWLen, m.Hwlen)
	eqb("ct", p.CT, m.Ct)
	eq("ct info", p.CTInfo, m.CtInfo)
	eq("vlan", fmt.Sprintf("%+v", p.VLAN), fmt.Sprintf("%+v", m.Vlan))
	eqb("l2hdr", p.L2Header, m.L2hdr)
	eq("unknown", p.Unknown, m.Unknown)
	return strings.Join(diffs, "\n")
}

// String prints the scalar fields of p, for tests.
func (p Packet) String() string {
	return fmt.Sprintf("family %d group %d hwproto %#x hook %d prefix %q mark %#x in %d out %d physin %d physout %d hwtype %d hwlen %d uid %d gid %d seq %d/%d ctinfo %d unknown %d",
		p.Family, p.Group, p.HWProtocol, p.Hook, p.Prefix, p.Mark, p.InDev, p.OutDev, p.PhysInDev, p.PhysOutDev, p.HWType, p.HWLen, p.UID, p.GID, p.Seq, p.SeqGlobal, p.CTInfo, p.Unknown)
}
