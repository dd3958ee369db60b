package main

import (
	"encoding/json"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// jsonTuple is one direction of a flow in -o json.
type jsonTuple struct {
	Src     string  `json:"src"`
	Dst     string  `json:"dst"`
	Sport   *uint16 `json:"sport,omitempty"`
	Dport   *uint16 `json:"dport,omitempty"`
	SrcKey  *uint16 `json:"srckey,omitempty"`
	DstKey  *uint16 `json:"dstkey,omitempty"`
	Type    *uint8  `json:"type,omitempty"`
	Code    *uint8  `json:"code,omitempty"`
	ID      *uint16 `json:"id,omitempty"`
	Zone    *uint16 `json:"zone,omitempty"`
	Packets *uint64 `json:"packets,omitempty"`
	Bytes   *uint64 `json:"bytes,omitempty"`
}

// jsonFlow is a flow in -o json: one object per line, with the fields the
// kernel reported. Names follow conntrack's default output.
type jsonFlow struct {
	Type      string     `json:"type,omitempty"`
	Family    string     `json:"family"`
	Proto     string     `json:"proto"`
	ProtoNum  uint8      `json:"protonum"`
	Timeout   *uint32    `json:"timeout,omitempty"`
	State     string     `json:"state,omitempty"`
	Orig      jsonTuple  `json:"orig"`
	Reply     jsonTuple  `json:"reply"`
	Status    []string   `json:"status,omitempty"`
	Mark      *uint32    `json:"mark,omitempty"`
	Secmark   *uint32    `json:"secmark,omitempty"`
	SecCtx    string     `json:"secctx,omitempty"`
	Zone      *uint16    `json:"zone,omitempty"`
	Helper    string     `json:"helper,omitempty"`
	Labels    []string   `json:"labels,omitempty"`
	Use       *uint32    `json:"use,omitempty"`
	ID        *uint32    `json:"id,omitempty"`
	Timestamp *jsonStamp `json:"timestamp,omitempty"`
	DeltaTime *uint64    `json:"delta_time,omitempty"`
}

type jsonStamp struct {
	Start uint64 `json:"start"`
	Stop  uint64 `json:"stop,omitempty"`
}

// statusNames are the kernel's IPS_* names without the prefix.
var statusNames = []struct {
	bit  ctnetlink.Status
	name string
}{
	{ctnetlink.StatusExpected, "EXPECTED"}, {ctnetlink.StatusSeenReply, "SEEN_REPLY"},
	{ctnetlink.StatusAssured, "ASSURED"}, {ctnetlink.StatusConfirmed, "CONFIRMED"},
	{ctnetlink.StatusSrcNAT, "SRC_NAT"}, {ctnetlink.StatusDstNAT, "DST_NAT"},
	{ctnetlink.StatusSeqAdjust, "SEQ_ADJUST"}, {ctnetlink.StatusSrcNATDone, "SRC_NAT_DONE"},
	{ctnetlink.StatusDstNATDone, "DST_NAT_DONE"}, {ctnetlink.StatusDying, "DYING"},
	{ctnetlink.StatusFixedTimeout, "FIXED_TIMEOUT"}, {ctnetlink.StatusTemplate, "TEMPLATE"},
	{ctnetlink.StatusUntracked, "UNTRACKED"}, {ctnetlink.StatusHelper, "HELPER"},
	{ctnetlink.StatusOffload, "OFFLOAD"}, {ctnetlink.StatusHWOffload, "HW_OFFLOAD"},
}

func jsonTupleOf(t *ctnetlink.Tuple, c *ctnetlink.Counters, fam uint8) jsonTuple {
	j := jsonTuple{Src: tupleSrc(t, fam), Dst: tupleDst(t, fam)}
	p := t.Proto
	switch n := p.Num; {
	case isPortProto(n):
		j.Sport, j.Dport = &p.SrcPort, &p.DstPort
	case n == unix.IPPROTO_GRE:
		j.SrcKey, j.DstKey = &p.SrcPort, &p.DstPort
	case n == unix.IPPROTO_ICMP || n == unix.IPPROTO_ICMPV6:
		typ, code, id := icmpFields(t)
		j.Type, j.Code, j.ID = &typ, &code, &id
	}
	if t.Has(ctnetlink.TupleAttrZone) {
		z := t.Zone
		j.Zone = &z
	}
	if countersPresent(c) {
		pk, by := counterValues(c)
		j.Packets, j.Bytes = &pk, &by
	}
	return j
}

// appendJSON appends the flow as one JSON object.
func appendJSON(b []byte, f *ctnetlink.Flow, msg int, p *printer) []byte {
	fam := flowFamily(f)
	j := jsonFlow{
		Type:     jsonType(msg),
		Family:   l3Name(fam),
		Proto:    l4Name(f.TupleOrig.Proto.Num),
		ProtoNum: f.TupleOrig.Proto.Num,
		Orig:     jsonTupleOf(&f.TupleOrig, &f.CountersOrig, fam),
		Reply:    jsonTupleOf(&f.TupleReply, &f.CountersReply, fam),
	}
	if f.Has(ctnetlink.FlowAttrTimeout) {
		v := f.Timeout
		j.Timeout = &v
	}
	j.State = jsonState(f)
	if f.Has(ctnetlink.FlowAttrStatus) {
		j.Status = []string{}
		for _, s := range statusNames {
			if f.Status&s.bit != 0 {
				j.Status = append(j.Status, s.name)
			}
		}
	}
	if f.Has(ctnetlink.FlowAttrMark) {
		v := f.Mark
		j.Mark = &v
	}
	if f.Has(ctnetlink.FlowAttrSecmark) {
		v := f.Secmark
		j.Secmark = &v
	}
	if hasSecCtx(f) {
		j.SecCtx = f.SecCtx.SecCtxName
	}
	if f.Has(ctnetlink.FlowAttrZone) {
		v := f.Zone
		j.Zone = &v
	}
	if hasHelper(f) {
		j.Helper = f.Help.Name
	}
	if f.Has(ctnetlink.FlowAttrLabels) {
		j.Labels = p.jsonLabels(f.Labels)
	}
	if f.Has(ctnetlink.FlowAttrUse) {
		v := f.Use
		j.Use = &v
	}
	if f.Has(ctnetlink.FlowAttrID) {
		v := f.ID
		j.ID = &v
	}
	if hasTimestampStart(f) {
		j.Timestamp = &jsonStamp{Start: f.Timestamp.Start, Stop: f.Timestamp.Stop}
		stop := p.time().Unix()
		if f.Timestamp.Stop != 0 {
			stop = int64(f.Timestamp.Stop / 1e9)
		}
		d := uint64(stop - int64(f.Timestamp.Start/1e9))
		j.DeltaTime = &d
	}
	out, err := json.Marshal(&j)
	if err != nil {
		return b
	}
	return append(b, out...)
}

// jsonType is the "type" of an event, or "" for a listed flow.
func jsonType(msg int) string {
	switch msg {
	case msgNew:
		return "new"
	case msgUpdate:
		return "update"
	case msgDestroy:
		return "destroy"
	}
	return ""
}

// jsonState is the protocol state's name, or "".
func jsonState(f *ctnetlink.Flow) string {
	switch {
	case hasTCPState(f):
		return libTCPState(uint8(f.ProtoInfo.TCP.State))
	case hasSCTPState(f):
		return saveState(sctpStates, uint8(f.ProtoInfo.SCTP.State))
	case hasDCCPState(f):
		return saveState(dccpStates, uint8(f.ProtoInfo.DCCP.State))
	}
	return ""
}

// jsonLabels lists the label bits set, by name where the label map has
// one and by number where it has not.
func (p *printer) jsonLabels(labels []byte) []string {
	out := []string{}
	for i := 0; i < len(labels)*8; i++ {
		if !labelBitSet(labels, i) {
			continue
		}
		if name, ok := p.labels.name(i); ok {
			out = append(out, name)
		} else {
			out = append(out, fmt.Sprint(i))
		}
	}
	return out
}
