package main

import (
	"fmt"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

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
	// conntrack prints both directions' counters when the original
	// direction has them.
	counters := countersPresent(&f.CountersOrig)
	b = appendXMLDir(b, "original", &f.TupleOrig, &f.CountersOrig, fam, counters)
	b = appendXMLDir(b, "reply", &f.TupleReply, &f.CountersReply, fam, counters)
	independent := hasTCPState(f) || hasSCTPState(f) || hasDCCPState(f) ||
		f.Has(ctnetlink.FlowAttrTimeout) || f.Has(ctnetlink.FlowAttrMark) ||
		f.Has(ctnetlink.FlowAttrSecmark) || f.Has(ctnetlink.FlowAttrZone) ||
		f.Has(ctnetlink.FlowAttrUse) || f.Has(ctnetlink.FlowAttrStatus) ||
		f.Has(ctnetlink.FlowAttrID) || f.Has(ctnetlink.FlowAttrLabels) ||
		hasTimestampStart(f) || hasTimestampStop(f)
	if independent {
		b = append(b, `<meta direction="independent">`...)
	}
	b = appendXMLState(b, f)
	b = p.appendXMLIndependent(b, f)
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

// appendXMLDir appends the <meta> element of one direction.
func appendXMLDir(b []byte, dir string, t *ctnetlink.Tuple, c *ctnetlink.Counters, fam uint8, counters bool) []byte {
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
	b = append(append(b, ctnetlink.ProtoName(n)...), `">`...)
	b = appendL4XML(b, t)
	b = append(b, "</layer4>"...)
	if t.Has(ctnetlink.TupleAttrZone) {
		b = fmt.Appendf(b, "<zone>%d</zone>", t.Zone)
	}
	if counters {
		pk, by := counterValues(c)
		b = strconv.AppendUint(append(b, "<counters><packets>"...), pk, 10)
		b = strconv.AppendUint(append(b, "</packets><bytes>"...), by, 10)
		b = append(b, "</bytes></counters>"...)
	}
	return append(b, "</meta>"...)
}

// appendXMLState appends the protocol state.
func appendXMLState(b []byte, f *ctnetlink.Flow) []byte {
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
	return b
}

// appendXMLIndependent appends the rest of the direction-independent
// <meta>: timeout, mark, labels, security context, zone, use, ID,
// status and times.
func (p *printer) appendXMLIndependent(b []byte, f *ctnetlink.Flow) []byte {
	if f.Has(ctnetlink.FlowAttrTimeout) {
		b = append(strconv.AppendUint(append(b, "<timeout>"...), uint64(f.Timeout), 10), "</timeout>"...)
	}
	if f.Has(ctnetlink.FlowAttrMark) {
		b = append(strconv.AppendUint(append(b, "<mark>"...), uint64(f.Mark), 10), "</mark>"...)
	}
	if p.showLabels && p.labels != nil && f.Has(ctnetlink.FlowAttrLabels) {
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
	return b
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
