package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// Message kinds, for the prefix of events and of -o save lines.
const (
	msgNone = iota
	msgNew
	msgUpdate
	msgDestroy
)

// printer formats flows the way conntrack-tools does with
// libnetfilter_conntrack 1.0.9. Its zero value prints the default format.
type printer struct {
	extended   bool // -o extended: the layer 3 protocol first
	id         bool // -o id
	ktimestamp bool // -o ktimestamp: [start=...] [stop=...]
	// labels, when not nil, names the labels to print; conntrack prints
	// labels only when it has read the label names.
	labels     *labelMap
	showLabels bool
	// now returns the current time, for delta-time of flows still alive.
	now func() time.Time
}

func (p *printer) time() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

func l3Name(f uint8) string {
	switch f {
	case unix.AF_INET:
		return "ipv4"
	case unix.AF_INET6:
		return "ipv6"
	}
	return "unknown"
}

// libnetfilter_conntrack's state tables. Its SCTP table is sized for ten
// states but names eight, and its printer looks DCCP states up in the
// SCTP table; the XML printer looks SCTP and DCCP states up in the TCP
// table. ctspec prints the same words. A missing name prints as glibc's
// printf prints a NULL string.
const (
	libTCPMax  = 10
	libSCTPMax = 10
	libDCCPMax = 10
	nullString = "(null)"
)

func libTCPState(s uint8) string {
	if s >= libTCPMax {
		s = 0
	}
	return tcpStates[s]
}

func libSCTPState(s uint8) string {
	if s >= libSCTPMax {
		s = 0
	}
	if int(s) < len(sctpStates) {
		return sctpStates[s]
	}
	return nullString
}

// isPortProto reports protocols whose tuples print ports.
func isPortProto(n uint8) bool {
	switch n {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP:
		return true
	}
	return false
}

// flowFamily is the flow's layer 3 family, from its tuples.
func flowFamily(f *ctnetlink.Flow) uint8 { return f.Family() }

// ipString prints an address as inet_ntoa and inet_ntop do. A missing
// address prints as the family's zero address.
func ipString(a netip.Addr, fam uint8) string {
	return string(appendIP(nil, a, fam))
}

// appendIP appends a as ipString formats it.
func appendIP(s []byte, a netip.Addr, fam uint8) []byte {
	if !a.IsValid() {
		if fam == unix.AF_INET6 {
			return append(s, "::"...)
		}
		return append(s, "0.0.0.0"...)
	}
	if a.Is4() {
		return a.AppendTo(s)
	}
	return appendNtop6(s, a)
}

// ntop6 is glibc's inet_ntop for IPv6, which differs from netip in
// printing IPv4-compatible addresses (::a.b.c.d) with a dotted quad.
func ntop6(a netip.Addr) string { return string(appendNtop6(nil, a)) }

// appendNtop6 appends a as ntop6 formats it.
func appendNtop6(s []byte, a netip.Addr) []byte {
	b := a.As16()
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	// The longest run of zero words, the first of equal runs, at least 2.
	bestBase, bestLen := -1, 0
	for i := 0; i < 8; {
		if w[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > bestLen {
			bestBase, bestLen = i, j-i
		}
		i = j
	}
	if bestLen < 2 {
		bestBase = -1
	}
	for i := 0; i < 8; i++ {
		if bestBase >= 0 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				s = append(s, ':')
			}
			continue
		}
		if i != 0 {
			s = append(s, ':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && w[5] == 0xffff)) {
			return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}).AppendTo(s)
		}
		s = strconv.AppendUint(s, uint64(w[i]), 16)
	}
	if bestBase >= 0 && bestBase+bestLen == 8 {
		s = append(s, ':')
	}
	return s
}

// appendField appends name, '=', the decimal v and a space.
func appendField(b []byte, name string, v uint64) []byte {
	b = append(append(b, name...), '=')
	return append(strconv.AppendUint(b, v, 10), ' ')
}

// appendPadded appends s left-aligned in a field of width w, as %-*s.
func appendPadded(b []byte, s string, w int) []byte {
	b = append(b, s...)
	for i := len(s); i < w; i++ {
		b = append(b, ' ')
	}
	return b
}

// appendTupleAddrs appends "src=... dst=... " for one direction.
func appendTupleAddrs(b []byte, t *ctnetlink.Tuple, fam uint8) []byte {
	src, dst := t.IP.V4Src, t.IP.V4Dst
	if fam == unix.AF_INET6 {
		src, dst = t.IP.V6Src, t.IP.V6Dst
	}
	b = appendIP(append(b, "src="...), src, fam)
	b = appendIP(append(b, " dst="...), dst, fam)
	return append(b, ' ')
}

func tupleSrc(t *ctnetlink.Tuple, fam uint8) string {
	if fam == unix.AF_INET6 {
		return ipString(t.IP.V6Src, fam)
	}
	return ipString(t.IP.V4Src, fam)
}

func tupleDst(t *ctnetlink.Tuple, fam uint8) string {
	if fam == unix.AF_INET6 {
		return ipString(t.IP.V6Dst, fam)
	}
	return ipString(t.IP.V4Dst, fam)
}

// icmpFields returns a tuple's ICMP type, code and id, from the ICMPv6
// attributes for ICMPv6.
func icmpFields(t *ctnetlink.Tuple) (typ, code uint8, id uint16) {
	p := &t.Proto
	if p.Num == unix.IPPROTO_ICMPV6 {
		return p.ICMPv6Type, p.ICMPv6Code, p.ICMPv6ID
	}
	return p.ICMPType, p.ICMPCode, p.ICMPID
}

func countersPresent(c *ctnetlink.Counters) bool {
	return (c.Has(ctnetlink.CountersAttrPackets) || c.Has(ctnetlink.CountersAttrPacketsOld)) &&
		(c.Has(ctnetlink.CountersAttrBytes) || c.Has(ctnetlink.CountersAttrBytesOld))
}

func counterValues(c *ctnetlink.Counters) (packets, bytes uint64) {
	packets, bytes = c.Packets, c.Bytes
	if !c.Has(ctnetlink.CountersAttrPackets) {
		packets = uint64(c.PacketsOld)
	}
	if !c.Has(ctnetlink.CountersAttrBytes) {
		bytes = uint64(c.BytesOld)
	}
	return packets, bytes
}

func hasTCPState(f *ctnetlink.Flow) bool {
	return f.ProtoInfo.TCP.Has(ctnetlink.ProtoInfoTCPAttrState)
}

func hasSCTPState(f *ctnetlink.Flow) bool {
	return f.ProtoInfo.SCTP.Has(ctnetlink.ProtoInfoSCTPAttrSCTPState)
}

func hasDCCPState(f *ctnetlink.Flow) bool {
	return f.ProtoInfo.DCCP.Has(ctnetlink.ProtoInfoDCCPAttrState)
}

func hasTimestampStart(f *ctnetlink.Flow) bool {
	return f.Has(ctnetlink.FlowAttrTimestamp) && f.Timestamp.Has(ctnetlink.TimestampAttrStart)
}

func hasTimestampStop(f *ctnetlink.Flow) bool {
	return f.Has(ctnetlink.FlowAttrTimestamp) && f.Timestamp.Has(ctnetlink.TimestampAttrStop)
}

func hasHelper(f *ctnetlink.Flow) bool {
	return f.Help != nil && f.Help.Has(ctnetlink.HelpAttrName)
}

func hasSecCtx(f *ctnetlink.Flow) bool {
	return f.SecCtx != nil && f.SecCtx.Has(ctnetlink.SecCtxAttrSecCtxName)
}

// ctime formats seconds since the epoch as ctime(3) does, in local time,
// without the newline.
func ctime(sec int64) string {
	return time.Unix(sec, 0).Format("Mon Jan _2 15:04:05 2006")
}

// appendTuple appends "src=... dst=... PORTS " for one direction.
func appendTuple(b []byte, t *ctnetlink.Tuple, fam uint8) []byte {
	b = appendTupleAddrs(b, t, fam)
	n := t.Proto.Num
	switch {
	case isPortProto(n):
		b = appendField(b, "sport", uint64(t.Proto.SrcPort))
		b = appendField(b, "dport", uint64(t.Proto.DstPort))
	case n == unix.IPPROTO_GRE:
		b = fmt.Appendf(b, "srckey=0x%x dstkey=0x%x ", t.Proto.SrcPort, t.Proto.DstPort)
	case n == unix.IPPROTO_ICMP || n == unix.IPPROTO_ICMPV6:
		typ, code, id := icmpFields(t)
		b = appendField(b, "type", uint64(typ))
		b = appendField(b, "code", uint64(code))
		b = appendField(b, "id", uint64(id))
	}
	return b
}

// bswap32 reverses the bytes of v. conntrack-tools converts SCTP
// verification tags to network order twice, once when it parses them and
// once when it sends them, and back twice when it prints them; ctspec
// does the same so that both agree on the kernel's value.
func bswap32(v uint32) uint32 {
	return v>>24 | v>>8&0xff00 | v<<8&0xff0000 | v<<24
}
