package nflog

import (
	"bytes"
	"fmt"
	"net"
	"time"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nlattr"
)

// Packet is one logged packet. Byte slices alias the receive buffer when the
// Packet comes from Group.Packets: they are valid until the next iteration.
// Has tells which attributes the kernel sent; an absent one leaves its field
// zero.
//
// A Packet is not safe for concurrent use; a Clone is independent of it.
type Packet struct {
	// Family is the protocol family of the hook that logged the packet
	// (unix.NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_BRIDGE, NFPROTO_NETDEV).
	Family uint8
	// Group is the log group.
	Group uint16
	// HWProtocol is the link layer protocol (ETH_P_IP, ETH_P_IPV6, ...).
	HWProtocol uint16
	// Hook is the netfilter hook (unix.NF_INET_PRE_ROUTING to
	// NF_INET_POST_ROUTING; NF_NETDEV_INGRESS for the netdev family).
	Hook uint8
	// Prefix is the prefix of the rule that logged the packet.
	Prefix string
	// Mark is the packet mark; the kernel sends it only when not zero.
	Mark uint32
	// Timestamp is the receive time; the kernel sends it for the
	// prerouting, input and forward hooks only.
	Timestamp time.Time
	// InDev, OutDev, PhysInDev and PhysOutDev are interface indexes: the
	// input and output devices, and the physical ports of a bridge.
	InDev, OutDev, PhysInDev, PhysOutDev uint32
	// HWAddr is the link layer source address of a received packet.
	HWAddr net.HardwareAddr
	// HWType is the device type of the input device (ARPHRD_*), HWLen
	// the length of its link layer header and HWHeader that header.
	HWType   uint16
	HWLen    uint16
	HWHeader []byte
	// UID and GID are the file system ids of the socket that sent or
	// receives the packet.
	UID, GID uint32
	// Seq is the packet's sequence number in its group (ConfigFlagsSeq),
	// SeqGlobal in the namespace (ConfigFlagsSeqGlobal).
	Seq, SeqGlobal uint32
	// CTInfo is the packet's relation to its conntrack entry (enum
	// ip_conntrack_info: 0 established, 1 related, 2 new, 3 established
	// reply, 4 related reply), with ConfigFlagsConntrack.
	CTInfo uint32
	// CT is the conntrack entry as the kernel encoded it, the attributes
	// of a ctnetlink message; Conntrack decodes it.
	CT []byte
	// VLAN is the VLAN tag, for the bridge and netdev families.
	VLAN Vlan
	// L2Header is the link layer header, for the bridge and netdev families.
	L2Header []byte
	// Payload is the packet from its network header, up to the copy range.
	Payload []byte
	// Unknown counts the attributes this build does not know.
	Unknown int

	present uint32
}

// Has reports whether the kernel sent attribute a.
func (p *Packet) Has(a PacketMsgAttr) bool { return a < 32 && p.present&(1<<a) != 0 }

// Conntrack decodes the packet's conntrack entry with the conntrack
// package's decoder. It returns nil and no error when the packet has none.
func (p *Packet) Conntrack() (*ctnetlink.Flow, error) {
	if !p.Has(PacketMsgAttrCt) {
		return nil, nil
	}
	f := new(ctnetlink.Flow)
	if err := f.UnmarshalAttributes(p.CT); err != nil {
		return nil, fmt.Errorf("nflog: packet: ct: %w", err)
	}
	return f, nil
}

// Truncated reports whether the kernel copied less of the packet than its
// network layer length says it has: a copy range or a rule's snap length
// cut it. It reads the IPv4 or IPv6 length field of the payload.
func (p *Packet) Truncated() bool {
	b := p.Payload
	if len(b) == 0 {
		return false
	}
	switch b[0] >> 4 {
	case 4:
		return len(b) < 4 || int(b[2])<<8|int(b[3]) > len(b)
	case 6:
		return len(b) < 6 || 40+(int(b[4])<<8|int(b[5])) > len(b)
	}
	return false
}

// Clone returns a copy of p that shares no memory with it or with the
// receive buffer.
func (p *Packet) Clone() *Packet {
	c := *p
	c.HWAddr = clone(p.HWAddr)
	c.HWHeader = clone(p.HWHeader)
	c.CT = clone(p.CT)
	c.L2Header = clone(p.L2Header)
	c.Payload = clone(p.Payload)
	return &c
}

func clone[T ~[]byte](b T) T {
	if b == nil {
		return nil
	}
	return append(T{}, b...)
}

// decode decodes the attributes of a packet message into p, replacing its
// contents; byte slices alias b. A prefix equal to last reuses that string
// rather than allocate. The generated PacketMsg decoder reads the same
// attributes but copies every byte slice.
func (p *Packet) decode(b []byte, last string) error {
	*p = Packet{}
	d := nlattr.NewDecoder(b)
	for d.Next() {
		t := PacketMsgAttr(d.Type())
		switch t {
		case PacketMsgAttrPacketHdr:
			if v := d.Fixed(4); v != nil {
				var h PacketHdr
				h.unpack(v)
				p.HWProtocol, p.Hook = h.HWProtocol, h.Hook
			}
		case PacketMsgAttrMark:
			p.Mark = d.Uint32BE()
		case PacketMsgAttrTimestamp:
			if v := d.Fixed(16); v != nil {
				var ts PacketTimestamp
				ts.unpack(v)
				p.Timestamp = time.Unix(int64(ts.Sec), int64(ts.Usec)*1000)
			}
		case PacketMsgAttrIfindexIndev:
			p.InDev = d.Uint32BE()
		case PacketMsgAttrIfindexOutdev:
			p.OutDev = d.Uint32BE()
		case PacketMsgAttrIfindexPhysindev:
			p.PhysInDev = d.Uint32BE()
		case PacketMsgAttrIfindexPhysoutdev:
			p.PhysOutDev = d.Uint32BE()
		case PacketMsgAttrHwaddr:
			if v := d.Fixed(12); v != nil {
				// The kernel's address field holds 8 bytes at most.
				n := min(int(v[0])<<8|int(v[1]), 8)
				p.HWAddr = net.HardwareAddr(v[4 : 4+n : 4+n])
			}
		case PacketMsgAttrPayload:
			p.Payload = d.Bytes()
		case PacketMsgAttrPrefix:
			v := d.Bytes()
			if i := bytes.IndexByte(v, 0); i >= 0 {
				v = v[:i]
			}
			if string(v) == last {
				p.Prefix = last
			} else {
				p.Prefix = string(v)
			}
		case PacketMsgAttrUid:
			p.UID = d.Uint32BE()
		case PacketMsgAttrSeq:
			p.Seq = d.Uint32BE()
		case PacketMsgAttrSeqGlobal:
			p.SeqGlobal = d.Uint32BE()
		case PacketMsgAttrGid:
			p.GID = d.Uint32BE()
		case PacketMsgAttrHwtype:
			p.HWType = d.Uint16BE()
		case PacketMsgAttrHwheader:
			p.HWHeader = d.Bytes()
		case PacketMsgAttrHwlen:
			p.HWLen = d.Uint16BE()
		case PacketMsgAttrCt:
			p.CT = d.Bytes()
		case PacketMsgAttrCtInfo:
			p.CTInfo = d.Uint32BE()
		case PacketMsgAttrVlan:
			if err := p.VLAN.UnmarshalAttributes(d.Bytes()); err != nil {
				d.FailNested(err)
			}
		case PacketMsgAttrL2hdr:
			p.L2Header = d.Bytes()
		default:
			p.Unknown++
			continue
		}
		p.present |= 1 << t
	}
	return d.Err(namePacketMsgAttr)
}
