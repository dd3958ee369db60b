package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

const enobufsWarning = "WARNING: We have hit ENOBUFS! We are losing events.\n" +
	"This message means that the current netlink socket buffer size is too small.\n" +
	"Please, check --buffer-size in conntrack(8) manpage.\n"

// events runs -E: it prints flow events until SIGINT or SIGTERM, then the
// number of events shown. A lost-events overrun is reported on stderr and
// the stream goes on.
//
// conntrack filters events in user space only. ctspec also hands what the
// kernel can evaluate to it (eventFilter), so that events no option
// selects never fill the socket's buffer, and then applies conntrack's
// own filter (matches), which decides what is printed.
func (a *app) events(c *cmdLine) (int, error) {
	// Signals that arrive from here on end the stream with the summary.
	ctx, stop := signalContext(a.ctx)
	defer stop()

	l, err := ctnetlink.Listen(c.listenConfig())
	if err != nil {
		return 0, otherError("Can't open netlink socket")
	}
	defer l.Close()
	if c.options&bit(optBufferSize) != 0 {
		fmt.Fprintf(a.stderr, "NOTICE: Netlink socket buffer size has been set to %d bytes.\n", l.ReadBuffer())
	}
	if err := c.checkNetmask(); err != nil {
		return 0, err
	}
	a.warnNoEvents()

	p := c.printer()
	lp := &lister{a: a, c: c, p: p}
	var names portNames
	n := 0
	var lastErr error
	for ev, err := range l.Events(ctx) {
		if err != nil {
			if errors.Is(err, ctnetlink.ErrEventsLost) {
				a.out.Flush()
				a.warn(enobufsWarning)
				continue
			}
			if ctx.Err() != nil {
				break
			}
			// A message that does not decode is skipped; a failure of the
			// socket is the stream's last value.
			lastErr = err
			continue
		}
		lastErr = nil
		if ev.Flow == nil {
			continue
		}
		f := ev.Flow
		if c.family != 0 && flowFamily(f) != c.family {
			continue
		}
		if !c.matches(f) {
			continue
		}
		a.printEvent(lp, ev, eventMsg(ev.Type), &names)
		a.out.Flush()
		n++
	}
	lp.close()
	a.out.Flush()
	if lastErr != nil && ctx.Err() == nil {
		return n, otherError("failed to received netlink event: %s", lastErr)
	}
	return n, nil
}

// eventMsg returns the message kind conntrack prints for an event type.
func eventMsg(t ctnetlink.EventType) int {
	switch t {
	case ctnetlink.EventNew, ctnetlink.EventExpNew:
		return msgNew
	case ctnetlink.EventUpdate:
		return msgUpdate
	case ctnetlink.EventDestroy, ctnetlink.EventExpDestroy:
		return msgDestroy
	}
	return msgNone
}

// listenConfig returns the Listener's configuration for the command
// line: the groups of -e, the buffer size of -b and the kernel's part of
// the filter.
func (c *cmdLine) listenConfig() *ctnetlink.ListenConfig {
	groups := []ctnetlink.Group{ctnetlink.GroupNew, ctnetlink.GroupUpdate, ctnetlink.GroupDestroy}
	if c.options&bit(optEventMask) != 0 {
		groups = groups[:0]
		if c.eventMask&evNew != 0 {
			groups = append(groups, ctnetlink.GroupNew)
		}
		if c.eventMask&evUpdate != 0 {
			groups = append(groups, ctnetlink.GroupUpdate)
		}
		if c.eventMask&evDestroy != 0 {
			groups = append(groups, ctnetlink.GroupDestroy)
		}
	}
	cfg := &ctnetlink.ListenConfig{Groups: groups, Filter: c.eventFilter()}
	if c.options&bit(optBufferSize) != 0 {
		cfg.ReadBuffer = int(c.bufSize)
		if cfg.ReadBuffer <= 0 {
			cfg.ReadBuffer = -1
		}
	}
	if len(groups) == 0 {
		// conntrack subscribes to nothing and waits.
		cfg.Groups = []ctnetlink.Group{ctnetlink.GroupExpUpdate}
	}
	return cfg
}

// warnNoEvents prints, on stderr, why the namespace will have no events,
// when ctnetlink.Diagnose finds a reason: nf_conntrack_events set to 0, or
// a kernel without conntrack events. It prints nothing in the usual
// cases, nf_conntrack_events 1 or 2, so that the output stays conntrack's.
func (a *app) warnNoEvents() {
	d, err := ctnetlink.Diagnose(0)
	if err != nil || d.Conntrack && d.Events > 0 {
		return
	}
	for _, h := range d.Hints() {
		fmt.Fprintf(a.stderr, "WARNING: %s\n", h)
	}
}

// printEvent prints one event as conntrack's event_cb does. Every format
// but JSON, which conntrack does not have, ends with conntrack 1.4.7's
// " [USERSPACE] portid=N progname=P" for an event that a netlink request
// caused. 1.4.7 prints it whether or not -o userspace is given, and so
// does ctspec: the option is accepted and changes nothing.
func (a *app) printEvent(l *lister, ev *ctnetlink.Event, msg int, names *portNames) {
	c := l.c
	f := ev.Flow
	if c.output&outJSON != 0 {
		l.print(f, msg)
		return
	}
	b := l.buf[:0]
	switch {
	case c.output&outSave != 0:
		var warning string
		b, warning = appendSave(b, f, msg)
		if warning != "" {
			a.warn(warning)
		}
	case c.output&outXML != 0:
		l.openXML()
		b = l.p.appendXML(b, f, msg, c.output&outTimestamp != 0)
	default:
		if c.output&outTimestamp != 0 {
			t, ok := ev.Time()
			if !ok {
				t = time.Now()
			}
			b = fmt.Appendf(b, "[%08d.%06d]\t", t.Unix(), t.Nanosecond()/1000)
		}
		b = l.p.appendDefault(b, f, msg)
	}
	if ev.PortID != 0 {
		b = fmt.Appendf(b, " [USERSPACE] portid=%d", ev.PortID)
		if name, ok := names.lookup(ev.PortID); ok {
			b = append(b, " progname="...)
			b = append(b, name...)
		}
	}
	b = append(b, '\n')
	a.out.Write(b)
	l.buf = b
}

// eventFilter returns the part of the command line's filter that the
// kernel can evaluate, as a ctnetlink.Selector, or nil for none. It
// selects a superset of the events that pass the family check and matches
// (conntrack's nfct_filter), so that it never drops an event conntrack
// would print; those two decide what is printed.
//
// What it leaves to user space: the NAT options, labels, secmark, the
// tuple zones, ICMP fields, protocol states, reply ports, and the bits of
// a netmask after its first 0 bit. -u (status) and -i (id) are not
// allowed with -E.
func (c *cmdLine) eventFilter() *ctnetlink.Selector {
	var f ctnetlink.Selector
	set := false
	if c.family == unix.AF_INET || c.family == unix.AF_INET6 {
		// conntrack compares the family of the message; the kernel's is
		// that of the original tuple's addresses, as flowFamily.
		f.Family = c.family
		set = true
	}
	if c.proto != nil && c.options&bit(optProto) != 0 {
		f.Proto = ctnetlink.Protocol(c.protoNum)
		set = true
		// compareTuple checks the ports of these protocols only: GRE
		// keeps its keys in the same attributes.
		if isPortProto(c.protoNum) {
			o := &c.tmpl.TupleOrig.Proto
			if o.Has(ctnetlink.TupleProtoAttrSrcPort) {
				f.OrigSrcPort = ctnetlink.Port(o.SrcPort)
			}
			if o.Has(ctnetlink.TupleProtoAttrDstPort) {
				f.OrigDstPort = ctnetlink.Port(o.DstPort)
			}
		}
	}
	addr := func(cond *ctnetlink.OneOf[netip.Prefix], a netip.Addr) {
		if a.IsValid() {
			*cond = ctnetlink.HostIs(a)
			set = true
		}
	}
	network := func(cond *ctnetlink.OneOf[netip.Prefix], a, mask netip.Addr) {
		// Exact or not, the prefix selects at least what a and mask do.
		if p, _ := netPrefix(a, mask); p.IsValid() {
			*cond = ctnetlink.Is(p)
			set = true
		}
	}
	if c.options&bit(optOrigSrc) != 0 {
		if c.options&bit(optMaskSrc) != 0 {
			network(&f.OrigSrc, c.netSrc, c.mask.Src())
		} else {
			addr(&f.OrigSrc, c.tmpl.TupleOrig.Src())
		}
	}
	if c.options&bit(optOrigDst) != 0 {
		if c.options&bit(optMaskDst) != 0 {
			network(&f.OrigDst, c.netDst, c.mask.Dst())
		} else {
			addr(&f.OrigDst, c.tmpl.TupleOrig.Dst())
		}
	}
	if c.options&bit(optReplSrc) != 0 {
		addr(&f.ReplySrc, c.tmpl.TupleReply.Src())
	}
	if c.options&bit(optReplDst) != 0 {
		addr(&f.ReplyDst, c.tmpl.TupleReply.Dst())
	}
	// matches wants CTA_MARK with mark&mask == value. The kernel program
	// reads a missing mark as 0 and compares value&mask, which selects
	// more; a zero mask means all bits to it, so it is left out.
	if c.options&bit(optMark) != 0 && c.markMask != 0 {
		f.Mark = ctnetlink.Is(ctnetlink.MarkMatch{Mark: c.mark, Mask: c.markMask})
		set = true
	}
	// conntrack compares CTA_ZONE, which a flow whose zone applies to
	// one direction only does not carry: for it -w 0 holds. The selector
	// compares the zone id, as the kernel does, so a zone other than 0
	// only narrows, and zone 0 is left to matches.
	if c.options&bit(optZone) != 0 && c.tmpl.Zone != 0 {
		f.Zone = ctnetlink.Is(c.tmpl.Zone)
		set = true
	}
	if !set {
		return nil
	}
	return &f
}

// leadingOnes returns the number of 1 bits at the start of a mask.
func leadingOnes(mask netip.Addr) int {
	n := 0
	for _, b := range mask.AsSlice() {
		for i := 7; i >= 0; i-- {
			if b&(1<<i) == 0 {
				return n
			}
			n++
		}
	}
	return n
}

// portNames finds the program that holds a netlink socket, as conntrack's
// get_progname does: it looks the port id up in /proc/net/netlink, then
// looks for a process with a descriptor of that socket, first the one
// whose pid is the port id, then every other. It remembers the last
// answer, found or not, for as long as the port id and inode stay the
// same.
type portNames struct {
	port, inode uint32
	name        string
	found       bool
}

// lookup returns the name of the program (its comm) that holds the
// NETLINK_NETFILTER socket with port id port.
func (p *portNames) lookup(port uint32) (string, bool) {
	b, err := os.ReadFile("/proc/net/netlink")
	if err != nil {
		return "", false
	}
	want := strconv.FormatUint(uint64(port), 10)
	for _, line := range strings.Split(string(b), "\n") {
		// sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
		f := strings.Fields(line)
		if len(f) < 10 || f[1] != strconv.Itoa(unix.NETLINK_NETFILTER) || f[2] != want {
			continue
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			continue
		}
		if p.port == port && uint64(p.inode) == ino {
			return p.name, p.found
		}
		p.name, p.found = nameBySocket(port, ino)
		p.port, p.inode = port, uint32(ino)
		return p.name, p.found
	}
	return "", false
}

// nameBySocket returns the comm of a process with a descriptor of the
// socket inode, trying the pid port first.
func nameBySocket(port uint32, inode uint64) (string, bool) {
	if name, ok := holderName(uint64(port), inode); ok {
		return name, true
	}
	d, err := os.Open("/proc")
	if err != nil {
		return "", false
	}
	defer d.Close()
	// In directory order, as readdir returns it.
	ents, _ := d.ReadDir(-1)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		pid, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil || pid <= 1 || pid == uint64(port) {
			continue
		}
		if name, ok := holderName(pid, inode); ok {
			return name, true
		}
	}
	return "", false
}

// holderName returns the comm of process pid if one of its descriptors
// is the socket inode.
func holderName(pid, inode uint64) (string, bool) {
	dir := "/proc/" + strconv.FormatUint(pid, 10) + "/fd/"
	d, err := os.Open(dir)
	if err != nil {
		return "", false
	}
	ents, _ := d.ReadDir(-1)
	d.Close()
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	for _, e := range ents {
		if e.Type()&os.ModeSymlink == 0 {
			continue
		}
		if l, err := os.Readlink(dir + e.Name()); err == nil && l == want {
			return commOf(pid)
		}
	}
	return "", false
}

// commOf reads the program name from /proc/PID/stat as conntrack's
// "%*u (%m[^)]" does: what follows the pid and " (" up to the first ")".
func commOf(pid uint64) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(pid, 10) + "/stat")
	if err != nil {
		return "", false
	}
	b = bytes.TrimLeft(b, " \t\n")
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 {
		return "", false
	}
	b = bytes.TrimLeft(b[i:], " \t\n")
	if len(b) == 0 || b[0] != '(' {
		return "", false
	}
	b = b[1:]
	if j := bytes.IndexByte(b, ')'); j >= 0 {
		b = b[:j]
	}
	if len(b) == 0 {
		return "", false
	}
	return string(b), true
}
