package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/ctspec/ctspec/ctnetlink"
)

const enobufsWarning = "WARNING: We have hit ENOBUFS! We are losing events.\n" +
	"This message means that the current netlink socket buffer size is too small.\n" +
	"Please, check --buffer-size in conntrack(8) manpage.\n"

// events runs -E: it prints flow events until SIGINT or SIGTERM, then the
// number of events shown. A lost-events overrun is reported on stderr and
// the stream goes on.
func (a *app) events(c *cmdLine) (int, error) {
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
	cfg := &ctnetlink.ListenConfig{Groups: groups}
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
	l, err := ctnetlink.Listen(cfg)
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
	ctx, stop := signalContext(a.ctx)
	defer stop()

	p := c.printer()
	lp := &lister{a: a, c: c, p: p}
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
		msg := map[ctnetlink.EventType]int{ctnetlink.EventNew: msgNew, ctnetlink.EventUpdate: msgUpdate, ctnetlink.EventDestroy: msgDestroy}[ev.Type]
		a.printEvent(lp, ev, msg)
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

func (a *app) printEvent(l *lister, ev *ctnetlink.Event, msg int) {
	c := l.c
	f := ev.Flow
	if c.output&outSave != 0 || c.output&outJSON != 0 {
		l.print(f, msg)
		return
	}
	b := l.buf[:0]
	if c.output&outXML != 0 {
		if !l.xmlOpen {
			l.xmlOpen = true
			a.out.WriteString("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<conntrack>\n")
		}
		b = l.p.appendXML(b, f, msg, c.output&outTimestamp != 0)
	} else {
		if c.output&outTimestamp != 0 {
			t, ok := ev.Time()
			if !ok {
				t = time.Now()
			}
			b = fmt.Appendf(b, "[%08d.%06d]\t", t.Unix(), t.Nanosecond()/1000)
		}
		b = l.p.appendDefault(b, f, msg)
	}
	b = append(b, '\n')
	a.out.Write(b)
	l.buf = b
}
