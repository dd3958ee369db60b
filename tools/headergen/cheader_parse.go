package main

import (
	"fmt"
	"strings"
)

// Parsing: enum bodies and #defines are read; everything else is skipped.

type parser struct {
	file    string
	toks    []token
	i       int
	h       *Header
	errs    []error
	pending []token // comments waiting for the declaration below them
	run     int
}

// scanHeader reads the declarations of a header without evaluating values.
func scanHeader(file string, src []byte) (*Header, []error) {
	toks, errs := lex(file, string(src), 1, false)
	p := &parser{file: file, toks: toks, h: &Header{File: file}, errs: errs}
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		switch {
		case t.kind == tComment:
			p.comment(t)
			p.i++
		case t.kind == tDirective:
			p.directive(t, nil)
			p.i++
		case t.kind == tIdent && t.text == "enum":
			p.enum()
		default:
			p.run++
			p.pending = nil
			p.i++
		}
	}
	for _, e := range p.h.Enums {
		markSentinels(e)
	}
	return p.h, p.errs
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &posError{p.file, line, fmt.Sprintf(format, args...)})
}

// comment queues a comment for the next declaration. A blank line between two
// comments starts a new queue, so only the block right above a declaration
// documents it.
func (p *parser) comment(t token) {
	if n := len(p.pending); n > 0 && p.pending[n-1].endLine+1 < t.line {
		p.pending = p.pending[:0]
	}
	p.pending = append(p.pending, t)
}

// takeDoc returns the queued comments if they end right above line, and
// empties the queue.
func (p *parser) takeDoc(line int) string {
	defer func() { p.pending = nil }()
	n := len(p.pending)
	if n == 0 || p.pending[n-1].endLine+1 < line {
		return ""
	}
	var parts []string
	for _, c := range p.pending {
		if s := commentText(c.text); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

// commentText turns the inside of a comment into one line of text.
func commentText(s string) string {
	var words []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		l = strings.TrimSpace(strings.TrimLeft(l, "*"))
		if l != "" {
			words = append(words, l)
		}
	}
	return strings.Join(words, " ")
}

// kernelDoc reads the "@NAME: text" lines of a kernel-doc comment.
func kernelDoc(comments []token) map[string]string {
	docs := map[string]string{}
	for _, c := range comments {
		if !strings.HasPrefix(c.text, "*") {
			continue
		}
		cur := ""
		for _, l := range strings.Split(c.text, "\n") {
			l = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(l), "*"))
			switch {
			case strings.HasPrefix(l, "@"):
				name, text, ok := strings.Cut(l[1:], ":")
				if !ok {
					cur = ""
					continue
				}
				cur = strings.TrimSpace(name)
				docs[cur] = strings.TrimSpace(text)
			case l == "":
				cur = ""
			case cur != "":
				docs[cur] += " " + l
			}
		}
	}
	return docs
}

// directive handles one preprocessor line. Only object-like #defines matter;
// conditionals, includes and the rest are skipped, so both branches of an
// #ifdef are read.
func (p *parser) directive(t token, in *Enum) {
	var code []token
	var trailing []string
	for _, s := range t.sub {
		if s.kind == tComment {
			if c := commentText(s.text); c != "" {
				trailing = append(trailing, c)
			}
			continue
		}
		code = append(code, s)
	}
	if len(code) == 0 || code[0].kind != tIdent {
		return
	}
	switch code[0].text {
	case "define":
	case "include":
		p.run++
		p.pending = nil
		return
	default:
		return
	}
	if len(code) < 2 || code[1].kind != tIdent {
		p.errorf(t.line, "malformed #define")
		return
	}
	name := code[1]
	if len(code) > 2 && code[2].text == "(" && code[2].off == name.end {
		p.pending = nil
		return // a function-like macro
	}
	doc := p.takeDoc(t.line)
	if len(trailing) > 0 {
		doc = strings.TrimSpace(doc + " " + strings.Join(trailing, " "))
	}
	d := &Define{Name: name.text, Line: t.line, Doc: doc, Run: p.run, file: p.file, body: code[2:], enum: in}
	if in != nil {
		d.index = len(in.Members)
	}
	p.h.Defines = append(p.h.Defines, d)
}

// skipComments moves past comments, queueing them.
func (p *parser) skipComments() {
	for p.i < len(p.toks) && p.toks[p.i].kind == tComment {
		p.comment(p.toks[p.i])
		p.i++
	}
}

// enum reads "enum [tag] { ... }" starting at the enum keyword; other uses of
// the keyword (a variable's type) are skipped.
func (p *parser) enum() {
	kw := p.toks[p.i]
	above := p.pending
	p.pending = nil
	p.run++
	p.i++
	p.skipComments()
	name := ""
	if p.i < len(p.toks) && p.toks[p.i].kind == tIdent {
		name = p.toks[p.i].text
		p.i++
		p.skipComments()
	}
	if p.i >= len(p.toks) || p.toks[p.i].text != "{" || p.toks[p.i].kind != tPunct {
		return
	}
	p.i++
	p.pending = nil
	kdoc := kernelDoc(above)
	e := &Enum{Name: name, Line: kw.line}
	p.h.Enums = append(p.h.Enums, e)
	var last *Enumerator
	lastEnd := -1 // line of the last token of the last member
	for {
		if p.i >= len(p.toks) {
			p.errorf(kw.line, "enum %s: no closing brace", name)
			break
		}
		t := p.toks[p.i]
		switch {
		case t.kind == tComment:
			if last != nil && t.line == lastEnd {
				last.Doc = strings.TrimSpace(last.Doc + " " + commentText(t.text))
			} else {
				p.comment(t)
			}
			p.i++
			continue
		case t.kind == tDirective:
			p.directive(t, e)
			p.i++
			continue
		case t.kind == tPunct && t.text == "}":
			p.i++
			p.pending = nil
			return
		case t.kind == tPunct && t.text == ",":
			p.i++
			continue
		case t.kind == tPunct && t.text == ";":
			p.errorf(t.line, "enum %s: unexpected \";\" before the closing brace", name)
			p.pending = nil
			return
		case t.kind != tIdent:
			p.errorf(t.line, "enum %s: unexpected %q", name, t.text)
			p.i++
			continue
		}
		m := p.enumMember(e, t, kdoc)
		last = m
		lastEnd = t.line
		p.i++
		if p.i < len(p.toks) && p.toks[p.i].text == "=" && p.toks[p.i].kind == tPunct {
			lastEnd = p.enumValue(m, lastEnd)
		}
		if p.i < len(p.toks) && p.toks[p.i].kind == tPunct && p.toks[p.i].text == "," {
			lastEnd = p.toks[p.i].line
			p.i++
		}
	}
}

// enumMember adds the member named by token t to e, with its doc comment
// from above it or from the enum's kernel-doc kdoc.
func (p *parser) enumMember(e *Enum, t token, kdoc map[string]string) *Enumerator {
	m := &Enumerator{Name: t.text, Line: t.line, file: p.file, Doc: p.takeDoc(t.line)}
	if m.Doc == "" {
		m.Doc = kdoc[m.Name]
	}
	if n := len(e.Members); n > 0 {
		m.prev = e.Members[n-1]
	}
	e.Members = append(e.Members, m)
	return m
}

// enumValue reads the expression after the "=" of member m, whose last
// token so far is on line lastEnd, and returns the line of its last token.
func (p *parser) enumValue(m *Enumerator, lastEnd int) int {
	p.i++
	depth := 0
expr:
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		switch {
		case t.kind == tComment:
			if t.line == lastEnd {
				m.Doc = strings.TrimSpace(m.Doc + " " + commentText(t.text))
			}
			p.i++
			continue
		case t.kind == tDirective:
			p.i++
			continue
		case t.kind == tPunct && depth <= 0 && (t.text == "," || t.text == "}"):
			break expr
		case t.kind == tPunct && t.text == "(":
			depth++
		case t.kind == tPunct && t.text == ")":
			depth--
		case t.kind == tPunct && (t.text == "{" || t.text == ";"):
			break expr // runaway expression; let the loop report it
		}
		m.expr = append(m.expr, t)
		lastEnd = t.endLine
		p.i++
	}
	m.Explicit = true
	if len(m.expr) == 0 {
		p.errorf(m.Line, "%s: missing value after =", m.Name)
	}
	return lastEnd
}

// markSentinels flags the bounds of an enum: members named __X, and a last
// member named X_MAX that takes the next value implicitly (IPCTNL_MSG_MAX,
// SCTP_CONNTRACK_MAX).
func markSentinels(e *Enum) {
	for i, m := range e.Members {
		if strings.HasPrefix(m.Name, "__") {
			m.Sentinel = true
		}
		if i == len(e.Members)-1 && !m.Explicit && strings.HasSuffix(m.Name, "_MAX") {
			m.Sentinel = true
		}
	}
}
