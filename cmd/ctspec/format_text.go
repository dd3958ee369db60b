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
