package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"

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
	unsupported := -1
	err := eachLine(f, argv0, a.warn, func(c *cmdLine) error {
		if unsupported < 0 && !loadable(c.cmd) {
			unsupported = c.cmd
		}
		return nil
	})
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
	var lp lineParser
	args := []string{argv0}
	for {
		line, ok := lr.next()
		if !ok {
			return nil
		}
		line = strings.TrimLeft(line, " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		var err error
		if args, err = appendWords(args[:1], line); err != nil {
			return err
		}
		c, err := lp.parse(args, warn)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
}

// Sizes of lineReader's reads.
const (
	// lineBlock is how much lineReader reads at a time.
	lineBlock = 256 << 10
	// maxLine is the longest line lineReader takes: reading stops at a
	// longer one, as it did with bufio.Scanner's limit.
	maxLine = 1 << 20
)

// lineReader splits what it reads into lines as bufio.ScanLines does
// (without the newline and one carriage return before it; a last line
// without a newline counts). It copies each block of whole lines it reads
// into one string, so that lines cost no allocation of their own. A read
// error ends the lines, as it ends a bufio.Scanner's.
//
// A lineReader is not safe for concurrent use.
type lineReader struct {
	r     io.Reader
	buf   []byte // read, not yet in block
	block string // whole lines not yet returned
	eof   bool
}

// next returns the next line, and false at the end.
func (lr *lineReader) next() (string, bool) {
	for {
		if lr.block != "" {
			line := lr.block
			if i := strings.IndexByte(lr.block, '\n'); i >= 0 {
				line, lr.block = lr.block[:i], lr.block[i+1:]
			} else {
				lr.block = ""
			}
			return strings.TrimSuffix(line, "\r"), true
		}
		if lr.eof {
			return "", false
		}
		lr.fill()
	}
}

// fill reads until it has a newline, the end of the input or a line too
// long, and moves the whole lines read into block.
func (lr *lineReader) fill() {
	if lr.buf == nil {
		lr.buf = make([]byte, 0, lineBlock)
	}
	// What is left of the last read holds no newline: look only at
	// what each read adds.
	searched := len(lr.buf)
	for {
		if i := bytes.LastIndexByte(lr.buf[searched:], '\n'); i >= 0 {
			i += searched
			lr.block = string(lr.buf[:i+1])
			lr.buf = lr.buf[:copy(lr.buf, lr.buf[i+1:])]
			return
		}
		if lr.eof {
			lr.block = string(lr.buf)
			lr.buf = lr.buf[:0]
			return
		}
		if len(lr.buf) >= maxLine {
			lr.eof = true
			lr.buf = lr.buf[:0]
			return
		}
		if cap(lr.buf)-len(lr.buf) < lineBlock/2 {
			lr.buf = slices.Grow(lr.buf, lineBlock)
		}
		searched = len(lr.buf)
		n, err := lr.r.Read(lr.buf[len(lr.buf):cap(lr.buf)])
		lr.buf = lr.buf[:len(lr.buf)+n]
		if err != nil {
			lr.eof = true
		}
	}
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

// appendWords appends the arguments of a line of a -R file to args, as
// splitLine splits them. A line without quotes, the usual case, is cut
// into substrings without copying.
func appendWords(args []string, s string) ([]string, error) {
	if strings.IndexByte(s, '"') >= 0 {
		words, err := splitLine(s)
		if err != nil {
			return args, err
		}
		return append(args, words...), nil
	}
	n := len(args)
	for i := 0; i < len(s); {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
			i++
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '\n' {
			j++
		}
		if j-i >= 1024 {
			return args, paramError("Parameter too long!")
		}
		if j > i {
			args = append(args, s[i:j])
		}
		i = j
	}
	if len(args)-n+1 >= 255 {
		return args, paramError("too many arguments")
	}
	return args, nil
}

// splitLine splits a line of a -R file into arguments: white space
// separates them, double quotes group, and a backslash inside quotes
// escapes the next character.
func splitLine(s string) ([]string, error) {
	var args []string
	var cur []byte
	inQuote, escaped := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case inQuote && escaped:
			cur = append(cur, ch)
			escaped = false
		case inQuote && ch == '\\':
			escaped = true
		case inQuote && ch == '"':
			// A closing quote ends the argument, even an empty one.
			inQuote = false
			args = append(args, string(cur))
			cur = cur[:0:0]
		case inQuote:
			cur = append(cur, ch)
		case ch == '"':
			inQuote = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if len(cur) > 0 {
				args = append(args, string(cur))
				cur = cur[:0:0]
			}
		default:
			cur = append(cur, ch)
		}
		if len(cur) >= 1024 {
			return nil, paramError("Parameter too long!")
		}
	}
	if len(cur) > 0 {
		args = append(args, string(cur))
	}
	if len(args)+1 >= 255 {
		return nil, paramError("too many arguments")
	}
	return args, nil
}
