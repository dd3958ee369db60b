package main

import (
	"strconv"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// jsonTuple is one direction of a flow in -o json. The tags name each
// field as appendJSONFlow writes it, in the order it writes them, and say
// which it leaves out when empty, as encoding/json would.
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
		Proto:    ctnetlink.ProtoName(f.TupleOrig.Proto.Num),
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
	return appendJSONFlow(b, &j)
}

// appendJSONFlow appends j as encoding/json marshals it, without
// reflection.
func appendJSONFlow(b []byte, j *jsonFlow) []byte {
	o := jsonObject{b: append(b, '{')}
	o.strOmit("type", j.Type)
	o.str("family", j.Family)
	o.str("proto", j.Proto)
	o.uint("protonum", uint64(j.ProtoNum))
	if j.Timeout != nil {
		o.uint("timeout", uint64(*j.Timeout))
	}
	o.strOmit("state", j.State)
	o.key("orig")
	o.b = appendJSONTuple(o.b, &j.Orig)
	o.key("reply")
	o.b = appendJSONTuple(o.b, &j.Reply)
	o.strs("status", j.Status)
	if j.Mark != nil {
		o.uint("mark", uint64(*j.Mark))
	}
	if j.Secmark != nil {
		o.uint("secmark", uint64(*j.Secmark))
	}
	o.strOmit("secctx", j.SecCtx)
	if j.Zone != nil {
		o.uint("zone", uint64(*j.Zone))
	}
	o.strOmit("helper", j.Helper)
	o.strs("labels", j.Labels)
	if j.Use != nil {
		o.uint("use", uint64(*j.Use))
	}
	if j.ID != nil {
		o.uint("id", uint64(*j.ID))
	}
	if j.Timestamp != nil {
		o.key("timestamp")
		t := jsonObject{b: append(o.b, '{')}
		t.uint("start", j.Timestamp.Start)
		if j.Timestamp.Stop != 0 {
			t.uint("stop", j.Timestamp.Stop)
		}
		o.b = append(t.b, '}')
	}
	if j.DeltaTime != nil {
		o.uint("delta_time", *j.DeltaTime)
	}
	return append(o.b, '}')
}

// appendJSONTuple appends t as encoding/json marshals it.
func appendJSONTuple(b []byte, t *jsonTuple) []byte {
	o := jsonObject{b: append(b, '{')}
	o.str("src", t.Src)
	o.str("dst", t.Dst)
	for _, m := range [...]struct {
		key string
		v   *uint16
	}{{"sport", t.Sport}, {"dport", t.Dport}, {"srckey", t.SrcKey}, {"dstkey", t.DstKey}} {
		if m.v != nil {
			o.uint(m.key, uint64(*m.v))
		}
	}
	if t.Type != nil {
		o.uint("type", uint64(*t.Type))
	}
	if t.Code != nil {
		o.uint("code", uint64(*t.Code))
	}
	if t.ID != nil {
		o.uint("id", uint64(*t.ID))
	}
	if t.Zone != nil {
		o.uint("zone", uint64(*t.Zone))
	}
	if t.Packets != nil {
		o.uint("packets", *t.Packets)
	}
	if t.Bytes != nil {
		o.uint("bytes", *t.Bytes)
	}
	return append(o.b, '}')
}

// jsonObject appends the members of a JSON object after its '{'.
type jsonObject struct {
	b    []byte
	more bool // a member was written: the next needs a comma
}

// key appends a member's name.
func (o *jsonObject) key(k string) {
	if o.more {
		o.b = append(o.b, ',')
	}
	o.more = true
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

func (o *jsonObject) str(k, v string) {
	o.key(k)
	o.b = appendJSONString(o.b, v)
}

// strOmit appends a string member unless it is empty (omitempty).
func (o *jsonObject) strOmit(k, v string) {
	if v != "" {
		o.str(k, v)
	}
}

func (o *jsonObject) uint(k string, v uint64) {
	o.key(k)
	o.b = strconv.AppendUint(o.b, v, 10)
}

// strs appends an array of strings unless it is empty (omitempty).
func (o *jsonObject) strs(k string, v []string) {
	if len(v) == 0 {
		return
	}
	o.key(k)
	o.b = append(o.b, '[')
	for i, s := range v {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendJSONString(o.b, s)
	}
	o.b = append(o.b, ']')
}

// appendJSONString appends s quoted as encoding/json quotes strings:
// '<', '>' and '&' escaped for HTML, control characters as \b, \f, \n,
// \r, \t or \u00XX, U+2028 and U+2029 escaped, and each byte of invalid
// UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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
			out = append(out, strconv.Itoa(i))
		}
	}
	return out
}
