package main

import (
	"errors"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/ctspec/ctspec/ctnetlink"
)

// loadWindow is how many consecutive creations of a -R file go to the
// kernel in one pipelined batch.
const loadWindow = 1024

// loadMemoryLimit is the Go memory -R collects garbage at.
const loadMemoryLimit = 16 << 20

// loadFile runs -R FILE: every line is a command (-I, -A, -U, -D or -F)
// without the program name; "-" is standard input. As conntrack, it
// parses the whole file before it changes anything, and stops at the
// first line that fails: lines after it have no effect. It holds neither
// the file nor its parsed lines: a first pass parses and checks every
// line, a second reads the file again and sends consecutive creations in
// pipelined windows of loadWindow lines while the other commands run in
// order. Standard input is copied to an unlinked temporary file for the
// second pass.
func (a *app) loadFile(argv0, name string) (int, error) {
	// Every window leaves garbage and little stays live: collect when the
	// heap nears a fixed limit rather than whenever it doubles.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(loadMemoryLimit))
	var f *os.File
	if name == "-" {
		sp, err := spool(a.stdin)
		if err != nil {
			return 0, otherError("Failed to read standard input: %v", err)
		}
		f = sp
	} else {
		var err error
		if f, err = os.Open(name); err != nil {
			return 0, paramError("Failed to open file %s for reading", name)
		}
	}
	defer f.Close()

	// Pass 1: parse everything; a parse error wins over a command that
	// -R does not take, wherever each is.
	unsupported, err := checkLines(f, argv0, a.warn, runtime.GOMAXPROCS(0))
	if err != nil {
		return 0, err
	}
	if unsupported >= 0 {
		return 0, paramError("Cannot use command `%s' with --load-file", unsupportedInFile(unsupported))
	}
	if err := a.dial(); err != nil {
		return 0, err
	}
	defer a.conn.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, otherError("Failed to read file %s again: %v", name, err)
	}
	if err := a.runLoad(f, argv0); err != nil {
		return 0, err
	}
	a.out.Flush()
	return 0, nil
}

// loadItem is what the second pass of -R hands to the kernel side: a
// window of consecutive creations, or one other command.
type loadItem struct {
	batch createBatch
	other *cmdLine
}

// loadBatches is how many windows of creations -R holds at once: one the
// kernel is taking, one being parsed and one waiting between them.
const loadBatches = 3

// errLoadStopped ends the parsing side of runLoad once the kernel side
// has stopped.
var errLoadStopped = errors.New("load: stopped")

// runLoad is the second pass of -R over r. One goroutine parses the lines
// again, without warnings, into windows of creations while this one sends
// the previous window to the kernel, so that parsing and the kernel's
// work overlap. The first failure stops both: lines after it have no
// effect.
func (a *app) runLoad(r io.Reader, argv0 string) error {
	items := make(chan *loadItem, 1)
	free := make(chan *loadItem, loadBatches)
	for range loadBatches {
		it := &loadItem{}
		it.batch.flows = make([]ctnetlink.Flow, 0, loadWindow)
		it.batch.cmds = make([]int, 0, loadWindow)
		free <- it
	}
	stop := make(chan struct{})
	var parseErr error
	go func() {
		defer close(items)
		send := func(it *loadItem) error {
			select {
			case items <- it:
				return nil
			case <-stop:
				return errLoadStopped
			}
		}
		var cur *loadItem
		parseErr = eachLine(r, argv0, func(string) {}, func(c *cmdLine) error {
			if c.cmd == ctCreate || c.cmd == ctAdd {
				if cur == nil {
					select {
					case cur = <-free:
					case <-stop:
						return errLoadStopped
					}
				}
				cur.batch.add(c)
				if len(cur.batch.flows) < loadWindow {
					return nil
				}
			}
			if cur != nil {
				it := cur
				cur = nil
				if err := send(it); err != nil {
					return err
				}
			}
			if c.cmd == ctCreate || c.cmd == ctAdd {
				return nil
			}
			// The parser reuses c for the next line: hand over a copy.
			other := *c
			return send(&loadItem{other: &other})
		})
		if parseErr == nil && cur != nil {
			parseErr = send(cur)
		}
	}()
	var err error
	for it := range items {
		if it.other != nil {
			_, err = a.do(it.other)
		} else {
			_, err = a.createBatch(&it.batch)
			it.batch.reset()
			free <- it
		}
		if err != nil {
			close(stop)
			for range items {
			}
			return err
		}
	}
	return parseErr
}

// loadable reports whether -R takes a command.
func loadable(cmd int) bool {
	switch cmd {
	case ctCreate, ctAdd, ctUpdate, ctDelete, ctFlush:
		return true
	}
	return false
}

// eachLine parses the command lines of a -R file in order and calls fn
// with each; it stops at the first error. fn's *cmdLine is valid until fn
// returns: the next line reuses it.
func eachLine(r io.Reader, argv0 string, warn func(string), fn func(*cmdLine) error) error {
	lr := lineReader{r: r}
	lp := lineParser{args: []string{argv0}}
	for {
		line, ok := lr.next()
		if !ok {
			return nil
		}
		c, err := lp.parseLine(line, warn)
		if err != nil {
			return err
		}
		if c == nil {
			continue
		}
		if err := fn(c); err != nil {
			return err
		}
	}
}

// parseLine parses one line of a -R file; it returns nil for a line
// without a command (empty, blank or a comment). The *cmdLine is valid
// until the next call.
func (lp *lineParser) parseLine(line string, warn func(string)) (*cmdLine, error) {
	line = strings.TrimLeft(line, " \t")
	if line == "" || line[0] == '#' {
		return nil, nil
	}
	var err error
	if lp.args, err = appendWords(lp.args[:1], line); err != nil {
		return nil, err
	}
	return lp.parse(lp.args, warn)
}

// checkChunk is a block of whole lines of a -R file that the first pass
// parses on one goroutine, and what that found: the warnings of its lines
// in order, up to its first error, and the first command -R does not
// take (-1 for none). done is closed when it has been parsed.
type checkChunk struct {
	lines       string
	warnings    strings.Builder
	err         error
	unsupported int
	done        chan struct{}
}

// check parses the lines of ch with lp.
func (ch *checkChunk) check(lp *lineParser) {
	warn := func(s string) { ch.warnings.WriteString(s) }
	for rest := ch.lines; rest != ""; {
		var line string
		line, rest = cutLine(rest)
		c, err := lp.parseLine(line, warn)
		if err != nil {
			ch.err = err
			return
		}
		if c != nil && ch.unsupported < 0 && !loadable(c.cmd) {
			ch.unsupported = c.cmd
		}
	}
}

// checkLines is the first pass of -R: it parses every line of r and
// returns the first command -R does not take (-1 for none) and the first
// parse error, in the file's order. Blocks of whole lines are parsed on
// up to workers goroutines while r is read; warnings reach warn in the
// order of their lines, those after the first error never. At most
// 2×workers blocks wait to be parsed or reported, so memory does not grow
// with the file.
func checkLines(r io.Reader, argv0 string, warn func(string), workers int) (int, error) {
	workers = max(workers, 1)
	work := make(chan *checkChunk)
	order := make(chan *checkChunk, 2*workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lp := lineParser{args: []string{argv0}}
			for ch := range work {
				ch.check(&lp)
				close(ch.done)
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(work)
		lr := lineReader{r: r}
		for {
			block, ok := lr.nextBlock()
			if !ok {
				return
			}
			ch := &checkChunk{lines: block, unsupported: -1, done: make(chan struct{})}
			select {
			case order <- ch:
			case <-stop:
				return
			}
			work <- ch
		}
	}()
	unsupported := -1
	var err error
	for ch := range order {
		<-ch.done
		if err != nil {
			continue // draining after the first error
		}
		if ch.warnings.Len() > 0 {
			warn(ch.warnings.String())
		}
		if unsupported < 0 {
			unsupported = ch.unsupported
		}
		if ch.err != nil {
			err = ch.err
			close(stop)
		}
	}
	wg.Wait()
	return unsupported, err
}

// spool copies r to an unlinked temporary file and returns it, positioned
// at its start.
func spool(r io.Reader) (*os.File, error) {
	f, err := os.CreateTemp("", "ctspec-load-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// unsupportedInFile names a command -R does not take, as conntrack's
// message does.
func unsupportedInFile(cmd int) string {
	return map[int]string{
		ctList: "-L", ctGet: "-G", ctEvent: "-E", ctVersion: "-V", ctHelp: "-h",
		expList: "-L expect", expCreate: "-C expect", expDelete: "-D expect", expGet: "-G expect",
		expFlush: "-F expect", expEvent: "-E expect", ctCount: "-C", expCount: "-C expect",
		ctStats: "-S", expStats: "-S expect",
	}[cmd]
}
