package main

import (
	"errors"
	"fmt"

	"github.com/ctspec/ctspec/ctnetlink"
)

// appendExpect appends an expectation in conntrack's default format.
func appendExpect(b []byte, e *ctnetlink.Expect, msg int) []byte {
	start := len(b)
	switch msg {
	case msgNew:
		b = fmt.Appendf(b, "%9s ", "[NEW]")
	case msgUpdate:
		b = fmt.Appendf(b, "%9s ", "[UPDATE]")
	case msgDestroy:
		b = fmt.Appendf(b, "%9s ", "[DESTROY]")
	}
	fam := e.Family()
	if e.Has(ctnetlink.ExpectAttrTimeout) {
		b = fmt.Appendf(b, "%d ", e.Timeout)
	}
	b = fmt.Appendf(b, "proto=%d ", e.Tuple.Proto.Num)
	tuple := func(b []byte, t *ctnetlink.Tuple, src, dst string) []byte {
		b = fmt.Appendf(b, "%s=%s %s=%s ", src, tupleSrc(t, fam), dst, tupleDst(t, fam))
		t2 := *t
		if t2.Proto.Num == 0 {
			t2.Proto.Num = e.Tuple.Proto.Num
		}
		full := appendTuple(nil, &t2, fam)
		// appendTuple starts with the addresses; keep the protocol part.
		addrLen := len(fmt.Sprintf("src=%s dst=%s ", tupleSrc(t, fam), tupleDst(t, fam)))
		return append(b, full[addrLen:]...)
	}
	b = tuple(b, &e.Tuple, "src", "dst")
	b = tuple(b, &e.Mask, "mask-src", "mask-dst")
	b = tuple(b, &e.Master, "master-src", "master-dst")
	if e.Has(ctnetlink.ExpectAttrZone) {
		b = fmt.Appendf(b, "zone=%d ", e.Zone)
	}
	delim := ""
	if e.Flags&ctnetlink.ExpectFlagsPermanent != 0 {
		b = append(b, "PERMANENT"...)
		delim = ","
	}
	if e.Flags&ctnetlink.ExpectFlagsInactive != 0 {
		b = append(append(b, delim...), "INACTIVE"...)
		delim = ","
	}
	if e.Flags&ctnetlink.ExpectFlagsUserspace != 0 {
		b = append(append(b, delim...), "USERSPACE"...)
	}
	if e.Flags != 0 {
		b = append(b, ' ')
	}
	if e.Has(ctnetlink.ExpectAttrClass) {
		b = fmt.Appendf(b, "class=%d ", e.Class)
	}
	if e.Has(ctnetlink.ExpectAttrHelpName) {
		b = fmt.Appendf(b, "helper=%s", e.HelpName)
	}
	if len(b) > start && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// appendExpectXML appends an expectation as one <flow> element, as
// libnetfilter_conntrack's XML printer does: the addresses of the
// expected tuple, the mask and the master under <layer3>, their ports
// under <layer4>, then <meta>. when adds the local time of printing.
func appendExpectXML(b []byte, e *ctnetlink.Expect, msg int, when bool) []byte {
	b = appendFlowOpen(b, msg)
	fam := e.Family()
	proto := e.Tuple.Proto.Num
	// The kernel reports the mask's protocol as the tuple's; a mask
	// without one prints with the tuple's, as in the default format.
	mask := e.Mask
	if mask.Proto.Num == 0 {
		mask.Proto.Num = proto
	}
	tuples := []struct {
		name string
		t    *ctnetlink.Tuple
	}{{"expected", &e.Tuple}, {"mask", &mask}, {"master", &e.Master}}
	b = fmt.Appendf(b, `<layer3 protonum="%d" protoname="%s">`, fam, l3Name(fam))
	for _, x := range tuples {
		b = fmt.Appendf(b, "<%s><src>%s</src><dst>%s</dst></%s>", x.name, tupleSrc(x.t, fam), tupleDst(x.t, fam), x.name)
	}
	b = append(b, "</layer3>"...)
	b = fmt.Appendf(b, `<layer4 protonum="%d" protoname="%s">`, proto, ctnetlink.ProtoName(proto))
	for _, x := range tuples {
		b = fmt.Appendf(b, "<%s>", x.name)
		b = appendL4XML(b, x.t)
		b = fmt.Appendf(b, "</%s>", x.name)
	}
	b = append(b, "</layer4><meta>"...)
	if e.Has(ctnetlink.ExpectAttrHelpName) {
		b = fmt.Appendf(b, "<helper-name>%s</helper-name>", e.HelpName)
	}
	if e.Has(ctnetlink.ExpectAttrTimeout) {
		b = fmt.Appendf(b, "<timeout>%d</timeout>", e.Timeout)
	}
	if e.Has(ctnetlink.ExpectAttrClass) {
		b = fmt.Appendf(b, "<class>%d</class>", e.Class)
	}
	if e.Has(ctnetlink.ExpectAttrZone) {
		b = fmt.Appendf(b, "<zone>%d</zone>", e.Zone)
	}
	if when {
		b = appendWhen(b, nowFunc())
	}
	if e.Flags&ctnetlink.ExpectFlagsPermanent != 0 {
		b = append(b, "<permanent/>"...)
	}
	if e.Flags&ctnetlink.ExpectFlagsInactive != 0 {
		b = append(b, "<inactive/>"...)
	}
	if e.Flags&ctnetlink.ExpectFlagsUserspace != 0 {
		b = append(b, "<userspace/>"...)
	}
	return append(b, "</meta></flow>"...)
}

// expectPrinter prints the expectations of a listing or of events, with
// conntrack's XML header before the first and a closing tag at the end.
type expectPrinter struct {
	a       *app
	c       *cmdLine
	xmlOpen bool
	buf     []byte
}

func (p *expectPrinter) print(e *ctnetlink.Expect, msg int) {
	b := p.buf[:0]
	xml := p.c.output&outXML != 0
	tms := p.c.output&outTimestamp != 0
	switch {
	case xml:
		if !p.xmlOpen {
			p.xmlOpen = true
			p.a.out.WriteString("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<expect>\n")
		}
		b = appendExpectXML(b, e, msg, tms)
	default:
		if tms {
			t := nowFunc()
			b = fmt.Appendf(b, "[%-8d.%-6d]\t", t.Unix(), t.Nanosecond()/1000)
		}
		b = appendExpect(b, e, msg)
	}
	b = append(b, '\n')
	p.a.out.Write(b)
	p.buf = b
}

// close ends the XML document, when one was begun.
func (p *expectPrinter) close() {
	if p.xmlOpen {
		p.a.out.WriteString("</expect>\n")
		p.xmlOpen = false
	}
}

// expectTuple is the tuple of the command line (-s, -d, -p and ports),
// which -G and -D look expectations up by.
func (c *cmdLine) expectTuple() ctnetlink.Tuple {
	t := c.tmpl.TupleOrig
	t.Proto.SetNum(c.protoNum)
	return t
}

func (a *app) expect(c *cmdLine) (int, error) {
	ctx := a.ctx
	switch c.cmd {
	case expList:
		n := 0
		p := &expectPrinter{a: a, c: c}
		for e, err := range a.conn.DumpExpect(ctx, c.family) {
			if err != nil {
				if errors.Is(err, ctnetlink.ErrDumpInterrupted) {
					break
				}
				return n, opFailed(err, c.cmd)
			}
			p.print(e, msgNone)
			n++
		}
		p.close()
		return n, nil
	case expGet:
		// conntrack sends the tuple of the command line as the master
		// tuple, which the kernel looks up as an expected tuple: -G finds
		// the expectation that a connection with that tuple would match.
		var q ctnetlink.Expect
		q.SetTuple(c.expectTuple())
		e, err := a.conn.GetExpect(ctx, &q)
		if err != nil {
			return 0, opFailed(err, c.cmd)
		}
		p := &expectPrinter{a: a, c: c}
		p.print(e, msgNone)
		return 1, nil
	case expDelete:
		var q ctnetlink.Expect
		q.SetTuple(c.expectTuple())
		if err := a.conn.DeleteExpect(ctx, &q); err != nil {
			return 0, opFailed(err, c.cmd)
		}
		return 0, nil
	case expCreate:
		return 0, a.createExpect(c)
	case expFlush:
		err := a.conn.FlushExpect(ctx, 0)
		fmt.Fprintf(a.stderr, "%s: expectation table has been emptied.\n", versionString)
		return 0, opFailed(err, c.cmd)
	case expCount:
		n := 0
		for _, err := range a.conn.DumpExpect(ctx, c.family) {
			if err != nil {
				if errors.Is(err, ctnetlink.ErrDumpInterrupted) {
					break
				}
				return 0, opFailed(err, c.cmd)
			}
			n++
		}
		fmt.Fprintf(a.out, "%d\n", n)
		return 0, nil
	case expStats:
		return 0, a.expectStats(c)
	case expEvent:
		return a.expectEvents(c)
	}
	return 0, nil
}

// createExpect creates the expectation of an -I expect command line.
func (a *app) createExpect(c *cmdLine) error {
	var e ctnetlink.Expect
	e.SetMaster(c.expectTuple())
	t := c.exp
	t.Proto.SetNum(c.protoNum)
	e.SetTuple(t)
	m := c.mask
	m.Proto.SetNum(c.protoNum)
	e.SetMask(m)
	// conntrack sends -t too, but the kernel starts every new
	// expectation with its helper's timeout; ctspec leaves it so.
	if c.options&bit(optStatus) != 0 {
		e.SetFlags(ctnetlink.ExpectFlags(c.status))
	}
	if err := a.conn.CreateExpect(a.ctx, &e); err != nil {
		return opFailed(err, c.cmd)
	}
	return nil
}

// expectStats prints the expectation statistics of each CPU (-S expect).
func (a *app) expectStats(c *cmdLine) error {
	ctx := a.ctx
	st, err := a.conn.ExpectStatsCPU(ctx)
	if err != nil {
		return opFailed(err, c.cmd)
	}
	for _, s := range st {
		fmt.Fprintf(a.out, "cpu=%-4d\t", s.CPU)
		if s.Has(ctnetlink.ExpectStatsCPUAttrNew) {
			fmt.Fprintf(a.out, "expect_new=%d ", s.New)
		}
		if s.Has(ctnetlink.ExpectStatsCPUAttrCreate) {
			fmt.Fprintf(a.out, "expect_create=%d ", s.Create)
		}
		if s.Has(ctnetlink.ExpectStatsCPUAttrDelete) {
			fmt.Fprintf(a.out, "expect_delete=%d ", s.Delete)
		}
		fmt.Fprintf(a.out, "\n")
	}
	return nil
}

func (a *app) expectEvents(c *cmdLine) (int, error) {
	groups := []ctnetlink.Group{ctnetlink.GroupExpNew, ctnetlink.GroupExpDestroy}
	l, err := ctnetlink.Listen(&ctnetlink.ListenConfig{Groups: groups})
	if err != nil {
		return 0, otherError("Can't open handler")
	}
	defer l.Close()
	ctx, stop := signalContext(a.ctx)
	defer stop()
	n := 0
	p := &expectPrinter{a: a, c: c}
	for ev, err := range l.Events(ctx) {
		if err != nil {
			if errors.Is(err, ctnetlink.ErrEventsLost) || ctx.Err() == nil {
				continue
			}
			break
		}
		if ev.Expect == nil {
			continue
		}
		p.print(ev.Expect, eventMsg(ev.Type))
		a.out.Flush()
		n++
	}
	p.close()
	a.out.Flush()
	fmt.Fprintf(a.stderr, "%s: %d expectation events have been shown.\n", versionString, n)
	return 0, nil
}
