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

var l4Names = map[uint8]string{
	unix.IPPROTO_TCP:     "tcp",
	unix.IPPROTO_UDP:     "udp",
	unix.IPPROTO_UDPLITE: "udplite",
	unix.IPPROTO_ICMP:    "icmp",
	unix.IPPROTO_ICMPV6:  "icmpv6",
	unix.IPPROTO_SCTP:    "sctp",
	unix.IPPROTO_GRE:     "gre",
	unix.IPPROTO_DCCP:    "dccp",
}

func l4Name(n uint8) string {
	if s, ok := l4Names[n]; ok {
		return s
	}
	return "unknown"
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

// appendDefault appends the flow in conntrack's default format (the
// /proc/net/nf_conntrack style), with no newline.
func (p *printer) appendDefault(b []byte, f *ctnetlink.Flow, msg int) []byte {
	start := len(b)
	switch msg {
	case msgNew:
		b = fmt.Appendf(b, "%9s ", "[NEW]")
	case msgUpdate:
		b = fmt.Appendf(b, "%9s ", "[UPDATE]")
	case msgDestroy:
		b = fmt.Appendf(b, "%9s ", "[DESTROY]")
	}
	fam := flowFamily(f)
	if p.extended {
		b = append(appendPadded(b, l3Name(fam), 8), ' ')
		b = append(strconv.AppendUint(b, uint64(fam), 10), ' ')
	}
	proto := f.TupleOrig.Proto.Num
	b = append(appendPadded(b, l4Name(proto), 8), ' ')
	b = append(strconv.AppendUint(b, uint64(proto), 10), ' ')
	if f.Has(ctnetlink.FlowAttrTimeout) {
		b = append(strconv.AppendUint(b, uint64(f.Timeout), 10), ' ')
	}
	if hasTCPState(f) {
		b = append(append(b, libTCPState(uint8(f.ProtoInfo.TCP.State))...), ' ')
	}
	if hasSCTPState(f) {
		b = append(append(b, libSCTPState(uint8(f.ProtoInfo.SCTP.State))...), ' ')
	}
	if hasDCCPState(f) {
		s := uint8(f.ProtoInfo.DCCP.State)
		if s >= libDCCPMax {
			s = 0
		}
		b = append(append(b, libSCTPState(s)...), ' ')
	}
	b = appendTuple(b, &f.TupleOrig, fam)
	if f.TupleOrig.Has(ctnetlink.TupleAttrZone) {
		b = fmt.Appendf(b, "zone-orig=%d ", f.TupleOrig.Zone)
	}
	if countersPresent(&f.CountersOrig) {
		pk, by := counterValues(&f.CountersOrig)
		b = appendField(appendField(b, "packets", pk), "bytes", by)
	}
	hasStatus := f.Has(ctnetlink.FlowAttrStatus)
	if hasStatus && f.Status&ctnetlink.StatusSeenReply == 0 {
		b = append(b, "[UNREPLIED] "...)
	}
	b = appendTuple(b, &f.TupleReply, fam)
	if f.TupleReply.Has(ctnetlink.TupleAttrZone) {
		b = fmt.Appendf(b, "zone-reply=%d ", f.TupleReply.Zone)
	}
	if countersPresent(&f.CountersReply) {
		pk, by := counterValues(&f.CountersReply)
		b = appendField(appendField(b, "packets", pk), "bytes", by)
	}
	if hasStatus {
		switch {
		case f.Status&ctnetlink.StatusHWOffload != 0:
			b = append(b, "[HW_OFFLOAD] "...)
		case f.Status&ctnetlink.StatusOffload != 0:
			b = append(b, "[OFFLOAD] "...)
		case f.Status&ctnetlink.StatusAssured != 0:
			b = append(b, "[ASSURED] "...)
		}
	}
	if f.Has(ctnetlink.FlowAttrMark) {
		b = appendField(b, "mark", uint64(f.Mark))
	}
	if f.Has(ctnetlink.FlowAttrSecmark) {
		b = fmt.Appendf(b, "secmark=%d ", f.Secmark)
	}
	if hasSecCtx(f) {
		b = fmt.Appendf(b, "secctx=%s ", f.SecCtx.SecCtxName)
	}
	if f.Has(ctnetlink.FlowAttrZone) {
		b = fmt.Appendf(b, "zone=%d ", f.Zone)
	}
	if hasTimestampStart(f) {
		stop := p.time().Unix()
		if f.Timestamp.Stop != 0 {
			stop = int64(f.Timestamp.Stop / 1e9)
		}
		b = fmt.Appendf(b, "delta-time=%d ", uint64(stop-int64(f.Timestamp.Start/1e9)))
	}
	if p.ktimestamp {
		if hasTimestampStart(f) {
			b = fmt.Appendf(b, "[start=%s] ", ctime(int64(f.Timestamp.Start/1e9)))
		}
		if hasTimestampStop(f) {
			b = fmt.Appendf(b, "[stop=%s] ", ctime(int64(f.Timestamp.Stop/1e9)))
		}
	}
	if hasHelper(f) {
		b = fmt.Appendf(b, "helper=%s ", f.Help.Name)
	}
	if f.Has(ctnetlink.FlowAttrUse) {
		b = appendField(b, "use", uint64(f.Use))
	}
	if p.id && f.Has(ctnetlink.FlowAttrID) {
		b = appendField(b, "id", uint64(f.ID))
	}
	if p.showLabels && p.labels != nil && f.Has(ctnetlink.FlowAttrLabels) {
		b = append(b, "labels="...)
		n := 0
		for i := 0; i < len(f.Labels)*8; i++ {
			if !labelBitSet(f.Labels, i) {
				continue
			}
			if name, ok := p.labels.name(i); ok {
				b = append(append(b, name...), ',')
				n++
			}
		}
		// conntrack overwrites the last ',' (or, with no name, the '=')
		// with the separating space.
		b = append(b[:len(b)-1], ' ')
	}
	// The last field's space goes.
	if len(b) > start {
		b = b[:len(b)-1]
	}
	return b
}

// appendFlowOpen appends the opening <flow> tag, with the event type of msg.
func appendFlowOpen(b []byte, msg int) []byte {
	switch msg {
	case msgNew:
		return append(b, `<flow type="new">`...)
	case msgUpdate:
		return append(b, `<flow type="update">`...)
	case msgDestroy:
		return append(b, `<flow type="destroy">`...)
	}
	return append(b, "<flow>"...)
}

// appendXML appends the flow as one <flow> element.
func (p *printer) appendXML(b []byte, f *ctnetlink.Flow, msg int, when bool) []byte {
	b = appendFlowOpen(b, msg)
	fam := flowFamily(f)
	origCounters := countersPresent(&f.CountersOrig)
	tuple := func(b []byte, dir string, t *ctnetlink.Tuple, c *ctnetlink.Counters) []byte {
		b = append(append(append(b, `<meta direction="`...), dir...), `"><layer3 protonum="`...)
		b = append(append(append(strconv.AppendUint(b, uint64(fam), 10), `" protoname="`...), l3Name(fam)...), `"><src>`...)
		src, dst := t.IP.V4Src, t.IP.V4Dst
		if fam == unix.AF_INET6 {
			src, dst = t.IP.V6Src, t.IP.V6Dst
		}
		b = append(appendIP(b, src, fam), "</src><dst>"...)
		b = append(appendIP(b, dst, fam), "</dst></layer3>"...)
		n := t.Proto.Num
		b = append(strconv.AppendUint(append(b, `<layer4 protonum="`...), uint64(n), 10), `" protoname="`...)
		b = append(append(b, l4Name(n)...), `">`...)
		b = appendL4XML(b, t)
		b = append(b, "</layer4>"...)
		if t.Has(ctnetlink.TupleAttrZone) {
			b = fmt.Appendf(b, "<zone>%d</zone>", t.Zone)
		}
		if origCounters {
			pk, by := counterValues(c)
			b = strconv.AppendUint(append(b, "<counters><packets>"...), pk, 10)
			b = strconv.AppendUint(append(b, "</packets><bytes>"...), by, 10)
			b = append(b, "</bytes></counters>"...)
		}
		return append(b, "</meta>"...)
	}
	b = tuple(b, "original", &f.TupleOrig, &f.CountersOrig)
	b = tuple(b, "reply", &f.TupleReply, &f.CountersReply)

	hasLabels := f.Has(ctnetlink.FlowAttrLabels)
	independent := hasTCPState(f) || hasSCTPState(f) || hasDCCPState(f) ||
		f.Has(ctnetlink.FlowAttrTimeout) || f.Has(ctnetlink.FlowAttrMark) ||
		f.Has(ctnetlink.FlowAttrSecmark) || f.Has(ctnetlink.FlowAttrZone) ||
		f.Has(ctnetlink.FlowAttrUse) || f.Has(ctnetlink.FlowAttrStatus) ||
		f.Has(ctnetlink.FlowAttrID) || hasLabels ||
		hasTimestampStart(f) || hasTimestampStop(f)
	if independent {
		b = append(b, `<meta direction="independent">`...)
	}
	if hasTCPState(f) {
		b = append(append(append(b, "<state>"...), libTCPState(uint8(f.ProtoInfo.TCP.State))...), "</state>"...)
	}
	if hasSCTPState(f) {
		s := uint8(f.ProtoInfo.SCTP.State)
		if s >= libSCTPMax {
			s = 0
		}
		b = fmt.Appendf(b, "<state>%s</state>", libTCPState(s))
	}
	if hasDCCPState(f) {
		// libnetfilter_conntrack bounds the DCCP state with the SCTP
		// state's value.
		s := uint8(f.ProtoInfo.DCCP.State)
		if uint8(f.ProtoInfo.SCTP.State) >= libDCCPMax {
			s = 0
		}
		b = fmt.Appendf(b, "<state>%s</state>", libTCPState(s))
	}
	if f.Has(ctnetlink.FlowAttrTimeout) {
		b = append(strconv.AppendUint(append(b, "<timeout>"...), uint64(f.Timeout), 10), "</timeout>"...)
	}
	if f.Has(ctnetlink.FlowAttrMark) {
		b = append(strconv.AppendUint(append(b, "<mark>"...), uint64(f.Mark), 10), "</mark>"...)
	}
	if p.showLabels && p.labels != nil && hasLabels {
		b = append(b, "<labels>"...)
		for i := 0; i < len(f.Labels)*8; i++ {
			if labelBitSet(f.Labels, i) {
				if name, ok := p.labels.name(i); ok {
					b = fmt.Appendf(b, "<label>%s</label>", name)
				}
			}
		}
		b = append(b, "</labels>"...)
	}
	if f.Has(ctnetlink.FlowAttrSecmark) {
		b = fmt.Appendf(b, "<secmark>%d</secmark>", f.Secmark)
	}
	if hasSecCtx(f) {
		b = fmt.Appendf(b, "<secctx>%s</secctx>", f.SecCtx.SecCtxName)
	}
	if f.Has(ctnetlink.FlowAttrZone) {
		b = fmt.Appendf(b, "<zone>%d</zone>", f.Zone)
	}
	if f.Has(ctnetlink.FlowAttrUse) {
		b = append(strconv.AppendUint(append(b, "<use>"...), uint64(f.Use), 10), "</use>"...)
	}
	if f.Has(ctnetlink.FlowAttrID) {
		b = append(strconv.AppendUint(append(b, "<id>"...), uint64(f.ID), 10), "</id>"...)
	}
	if f.Has(ctnetlink.FlowAttrStatus) && f.Status&ctnetlink.StatusAssured != 0 {
		b = append(b, "<assured/>"...)
	}
	if f.Has(ctnetlink.FlowAttrStatus) && f.Status&ctnetlink.StatusSeenReply == 0 {
		b = append(b, "<unreplied/>"...)
	}
	start, stop := hasTimestampStart(f), hasTimestampStop(f)
	if p.ktimestamp && (start || stop) {
		b = append(b, "<timestamp>"...)
		if start {
			b = fmt.Appendf(b, "<start>%d</start>", f.Timestamp.Start)
		}
		if stop {
			b = fmt.Appendf(b, "<stop>%d</stop>", f.Timestamp.Stop)
		}
		b = append(b, "</timestamp>"...)
	}
	switch {
	case start && stop:
		b = fmt.Appendf(b, "<deltatime>%d</deltatime>", uint64(int64(f.Timestamp.Stop-f.Timestamp.Start)/1e9))
	case start:
		b = fmt.Appendf(b, "<deltatime>%d</deltatime>", uint64(p.time().Unix()-int64(f.Timestamp.Start/1e9)))
	}
	if independent {
		b = append(b, "</meta>"...)
	}
	if when {
		b = appendWhen(b, p.time())
	}
	if hasHelper(f) {
		b = fmt.Appendf(b, "<helper>%s</helper>", f.Help.Name)
	}
	return append(b, "</flow>"...)
}

// appendWhen appends the local time t as the <when> element of the XML
// format.
func appendWhen(b []byte, t time.Time) []byte {
	return fmt.Appendf(b, "<when><hour>%d</hour><min>%02d</min><sec>%02d</sec><wday>%d</wday><day>%d</day><month>%d</month><year>%d</year></when>",
		t.Hour(), t.Minute(), t.Second(), int(t.Weekday())+1, t.Day(), int(t.Month()), t.Year())
}

// appendL4XML appends the ports (or GRE keys) of a tuple in the XML
// format; other protocols have none.
func appendL4XML(b []byte, t *ctnetlink.Tuple) []byte {
	switch n := t.Proto.Num; {
	case isPortProto(n):
		b = strconv.AppendUint(append(b, "<sport>"...), uint64(t.Proto.SrcPort), 10)
		b = strconv.AppendUint(append(b, "</sport><dport>"...), uint64(t.Proto.DstPort), 10)
		b = append(b, "</dport>"...)
	case n == unix.IPPROTO_GRE:
		b = fmt.Appendf(b, "<srckey>0x%x</srckey><dstkey>0x%x</dstkey>", t.Proto.SrcPort, t.Proto.DstPort)
	}
	return b
}

// isSNAT and isDNAT are libnetfilter_conntrack's NFCT_GOPT_IS_SNAT and
// NFCT_GOPT_IS_DNAT: the NAT is done and the reply tuple's address
// differs from the original's.
func isSNAT(f *ctnetlink.Flow) bool {
	return f.Has(ctnetlink.FlowAttrStatus) && f.Status&ctnetlink.StatusSrcNATDone != 0 &&
		f.TupleReply.Dst() != f.TupleOrig.Src()
}

func isDNAT(f *ctnetlink.Flow) bool {
	return f.Has(ctnetlink.FlowAttrStatus) && f.Status&ctnetlink.StatusDstNATDone != 0 &&
		f.TupleReply.Src() != f.TupleOrig.Dst()
}

// isSPAT and isDPAT are the port forms: they hold without a status.
func isSPAT(f *ctnetlink.Flow) bool {
	return (!f.Has(ctnetlink.FlowAttrStatus) || f.Status&ctnetlink.StatusSrcNATDone != 0) &&
		f.TupleReply.Proto.DstPort != f.TupleOrig.Proto.SrcPort
}

func isDPAT(f *ctnetlink.Flow) bool {
	return (!f.Has(ctnetlink.FlowAttrStatus) || f.Status&ctnetlink.StatusDstNATDone != 0) &&
		f.TupleReply.Proto.SrcPort != f.TupleOrig.Proto.DstPort
}

// saveStatusNames are the status bits -o save prints, in bit order.
var saveStatusNames = []struct {
	bit  ctnetlink.Status
	name string
}{
	{ctnetlink.StatusExpected, "EXPECTED"},
	{ctnetlink.StatusSeenReply, "SEEN_REPLY"},
	{ctnetlink.StatusAssured, "ASSURED"},
	{ctnetlink.StatusFixedTimeout, "FIXED_TIMEOUT"},
}

// appendSave appends the flow as a conntrack command line (-o save), which
// conntrack -R reads back. It returns ok false, with a warning, for a flow
// of an unknown family, for which conntrack prints an empty line.
func appendSave(b []byte, f *ctnetlink.Flow, msg int) ([]byte, string) {
	start := len(b)
	switch msg {
	case msgNew:
		b = append(b, "-A "...)
	case msgUpdate:
		b = append(b, "-U "...)
	case msgDestroy:
		b = append(b, "-D "...)
	}
	if f.Has(ctnetlink.FlowAttrTimeout) {
		b = fmt.Appendf(b, "-t %d ", f.Timeout)
	}
	if f.Has(ctnetlink.FlowAttrStatus) {
		b = append(b, "-u "...)
		n := 0
		for _, s := range saveStatusNames {
			if f.Status&s.bit != 0 {
				b = append(append(b, s.name...), ',')
				n++
			}
		}
		if n > 0 {
			b = append(b[:len(b)-1], ' ')
		} else {
			b = append(b, "UNSET "...)
		}
	}
	if f.Has(ctnetlink.FlowAttrSecmark) {
		b = fmt.Appendf(b, "-c %d ", f.Secmark)
	}
	if f.Has(ctnetlink.FlowAttrZone) {
		b = fmt.Appendf(b, "-w %d ", f.Zone)
	}
	if f.TupleOrig.Has(ctnetlink.TupleAttrZone) {
		b = fmt.Appendf(b, "--orig-zone %d ", f.TupleOrig.Zone)
	}
	if f.TupleReply.Has(ctnetlink.TupleAttrZone) {
		b = fmt.Appendf(b, "--reply-zone %d ", f.TupleReply.Zone)
	}
	fam := flowFamily(f)
	if fam != unix.AF_INET && fam != unix.AF_INET6 {
		return b[:start], fmt.Sprintf("WARNING: unsupported l3proto %d, skipping.\n", fam)
	}
	addr := func(b []byte, flag string, a netip.Addr) []byte {
		if a.IsValid() {
			b = fmt.Appendf(b, "%s %s ", flag, ipString(a, fam))
		}
		return b
	}
	b = addr(b, "-s", f.TupleOrig.Src())
	b = addr(b, "-d", f.TupleOrig.Dst())
	replSrcFlag, replDstFlag := "-r", "-q"
	if isDNAT(f) {
		replSrcFlag = "-g"
	}
	if isSNAT(f) {
		replDstFlag = "-n"
	}
	b = addr(b, replSrcFlag, f.TupleReply.Src())
	b = addr(b, replDstFlag, f.TupleReply.Dst())

	proto := f.TupleOrig.Proto.Num
	name := protoName(proto)
	if name == "" {
		b = fmt.Appendf(b, "-p %d ", proto)
	} else {
		b = fmt.Appendf(b, "-p %s ", name)
		o, r := &f.TupleOrig.Proto, &f.TupleReply.Proto
		port := func(b []byte, flag string, present bool, v uint16) []byte {
			if present {
				b = fmt.Appendf(b, "%s %d ", flag, v)
			}
			return b
		}
		switch proto {
		case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP:
			b = port(b, "--sport", o.Has(ctnetlink.TupleProtoAttrSrcPort), o.SrcPort)
			b = port(b, "--dport", o.Has(ctnetlink.TupleProtoAttrDstPort), o.DstPort)
			b = port(b, "--reply-port-src", r.Has(ctnetlink.TupleProtoAttrSrcPort), r.SrcPort)
			b = port(b, "--reply-port-dst", r.Has(ctnetlink.TupleProtoAttrDstPort), r.DstPort)
		case unix.IPPROTO_GRE:
			b = port(b, "--srckey", o.Has(ctnetlink.TupleProtoAttrSrcPort), o.SrcPort)
			b = port(b, "--dstkey", o.Has(ctnetlink.TupleProtoAttrDstPort), o.DstPort)
			b = port(b, "--reply-key-src", r.Has(ctnetlink.TupleProtoAttrSrcPort), r.SrcPort)
			b = port(b, "--reply-key-dst", r.Has(ctnetlink.TupleProtoAttrDstPort), r.DstPort)
		case unix.IPPROTO_ICMP:
			if o.Has(ctnetlink.TupleProtoAttrICMPType) {
				b = fmt.Appendf(b, "--icmp-type %d ", o.ICMPType)
			}
			if o.Has(ctnetlink.TupleProtoAttrICMPCode) {
				b = fmt.Appendf(b, "--icmp-code %d ", o.ICMPCode)
			}
			b = port(b, "--icmp-id", o.Has(ctnetlink.TupleProtoAttrICMPID), o.ICMPID)
		case unix.IPPROTO_ICMPV6:
			if o.Has(ctnetlink.TupleProtoAttrICMPv6Type) {
				b = fmt.Appendf(b, "--icmpv6-type %d ", o.ICMPv6Type)
			}
			if o.Has(ctnetlink.TupleProtoAttrICMPv6Code) {
				b = fmt.Appendf(b, "--icmpv6-code %d ", o.ICMPv6Code)
			}
			b = port(b, "--icmpv6-id", o.Has(ctnetlink.TupleProtoAttrICMPv6ID), o.ICMPv6ID)
		}
		switch proto {
		case unix.IPPROTO_TCP:
			if hasTCPState(f) {
				b = fmt.Appendf(b, "--state %s ", saveState(tcpStates, uint8(f.ProtoInfo.TCP.State)))
			}
		case unix.IPPROTO_SCTP:
			s := &f.ProtoInfo.SCTP
			if hasSCTPState(f) {
				b = fmt.Appendf(b, "--state %s ", saveState(sctpStates, uint8(s.State)))
			}
			if s.Has(ctnetlink.ProtoInfoSCTPAttrVTagOriginal) {
				b = fmt.Appendf(b, "--orig-vtag %d ", bswap32(s.VTagOriginal))
			}
			if s.Has(ctnetlink.ProtoInfoSCTPAttrVTagReply) {
				b = fmt.Appendf(b, "--reply-vtag %d ", bswap32(s.VTagReply))
			}
		case unix.IPPROTO_DCCP:
			d := &f.ProtoInfo.DCCP
			if hasDCCPState(f) {
				b = fmt.Appendf(b, "--state %s ", saveState(dccpStates, uint8(d.State)))
			}
			if d.Has(ctnetlink.ProtoInfoDCCPAttrRole) {
				b = fmt.Appendf(b, "--role %s ", saveState(dccpRoles, uint8(d.Role)))
			}
		}
	}
	for len(b) > start && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b, ""
}

func saveState(names []string, v uint8) string {
	if int(v) < len(names) {
		return names[v]
	}
	return nullString
}

// bswap32 reverses the bytes of v. conntrack-tools converts SCTP
// verification tags to network order twice, once when it parses them and
// once when it sends them, and back twice when it prints them; ctspec
// does the same so that both agree on the kernel's value.
func bswap32(v uint32) uint32 {
	return v>>24 | v>>8&0xff00 | v<<8&0xff0000 | v<<24
}
