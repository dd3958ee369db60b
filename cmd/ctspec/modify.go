package main

import (
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// icmpReply returns the reply type of an ICMP or ICMPv6 type, as
// libnetfilter_conntrack fills in the reply tuple, or 255, which the
// kernel refuses, for a type without one.
func icmpReply(proto, typ uint8) uint8 {
	if proto == unix.IPPROTO_ICMPV6 {
		switch typ {
		case 128:
			return 129
		case 129:
			return 128
		case 139:
			return 140
		case 140:
			return 139
		}
		return 255
	}
	switch typ {
	case 8:
		return 0
	case 0:
		return 8
	case 13:
		return 14
	case 14:
		return 13
	case 15:
		return 16
	case 16:
		return 15
	case 17:
		return 18
	case 18:
		return 17
	}
	return 255
}

// invert returns the tuple of the other direction of t, as
// libnetfilter_conntrack's autocompletion does.
func invert(t *ctnetlink.Tuple, proto uint8) ctnetlink.Tuple {
	var r ctnetlink.Tuple
	if a := t.Dst(); a.IsValid() {
		setTupleSrc(&r, a)
	}
	if a := t.Src(); a.IsValid() {
		setTupleDst(&r, a)
	}
	r.Proto.SetNum(proto)
	switch proto {
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		typ, code, id := icmpFields(t)
		if proto == unix.IPPROTO_ICMPV6 {
			r.Proto.SetICMPv6Type(icmpReply(proto, typ))
			r.Proto.SetICMPv6Code(code)
			r.Proto.SetICMPv6ID(id)
		} else {
			r.Proto.SetICMPType(icmpReply(proto, typ))
			r.Proto.SetICMPCode(code)
			r.Proto.SetICMPID(id)
		}
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP, unix.IPPROTO_GRE:
		r.Proto.SetSrcPort(t.Proto.DstPort)
		r.Proto.SetDstPort(t.Proto.SrcPort)
	}
	return r
}

// buildFlow turns the command line into a flow for a create (full) or a
// get (the tuples and id).
func (c *cmdLine) buildFlow(full bool) ctnetlink.Flow {
	var f ctnetlink.Flow
	t := &c.tmpl
	proto := c.protoNum
	orig, repl := t.TupleOrig, t.TupleReply
	orig.Proto.SetNum(proto)
	if c.replL3 != 0 || c.replL4 {
		repl.Proto.SetNum(proto)
	}
	hasOrig := c.options&(bit(optOrigSrc)|bit(optOrigDst)) != 0
	hasRepl := c.options&(bit(optReplSrc)|bit(optReplDst)) != 0
	if full {
		switch {
		case hasOrig && !hasRepl:
			z := repl
			repl = invert(&orig, proto)
			if z.Has(ctnetlink.TupleAttrZone) {
				repl.SetZone(z.Zone)
			}
		case hasRepl && !hasOrig:
			z := orig
			orig = invert(&repl, proto)
			if z.Has(ctnetlink.TupleAttrZone) {
				orig.SetZone(z.Zone)
			}
		}
	}
	if full {
		fam := c.family
		completeTuple(&orig, fam, proto, nil)
		completeTuple(&repl, fam, proto, &orig)
	}
	if hasOrig || !hasRepl || full {
		f.SetTupleOrig(orig)
	}
	if hasRepl || full {
		f.SetTupleReply(repl)
	}
	if t.Has(ctnetlink.FlowAttrID) {
		f.SetID(t.ID)
	}
	if !full {
		return f
	}
	c.setCreateAttrs(&f)
	return f
}

// setCreateAttrs sets what a create sends besides the tuples and id:
// status, timeout, mark, secmark, zone, protocol state, NAT and labels.
func (c *cmdLine) setCreateAttrs(f *ctnetlink.Flow) {
	t := &c.tmpl
	proto := c.protoNum
	if t.Has(ctnetlink.FlowAttrStatus) {
		f.SetStatus(t.Status | ctnetlink.StatusConfirmed)
	}
	if t.Has(ctnetlink.FlowAttrTimeout) {
		f.SetTimeout(t.Timeout)
	}
	if c.options&bit(optMark) != 0 {
		f.SetMark(c.mark)
	}
	if t.Has(ctnetlink.FlowAttrSecmark) {
		f.SetSecmark(t.Secmark)
	}
	if t.Has(ctnetlink.FlowAttrZone) {
		f.SetZone(t.Zone)
	}
	switch proto {
	case unix.IPPROTO_TCP:
		if hasTCPState(t) {
			f.ProtoInfo.SetTCP(t.ProtoInfo.TCP)
		}
	case unix.IPPROTO_SCTP:
		if hasSCTPState(t) || t.ProtoInfo.SCTP.Has(ctnetlink.ProtoInfoSCTPAttrVTagOriginal) || t.ProtoInfo.SCTP.Has(ctnetlink.ProtoInfoSCTPAttrVTagReply) {
			f.ProtoInfo.SetSCTP(t.ProtoInfo.SCTP)
		}
	case unix.IPPROTO_DCCP:
		if hasDCCPState(t) || t.ProtoInfo.DCCP.Has(ctnetlink.ProtoInfoDCCPAttrRole) {
			f.ProtoInfo.SetDCCP(t.ProtoInfo.DCCP)
		}
	}
	if c.hasSNAT {
		n := natAttr(c.snat, proto)
		f.SetNATSrc(&n)
	}
	if c.hasDNAT {
		n := natAttr(c.dnat, proto)
		f.SetNATDst(&n)
	}
	if c.modifyBits != nil && c.options&bit(optAddLabel) != 0 {
		f.SetLabels(c.modifyBits)
	}
}

// completeTuple fills what a tuple of a create lacks as conntrack's
// zeroed template does: the family's zero address, port 0, and for ICMP
// the fields of the other direction (the reply type for a request).
func completeTuple(t *ctnetlink.Tuple, fam, proto uint8, other *ctnetlink.Tuple) {
	zero := netip.IPv4Unspecified()
	if fam == unix.AF_INET6 {
		zero = netip.IPv6Unspecified()
	}
	if !t.Src().IsValid() {
		setTupleSrc(t, zero)
	}
	if !t.Dst().IsValid() {
		setTupleDst(t, zero)
	}
	p := &t.Proto
	switch proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP, unix.IPPROTO_GRE:
		if !p.Has(ctnetlink.TupleProtoAttrSrcPort) {
			p.SetSrcPort(0)
		}
		if !p.Has(ctnetlink.TupleProtoAttrDstPort) {
			p.SetDstPort(0)
		}
	case unix.IPPROTO_ICMP:
		if other != nil && !p.Has(ctnetlink.TupleProtoAttrICMPType) {
			p.SetICMPType(icmpReply(proto, other.Proto.ICMPType))
			p.SetICMPCode(other.Proto.ICMPCode)
			p.SetICMPID(other.Proto.ICMPID)
		}
	case unix.IPPROTO_ICMPV6:
		if other != nil && !p.Has(ctnetlink.TupleProtoAttrICMPv6Type) {
			p.SetICMPv6Type(icmpReply(proto, other.Proto.ICMPv6Type))
			p.SetICMPv6Code(other.Proto.ICMPv6Code)
			p.SetICMPv6ID(other.Proto.ICMPv6ID)
		}
	}
}

func natAttr(s natSpec, proto uint8) ctnetlink.NAT {
	var n ctnetlink.NAT
	if s.addr.Is4() {
		n.SetV4MinIP(s.addr)
	} else if s.addr.IsValid() {
		n.SetV6MinIP(s.addr)
	}
	if s.hasPort && (proto == unix.IPPROTO_TCP || proto == unix.IPPROTO_UDP) {
		var p ctnetlink.NATProto
		p.SetPortMin(s.port)
		p.SetPortMax(s.port)
		n.SetProto(p)
	}
	return n
}

// create runs -I and -A lines. Consecutive lines go to the kernel in one
// pipelined batch. conntrack 1.4.7 sends -A as it sends -I, with
// NLM_F_EXCL, and takes EEXIST as success without counting the flow: -A
// leaves a flow that exists as it is.
func (a *app) create(lines []*cmdLine) (int, error) {
	var b createBatch
	for _, c := range lines {
		b.add(c)
	}
	return a.createBatch(&b)
}

// createBatch is a run of consecutive creations: the flows to create and
// the command (ctCreate or ctAdd) of each, whose errors differ.
type createBatch struct {
	flows []ctnetlink.Flow
	cmds  []int
}

// add appends the creation of command line c.
func (b *createBatch) add(c *cmdLine) {
	b.flows = append(b.flows, c.buildFlow(true))
	b.cmds = append(b.cmds, c.cmd)
}

// reset empties b and keeps its storage.
func (b *createBatch) reset() {
	b.flows, b.cmds = b.flows[:0], b.cmds[:0]
}

// createBatch sends the creations of b in one pipelined bulk request and
// stops, as conntrack does, at the first that fails: a failing -A of a
// flow that exists is no failure.
func (a *app) createBatch(b *createBatch) (int, error) {
	flows := b.flows
	if len(flows) == 0 {
		return 0, nil
	}
	res, err := a.conn.CreateMany(a.ctx, flows)
	if err != nil {
		return 0, opFailed(err, b.cmds[0])
	}
	var failed map[int]bool
	for _, e := range res.Errors {
		if failed == nil {
			failed = map[int]bool{}
		}
		failed[e.Index] = true
	}
	for _, e := range res.Errors {
		if b.cmds[e.Index] == ctAdd && errors.Is(e.Err, unix.EEXIST) {
			continue
		}
		// conntrack stops at the failing line. The kernel went on with
		// the rest of the batch: remove the flows the later lines made.
		var later []ctnetlink.Flow
		for j := e.Index + 1; j < len(flows); j++ {
			if !failed[j] {
				later = append(later, flows[j])
			}
		}
		if len(later) > 0 {
			a.conn.DeleteMany(a.ctx, later)
		}
		return res.Done, opFailed(e.Err, b.cmds[e.Index])
	}
	if res.NotFound > 0 {
		return res.Done, opFailed(unix.ENOENT, b.cmds[0])
	}
	return res.Done, nil
}

// update runs -U: every flow that matches gets the new timeout, mark,
// status, protocol state or labels, and is printed as it is afterwards.
// Flows the change would not alter are left alone and not counted.
func (a *app) update(c *cmdLine) (int, error) {
	if err := c.checkNetmask(); err != nil {
		return 0, err
	}
	var changes []ctnetlink.Flow
	for f, err := range a.conn.Dump(a.ctx, &ctnetlink.Selector{Family: c.family}) {
		if err != nil {
			if errors.Is(err, ctnetlink.ErrDumpInterrupted) {
				break
			}
			return 0, opFailed(err, c.cmd)
		}
		if !c.matchNAT(f) || !c.matchLabels(f) || !c.matchNetmask(f) {
			continue
		}
		if c.tmpl.Has(ctnetlink.FlowAttrID) && f.Has(ctnetlink.FlowAttrID) && c.tmpl.ID != f.ID {
			continue
		}
		if c.options&(bit(optOrigSrc)|bit(optOrigDst)|bit(optProto)) != 0 && !c.compare(f, false, true, false) {
			continue
		}
		if c.options&(bit(optReplSrc)|bit(optReplDst)|bit(optProto)) != 0 && !c.compare(f, false, false, true) {
			continue
		}
		if u, ok := c.updateFor(f); ok {
			changes = append(changes, u)
		}
	}
	res, err := a.conn.UpdateMany(a.ctx, changes)
	if err != nil {
		return 0, opFailed(err, c.cmd)
	}
	failed := map[int]bool{}
	for _, e := range res.Errors {
		if c.options&(bit(optAddLabel)|bit(optDelLabel)) != 0 && errors.Is(e.Err, unix.ENOSPC) {
			failed[e.Index] = true
			continue
		}
		return 0, opFailed(e.Err, c.cmd)
	}
	// conntrack prints updated flows in XML without the document's
	// header and closing tag.
	l := &lister{a: a, c: c, p: c.printer(), xmlOpen: true}
	n := 0
	for i := range changes {
		if failed[i] {
			continue
		}
		f, err := a.conn.Get(a.ctx, &changes[i])
		if err != nil {
			continue // gone meanwhile
		}
		l.print(f, msgNone)
		n++
	}
	return n, nil
}

// updateFor returns the update of flow f, and false when it would change
// nothing.
func (c *cmdLine) updateFor(f *ctnetlink.Flow) (ctnetlink.Flow, bool) {
	var u ctnetlink.Flow
	u.SetTupleOrig(f.TupleOrig)
	if f.Has(ctnetlink.FlowAttrZone) {
		u.SetZone(f.Zone)
	}
	changed := false
	t := &c.tmpl
	if t.Has(ctnetlink.FlowAttrTimeout) {
		u.SetTimeout(t.Timeout)
		changed = changed || t.Timeout != f.Timeout
	}
	if c.options&bit(optMark) != 0 {
		m := f.Mark&^c.markMask ^ c.mark
		u.SetMark(m)
		changed = changed || m != f.Mark
	}
	if c.options&bit(optStatus) != 0 {
		s := f.Status | ctnetlink.Status(c.status)
		u.SetStatus(s)
		changed = changed || s != f.Status
	}
	if hasTCPState(t) && f.TupleOrig.Proto.Num == unix.IPPROTO_TCP {
		u.ProtoInfo.SetTCP(t.ProtoInfo.TCP)
		changed = changed || !hasTCPState(f) || f.ProtoInfo.TCP.State != t.ProtoInfo.TCP.State
	}
	if hasSCTPState(t) && f.TupleOrig.Proto.Num == unix.IPPROTO_SCTP {
		u.ProtoInfo.SetSCTP(t.ProtoInfo.SCTP)
		changed = changed || !hasSCTPState(f) || f.ProtoInfo.SCTP.State != t.ProtoInfo.SCTP.State
	}
	if c.options&(bit(optAddLabel)|bit(optDelLabel)) != 0 {
		labels, mask, ok := c.newLabels(f)
		if ok {
			u.SetLabels(labels)
			if mask != nil {
				u.SetLabelsMask(mask)
			}
			// conntrack compares the mask too, which the flow never has:
			// a flow with labels always changes.
			changed = changed || f.Has(ctnetlink.FlowAttrLabels) || string(labels) != string(f.Labels)
		}
	}
	return u, changed
}

// newLabels computes the labels and mask --label-add or --label-del sends
// for flow f, as conntrack's copy_label does.
func (c *cmdLine) newLabels(f *ctnetlink.Flow) (labels, mask []byte, ok bool) {
	cur := f.Labels
	if !f.Has(ctnetlink.FlowAttrLabels) {
		cur = nil
	}
	if c.options&bit(optAddLabel) != 0 {
		if cur == nil {
			return append([]byte(nil), c.modifyBits...), nil, true
		}
		labels = make([]byte, len(cur))
		mask = make([]byte, len(cur))
		for i := 0; i < len(cur)*8; i++ {
			if labelBitSet(c.modifyBits, i) {
				labels[i/8] |= 1 << (i % 8)
				mask[i/8] |= 1 << (i % 8)
			}
		}
		return labels, mask, true
	}
	if cur == nil {
		return nil, nil, false
	}
	if c.labelDelAll && c.modifyBits == nil {
		return make([]byte, 4), nil, true
	}
	// The labels go with the named bits cleared. conntrack's mask is the
	// bitmap of the names, which libnetfilter_conntrack drops unless it
	// is as long as the labels; without one the kernel replaces them all.
	labels = append([]byte(nil), cur...)
	for i := 0; i < len(cur)*8; i++ {
		if labelBitSet(c.modifyBits, i) {
			labels[i/8] &^= 1 << (i % 8)
		}
	}
	if len(c.modifyBits) == len(cur) {
		mask = append([]byte(nil), c.modifyBits...)
	}
	return labels, mask, true
}
