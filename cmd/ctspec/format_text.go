package main

import (
	"fmt"
	"strconv"

	"github.com/ctspec/ctspec/ctnetlink"
)

// appendDefault appends the flow in conntrack's default format (the
// /proc/net/nf_conntrack style), with no newline.
func (p *printer) appendDefault(b []byte, f *ctnetlink.Flow, msg int) []byte {
	start := len(b)
	fam := flowFamily(f)
	b = p.appendDefaultHead(b, f, msg, fam)
	b = appendDefaultDir(b, &f.TupleOrig, &f.CountersOrig, fam, "zone-orig")
	hasStatus := f.Has(ctnetlink.FlowAttrStatus)
	if hasStatus && f.Status&ctnetlink.StatusSeenReply == 0 {
		b = append(b, "[UNREPLIED] "...)
	}
	b = appendDefaultDir(b, &f.TupleReply, &f.CountersReply, fam, "zone-reply")
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
	b = p.appendDefaultTail(b, f)
	// The last field's space goes.
	if len(b) > start {
		b = b[:len(b)-1]
	}
	return b
}

// appendDefaultHead appends what comes before the tuples: the event
// type, the family with -o extended, the protocol, the timeout and the
// protocol state.
func (p *printer) appendDefaultHead(b []byte, f *ctnetlink.Flow, msg int, fam uint8) []byte {
	switch msg {
	case msgNew:
		b = fmt.Appendf(b, "%9s ", "[NEW]")
	case msgUpdate:
		b = fmt.Appendf(b, "%9s ", "[UPDATE]")
	case msgDestroy:
		b = fmt.Appendf(b, "%9s ", "[DESTROY]")
	}
	if p.extended {
		b = append(appendPadded(b, l3Name(fam), 8), ' ')
		b = append(strconv.AppendUint(b, uint64(fam), 10), ' ')
	}
	proto := f.TupleOrig.Proto.Num
	b = append(appendPadded(b, ctnetlink.ProtoName(proto), 8), ' ')
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
	return b
}

// appendDefaultDir appends one direction: its tuple, its zone and its
// counters.
func appendDefaultDir(b []byte, t *ctnetlink.Tuple, c *ctnetlink.Counters, fam uint8, zoneName string) []byte {
	b = appendTuple(b, t, fam)
	if t.Has(ctnetlink.TupleAttrZone) {
		b = fmt.Appendf(b, "%s=%d ", zoneName, t.Zone)
	}
	if countersPresent(c) {
		pk, by := counterValues(c)
		b = appendField(appendField(b, "packets", pk), "bytes", by)
	}
	return b
}

// appendDefaultTail appends what comes after the status: mark, security
// context, zone, times, helper, use, ID and labels.
func (p *printer) appendDefaultTail(b []byte, f *ctnetlink.Flow) []byte {
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
		b = p.appendLabelNames(b, f.Labels)
	}
	return b
}

// appendLabelNames appends "labels=" and the names of the label bits set.
func (p *printer) appendLabelNames(b []byte, labels []byte) []byte {
	b = append(b, "labels="...)
	for i := 0; i < len(labels)*8; i++ {
		if !labelBitSet(labels, i) {
			continue
		}
		if name, ok := p.labels.name(i); ok {
			b = append(append(b, name...), ',')
		}
	}
	// conntrack overwrites the last ',' (or, with no name, the '=') with
	// the separating space.
	return append(b[:len(b)-1], ' ')
}
