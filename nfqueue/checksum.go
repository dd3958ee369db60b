package nfqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// FixChecksums recomputes, in place, the checksums of pkt, a packet from
// its network header on as Packet.Payload holds it: the IPv4 header
// checksum, and the TCP or UDP checksum of an IPv4 packet or of an IPv6
// packet without extension headers. The kernel does not do it for a
// replaced payload (Verdict.Payload), and a receiver drops a packet whose
// checksum is wrong. Other protocols are left alone. It fails on a
// truncated or malformed packet.
func FixChecksums(pkt []byte) error {
	if len(pkt) < 1 {
		return errors.New("fix checksums: empty packet")
	}
	var proto uint8
	var l4 []byte
	var pseudo uint32
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return fmt.Errorf("fix checksums: IPv4 header: want 20 bytes, got %d", len(pkt))
		}
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:]))
		if ihl < 20 || total < ihl || total > len(pkt) {
			return fmt.Errorf("fix checksums: IPv4 header length %d, total length %d, %d bytes", ihl, total, len(pkt))
		}
		binary.BigEndian.PutUint16(pkt[10:], 0)
		binary.BigEndian.PutUint16(pkt[10:], ^fold(sum(0, pkt[:ihl])))
		if off := binary.BigEndian.Uint16(pkt[6:]) & 0x3fff; off != 0 {
			return nil // a fragment: the transport checksum covers the whole datagram
		}
		proto, l4 = pkt[9], pkt[ihl:total]
		pseudo = sum(0, pkt[12:20])
	case 6:
		if len(pkt) < 40 {
			return fmt.Errorf("fix checksums: IPv6 header: want 40 bytes, got %d", len(pkt))
		}
		plen := int(binary.BigEndian.Uint16(pkt[4:]))
		if 40+plen > len(pkt) {
			return fmt.Errorf("fix checksums: IPv6 payload length %d, %d bytes", plen, len(pkt)-40)
		}
		proto, l4 = pkt[6], pkt[40:40+plen]
		pseudo = sum(0, pkt[8:40])
	default:
		return fmt.Errorf("fix checksums: IP version %d", pkt[0]>>4)
	}
	var at int
	switch proto {
	case 6: // TCP
		at = 16
	case 17: // UDP
		at = 6
		if len(l4) >= 8 && int(binary.BigEndian.Uint16(l4[4:])) != len(l4) {
			return fmt.Errorf("fix checksums: UDP length %d, %d bytes", binary.BigEndian.Uint16(l4[4:]), len(l4))
		}
	default:
		return nil
	}
	if len(l4) < at+2 {
		return fmt.Errorf("fix checksums: protocol %d header: %d bytes", proto, len(l4))
	}
	binary.BigEndian.PutUint16(l4[at:], 0)
	s := sum(pseudo+uint32(proto)+uint32(len(l4)), l4)
	c := ^fold(s)
	if c == 0 && proto == 17 {
		c = 0xffff // 0 means no checksum in UDP over IPv4
	}
	binary.BigEndian.PutUint16(l4[at:], c)
	return nil
}

// sum adds b to s as big-endian 16-bit words, a last odd byte padded.
func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold folds a 32-bit one's complement sum to 16 bits.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
