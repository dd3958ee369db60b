package main

import (
	"bytes"
	"io"
	"slices"
	"strings"
)

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
			var line string
			line, lr.block = cutLine(lr.block)
			return line, true
		}
		if lr.eof {
			return "", false
		}
		lr.fill()
	}
}

// nextBlock returns the next block of whole lines, for cutLine to split,
// and false at the end. It does not mix with next.
func (lr *lineReader) nextBlock() (string, bool) {
	for lr.block == "" {
		if lr.eof {
			return "", false
		}
		lr.fill()
	}
	block := lr.block
	lr.block = ""
	return block, true
}

// cutLine cuts the first line off a non-empty block of lines: without its
// newline and one carriage return before it.
func cutLine(block string) (line, rest string) {
	line = block
	if i := strings.IndexByte(block, '\n'); i >= 0 {
		line, rest = block[:i], block[i+1:]
	}
	return strings.TrimSuffix(line, "\r"), rest
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
		for i < len(s) && wordSep[s[i]] {
			i++
		}
		j := i
		for j < len(s) && !wordSep[s[j]] {
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

// wordSep marks the bytes that separate the arguments of a -R line.
var wordSep = [256]bool{' ': true, '\t': true, '\n': true}

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
