package main

import "strings"

// Lexing: a header becomes comments, preprocessor lines and C tokens.

type tokKind uint8

const (
	tIdent tokKind = iota
	tNumber
	tPunct
	tString
	tComment
	tDirective
)

type token struct {
	kind    tokKind
	text    string // for a comment, the text between the delimiters
	line    int
	endLine int
	off     int     // offset of the token in the text that was lexed
	end     int     // offset just past the token
	sub     []token // for a directive, the tokens after '#'
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// lex splits src into tokens. Preprocessor lines become one tDirective token
// each, with their own tokens in sub.
func lex(file, src string, line int, inDirective bool) ([]token, []error) {
	var toks []token
	var errs []error
	lineStart := true
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
			lineStart = true
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '\\' && i+1 < len(src) && (src[i+1] == '\n' || src[i+1] == '\r'):
			i++ // a line continuation; the newline is counted next
			continue
		case c == '/' && i+1 < len(src) && (src[i+1] == '*' || src[i+1] == '/'):
			t, err := lexComment(file, src, i, line)
			if err != nil {
				errs = append(errs, err)
			}
			toks = append(toks, t)
			line, i = t.endLine, t.end
			continue
		case c == '#' && lineStart && !inDirective:
			j := directiveEnd(src, i+1)
			sub, e := lex(file, src[i+1:j], line, true)
			errs = append(errs, e...)
			end := line + strings.Count(src[i:j], "\n")
			toks = append(toks, token{kind: tDirective, line: line, endLine: end, off: i, end: j, sub: sub})
			line = end
			i = j
			continue
		}
		lineStart = false
		t := token{line: line, endLine: line, off: i}
		var closed bool
		t.kind, t.end, closed = scanToken(src, i)
		if !closed {
			errs = append(errs, &posError{file, line, "unterminated string or character constant"})
		}
		t.text = src[i:t.end]
		toks = append(toks, t)
		i = t.end
	}
	return toks, errs
}

// lexComment lexes the comment that starts at src[i] on line line, with
// "/*" or "//". The error reports a comment left unterminated.
func lexComment(file, src string, i, line int) (token, error) {
	if src[i+1] == '/' {
		end := strings.IndexByte(src[i:], '\n')
		if end < 0 {
			end = len(src) - i
		}
		return token{kind: tComment, text: src[i+2 : i+end], line: line, endLine: line, off: i, end: i + end}, nil
	}
	var err error
	end := strings.Index(src[i+2:], "*/")
	var text string
	next := len(src)
	if end < 0 {
		err = &posError{file, line, "unterminated comment"}
		text = src[i+2:]
	} else {
		text = src[i+2 : i+2+end]
		next = i + 2 + end + 2
	}
	endLine := line + strings.Count(text, "\n")
	return token{kind: tComment, text: text, line: line, endLine: endLine, off: i, end: next}, err
}

// scanToken returns the kind of the C token that starts at src[i] and the
// offset just past it, and false for a string or character constant left
// unterminated.
func scanToken(src string, i int) (kind tokKind, j int, closed bool) {
	c := src[i]
	j = i + 1
	switch {
	case isIdentStart(c):
		for j < len(src) && isIdentChar(src[j]) {
			j++
		}
		return tIdent, j, true
	case c >= '0' && c <= '9':
		for j < len(src) && (isIdentChar(src[j]) || src[j] == '.') {
			j++
		}
		return tNumber, j, true
	case c == '"' || c == '\'':
		for j < len(src) && src[j] != c && src[j] != '\n' {
			if src[j] == '\\' && j+1 < len(src) && src[j+1] != '\n' {
				j++
			}
			j++
		}
		if j < len(src) && src[j] == c {
			return tString, j + 1, true
		}
		return tString, j, false
	case (c == '<' || c == '>') && i+1 < len(src) && src[i+1] == c:
		return tPunct, i + 2, true
	}
	return tPunct, j, true
}

// directiveEnd returns the offset of the newline that ends the preprocessor
// line starting at i, honouring line continuations and comments.
func directiveEnd(src string, i int) int {
	for i < len(src) {
		switch {
		case src[i] == '\n':
			return i
		case src[i] == '\\' && i+1 < len(src) && src[i+1] == '\n':
			i += 2
		case src[i] == '\\' && i+2 < len(src) && src[i+1] == '\r' && src[i+2] == '\n':
			i += 3
		case src[i] == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return len(src)
			}
			i += 2 + end + 2
		case src[i] == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		default:
			i++
		}
	}
	return i
}
