package main

import (
	"bufio"
	"io"
	"os"
	"runtime/debug"
	"strings"
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
	// Every line leaves garbage and little stays live: collect when the
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
	var unsupported *cmdLine
	err := eachLine(f, argv0, a.warn, func(c *cmdLine) error {
		if unsupported == nil && !loadable(c.cmd) {
			unsupported = c
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if unsupported != nil {
		return 0, paramError("Cannot use command `%s' with --load-file", unsupportedInFile(unsupported))
	}
	if err := a.dial(); err != nil {
		return 0, err
	}
	defer a.conn.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, otherError("Failed to read file %s again: %v", name, err)
	}

	// Pass 2: the same lines, parsed again without warnings, run.
	window := make([]*cmdLine, 0, loadWindow)
	send := func() error {
		if len(window) == 0 {
			return nil
		}
		_, err := a.create(window)
		clear(window)
		window = window[:0]
		return err
	}
	err = eachLine(f, argv0, func(string) {}, func(c *cmdLine) error {
		if c.cmd == ctCreate || c.cmd == ctAdd {
			window = append(window, c)
			if len(window) == loadWindow {
				return send()
			}
			return nil
		}
		if err := send(); err != nil {
			return err
		}
		_, err := a.do(c)
		return err
	})
	if err == nil {
		err = send()
	}
	if err != nil {
		return 0, err
	}
	a.out.Flush()
	return 0, nil
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
// with each; it stops at the first error.
func eachLine(r io.Reader, argv0 string, warn func(string), fn func(*cmdLine) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	args := []string{argv0}
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		var err error
		if args, err = appendWords(args[:1], line); err != nil {
			return err
		}
		c, err := parseCmdLine(args, warn)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
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

func unsupportedInFile(c *cmdLine) string {
	return map[int]string{
		ctList: "-L", ctGet: "-G", ctEvent: "-E", ctVersion: "-V", ctHelp: "-h",
		expList: "-L expect", expCreate: "-C expect", expDelete: "-D expect", expGet: "-G expect",
		expFlush: "-F expect", expEvent: "-E expect", ctCount: "-C", expCount: "-C expect",
		ctStats: "-S", expStats: "-S expect",
	}[c.cmd]
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
