package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// app is one run of the command: its streams and its connection.
type app struct {
	ctx    context.Context
	argv0  string
	stdin  io.Reader
	out    *bufio.Writer // stdout, buffered as the C library buffers it
	stderr io.Writer
	conn   *ctnetlink.Conn
	// summarised is set by a command that printed its own closing lines
	// (ctspec's extensions of -D); status is then the exit status.
	summarised bool
	status     int
}

// run runs the command line and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{ctx: context.Background(), argv0: args[0], stdin: stdin, stderr: stderr}
	// conntrack's stdout is line-buffered on a terminal and block-buffered
	// otherwise, while stderr is unbuffered: with both on one pipe, the
	// summary comes before the listing. ctspec keeps that order.
	size := 4096
	if f, ok := stdout.(*os.File); ok && isTerminal(f) {
		size = 1
	}
	a.out = bufio.NewWriterSize(stdout, size)
	defer a.out.Flush()

	status, err := a.main(args)
	if err != nil {
		a.fail(err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.status
		}
		return 1
	}
	return status
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// fail prints an error as conntrack's exit_error does.
func (a *app) fail(err error) {
	msg := err.Error()
	var ee *exitError
	if !errors.As(err, &ee) {
		ee = &exitError{status: 1, msg: msg}
	}
	// stdout stays buffered until exit, as the C library keeps it.
	fmt.Fprintf(a.stderr, "%s: %s\n", versionString, ee.msg)
	if ee.status == 2 {
		fmt.Fprintf(a.stderr, "Try `%s -h' or '%s --help' for more information.\n", progName, progName)
	}
}

func (a *app) warn(s string) { fmt.Fprint(a.stderr, s) }

// summary prints conntrack's closing line on stderr.
func (a *app) summary(format string, n int) {
	fmt.Fprintf(a.stderr, "%s: "+format, versionString, n)
}

func (a *app) dial() error {
	if a.conn != nil {
		return nil
	}
	c, err := ctnetlink.Dial(nil)
	if err != nil {
		return otherError("Can't open handler")
	}
	a.conn = c
	return nil
}

func (a *app) main(args []string) (int, error) {
	if len(args) > 2 && (args[1] == "-R" || args[1] == "--load-file") {
		return a.loadFile(args[0], args[2])
	}
	c, err := parseCmdLine(args, a.warn)
	if err != nil {
		return 0, err
	}
	if err := a.dial(); err != nil {
		return 0, err
	}
	defer a.conn.Close()
	n, err := a.do(c)
	if err != nil {
		return 0, err
	}
	return a.finish(c, n), nil
}

// summaries are the closing lines, per command; "" where it has none.
var summaries = [numCmd]string{
	ctList:    "%d flow entries have been shown.\n",
	ctCreate:  "%d flow entries have been created.\n",
	ctUpdate:  "%d flow entries have been updated.\n",
	ctDelete:  "%d flow entries have been deleted.\n",
	ctGet:     "%d flow entries have been shown.\n",
	ctEvent:   "%d flow events have been shown.\n",
	expList:   "%d expectations have been shown.\n",
	expDelete: "%d expectations have been shown.\n",
	ctAdd:     "%d flow entries have been added.\n",
}

// finish prints the summary and returns the exit status: a command that
// should have touched flows and touched none fails, as in conntrack.
func (a *app) finish(c *cmdLine, n int) int {
	if a.summarised {
		return a.status
	}
	var format string
	if c.cmd >= 0 && c.cmd < numCmd {
		format = summaries[c.cmd]
	}
	if format == "" {
		return 0
	}
	a.summary(format, n)
	if n == 0 && c.cmd != ctList && c.cmd != expList && c.cmd != ctAdd && c.cmd != ctEvent {
		return 1
	}
	return 0
}

// do runs one parsed command and returns conntrack's counter.
func (a *app) do(c *cmdLine) (int, error) {
	switch c.cmd {
	case ctList:
		return a.list(c)
	case ctGet:
		return a.get(c)
	case ctCreate, ctAdd:
		return a.create([]*cmdLine{c})
	case ctUpdate:
		return a.update(c)
	case ctDelete:
		return a.delete(c)
	case ctFlush:
		err := a.conn.Flush(a.ctx, &ctnetlink.Selector{Family: c.family})
		fmt.Fprintf(a.stderr, "%s: connection tracking table has been emptied.\n", versionString)
		return 0, opFailed(err, c.cmd)
	case ctEvent:
		return a.events(c)
	case ctCount:
		st, err := a.conn.Stats(a.ctx)
		if err != nil {
			return 0, opFailed(err, c.cmd)
		}
		fmt.Fprintf(a.out, "%d\n", int32(st.Entries))
		return 0, nil
	case ctStats:
		return 0, a.stats()
	case ctVersion:
		fmt.Fprintf(a.out, "%s\n", ctspecVersion())
		return 0, nil
	case expList, expCreate, expDelete, expGet, expFlush, expEvent, expCount, expStats:
		return a.expect(c)
	default:
		a.usage(c)
		return 0, nil
	}
}

// opFailed turns a library error into conntrack's "Operation failed"
// message, with conntrack's wording for the errno.
func opFailed(err error, cmd int) error {
	if err == nil {
		return nil
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return otherError("Operation failed: %s", err2str(errno, cmd))
	}
	if errors.Is(err, ctnetlink.ErrDumpInterrupted) {
		return otherError("Operation failed: %s", "Interrupted system call")
	}
	return otherError("Operation failed: %s", err.Error())
}

// err2str is conntrack's table of friendlier messages for some errnos,
// and strerror(3) for the rest.
func err2str(errno unix.Errno, cmd int) string {
	in := func(cmds ...int) bool {
		for _, c := range cmds {
			if c == cmd {
				return true
			}
		}
		return false
	}
	const enotsupp = unix.Errno(524)
	switch {
	case cmd == ctList && errno == enotsupp:
		return "function not implemented"
	case cmd < 16 && errno == unix.EINVAL:
		return "invalid parameters"
	case cmd == ctCreate && errno == unix.EEXIST:
		return "Such conntrack exists, try -U to update"
	case in(ctCreate, ctGet, ctDelete, ctAdd) && errno == unix.ENOENT:
		return "such conntrack doesn't exist"
	case in(ctCreate, ctGet, ctAdd) && errno == unix.ENOMEM:
		return "not enough memory"
	case cmd == ctGet && errno == unix.EAFNOSUPPORT:
		return "protocol not supported"
	case in(ctCreate, ctAdd) && errno == unix.ETIME:
		return "conntrack has expired"
	case cmd == expCreate && errno == unix.ENOENT:
		return "master conntrack not found"
	case cmd == expCreate && errno == unix.EINVAL:
		return "invalid parameters"
	case errno == unix.EPERM:
		return "sorry, you must be root or get CAP_NET_ADMIN capability to do this"
	}
	return strerror(errno)
}

// strerror spells an errno as glibc does.
func strerror(errno unix.Errno) string {
	switch errno {
	case 524:
		return "Unknown error 524"
	case unix.EOPNOTSUPP:
		return "Operation not supported"
	}
	s := errno.Error()
	if s == "" {
		return fmt.Sprintf("Unknown error %d", int(errno))
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// printer returns the printer for the command's -o flags.
func (c *cmdLine) printer() *printer {
	return &printer{
		extended:   c.output&outExtended != 0,
		id:         c.output&outID != 0,
		ktimestamp: c.output&outKTimestamp != 0,
		labels:     c.labels,
		showLabels: c.labels != nil,
	}
}

// lister prints the flows of a listing in the chosen format.
type lister struct {
	a       *app
	c       *cmdLine
	p       *printer
	xmlOpen bool
	buf     []byte
}

func (l *lister) print(f *ctnetlink.Flow, msg int) {
	b := l.buf[:0]
	switch {
	case l.c.output&outSave != 0:
		if msg == msgNone {
			// Listings print as lines that create the flow.
			msg = msgNew
		}
		var warning string
		b, warning = appendSave(b, f, msg)
		if warning != "" {
			l.a.warn(warning)
		}
	case l.c.output&outJSON != 0:
		b = appendJSON(b, f, msg, l.p)
	case l.c.output&outXML != 0:
		l.openXML()
		b = l.p.appendXML(b, f, msg, false)
	default:
		b = l.p.appendDefault(b, f, msg)
	}
	b = append(b, '\n')
	l.a.out.Write(b)
	l.buf = b
}

// openXML begins the XML document before the first flow.
func (l *lister) openXML() {
	if !l.xmlOpen {
		l.xmlOpen = true
		l.a.out.WriteString("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<conntrack>\n")
	}
}

func (l *lister) close() {
	if l.xmlOpen {
		l.a.out.WriteString("</conntrack>\n")
		l.xmlOpen = false
	}
}

func (a *app) list(c *cmdLine) (int, error) {
	var flows func(func(*ctnetlink.Flow, error) bool)
	switch {
	case c.table == tableDying:
		flows = a.conn.DumpDying(a.ctx)
	case c.table == tableUnconfirmed:
		flows = a.conn.DumpUnconfirmed(a.ctx)
	default:
		if c.options&comparisonOpts != 0 && c.options&bit(optZero) != 0 {
			return 0, paramError("Can't use -z with filtering parameters")
		}
		if err := c.checkNetmask(); err != nil {
			return 0, err
		}
		if c.options&bit(optStatus) != 0 && c.statusMask == 0 {
			// conntrack sends an empty status mask, which the kernel
			// refuses.
			return 0, opFailed(unix.EINVAL, ctList)
		}
		df := c.dumpFilter()
		if c.options&bit(optZero) != 0 {
			flows = a.conn.DumpZero(a.ctx, df)
		} else {
			flows = a.conn.Dump(a.ctx, df)
		}
	}
	l := &lister{a: a, c: c, p: c.printer()}
	n := 0
	var ferr error
	for f, err := range overlapped(flows) {
		if err != nil {
			if !errors.Is(err, ctnetlink.ErrDumpInterrupted) {
				ferr = err
			}
			break
		}
		if !c.matches(f) {
			continue
		}
		l.print(f, msgNone)
		n++
	}
	l.close()
	if ferr != nil {
		return n, opFailed(ferr, c.cmd)
	}
	return n, nil
}

// overlapBatch is how many flows overlapped hands over at a time, and
// overlapDepth how many batches may wait, which bounds its memory.
const (
	overlapBatch = 256
	overlapDepth = 4
)

// overlapped runs a dump on a goroutine of its own and yields its flows,
// so that receiving and decoding overlap with what the loop body does
// (matching and formatting) on a second core. Flows travel in batches of
// copies; the loop body gets a pointer valid until its next iteration, as
// with the dump itself. Breaking out of the loop ends the dump.
func overlapped(flows iter.Seq2[*ctnetlink.Flow, error]) iter.Seq2[*ctnetlink.Flow, error] {
	return func(yield func(*ctnetlink.Flow, error) bool) {
		type batch struct {
			flows []ctnetlink.Flow
			err   error
		}
		full := make(chan batch, overlapDepth)
		free := make(chan []ctnetlink.Flow, overlapDepth+2)
		for range overlapDepth + 2 {
			free <- make([]ctnetlink.Flow, 0, overlapBatch)
		}
		done := make(chan struct{})
		go func() {
			defer close(full)
			buf := (<-free)[:0]
			for f, err := range flows {
				if err != nil {
					full <- batch{buf, err}
					return
				}
				buf = append(buf, *f)
				if len(buf) == overlapBatch {
					select {
					case full <- batch{flows: buf}:
					case <-done:
						return
					}
					select {
					case buf = <-free:
						buf = buf[:0]
					case <-done:
						return
					}
				}
			}
			full <- batch{flows: buf}
		}()
		defer func() {
			close(done)
			for range full {
			}
		}()
		for b := range full {
			for i := range b.flows {
				if !yield(&b.flows[i], nil) {
					return
				}
			}
			if b.err != nil {
				yield(nil, b.err)
				return
			}
			free <- b.flows
		}
	}
}

// checkNetmask is conntrack's nfct_filter_init: a netmask needs its
// address.
func (c *cmdLine) checkNetmask() error {
	if c.options&bit(optMaskSrc) != 0 && c.options&bit(optOrigSrc) == 0 {
		return paramError("Can't use --mask-src without --src")
	}
	if c.options&bit(optMaskDst) != 0 && c.options&bit(optOrigDst) == 0 {
		return paramError("Can't use --mask-dst without --dst")
	}
	return nil
}

func (a *app) get(c *cmdLine) (int, error) {
	q := c.buildFlow(false)
	f, err := a.conn.Get(a.ctx, &q)
	if err != nil {
		return 0, opFailed(err, c.cmd)
	}
	if !c.matches(f) {
		return 0, nil
	}
	// conntrack closes the XML document of a listing only.
	l := &lister{a: a, c: c, p: c.printer()}
	l.print(f, msgNone)
	return 1, nil
}

func (a *app) stats() error {
	st, err := a.conn.StatsCPU(a.ctx)
	if err != nil {
		return opFailed(err, ctStats)
	}
	for i := range st {
		s := &st[i]
		fmt.Fprintf(a.out, "cpu=%-4d\t", s.CPU)
		for _, v := range []struct {
			attr ctnetlink.StatsCPUAttr
			name string
			val  uint32
		}{
			{ctnetlink.StatsCPUAttrSearched, "searched", s.Searched},
			{ctnetlink.StatsCPUAttrFound, "found", s.Found},
			{ctnetlink.StatsCPUAttrNew, "new", s.New},
			{ctnetlink.StatsCPUAttrInvalid, "invalid", s.Invalid},
			{ctnetlink.StatsCPUAttrIgnore, "ignore", s.Ignore},
			{ctnetlink.StatsCPUAttrDelete, "delete", s.Delete},
			{ctnetlink.StatsCPUAttrDeleteList, "delete_list", s.DeleteList},
			{ctnetlink.StatsCPUAttrInsert, "insert", s.Insert},
			{ctnetlink.StatsCPUAttrInsertFailed, "insert_failed", s.InsertFailed},
			{ctnetlink.StatsCPUAttrDrop, "drop", s.Drop},
			{ctnetlink.StatsCPUAttrEarlyDrop, "early_drop", s.EarlyDrop},
			{ctnetlink.StatsCPUAttrError, "error", s.Error},
			{ctnetlink.StatsCPUAttrSearchRestart, "search_restart", s.SearchRestart},
			{ctnetlink.StatsCPUAttrClashResolve, "clash_resolve", s.ClashResolve},
			{ctnetlink.StatsCPUAttrChainTooLong, "chaintoolong", s.ChainTooLong},
		} {
			if s.Has(v.attr) {
				fmt.Fprintf(a.out, "%s=%d ", v.name, v.val)
			}
		}
		fmt.Fprintf(a.out, "\n")
	}
	return nil
}

// signalContext returns a context cancelled by SIGINT or SIGTERM.
func signalContext(parent context.Context) (context.Context, func()) {
	return signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
}
