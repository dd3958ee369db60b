package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Evaluation: values of enumerators and #defines, across headers.

type evaluator struct {
	syms map[string]any // *Enumerator or *Define
	errs []error
}

// evalHeaders computes every value of hs, which may refer to each other's
// names, and turns #defines that name an enumerator of the same header into
// alias members of its enum. It returns the errors of enumerators it could
// not evaluate; #defines that are not integer constants are dropped quietly.
func evalHeaders(hs []*Header) []error {
	ev := &evaluator{syms: map[string]any{}}
	for _, h := range hs {
		for _, e := range h.Enums {
			for _, m := range e.Members {
				ev.syms[m.Name] = m
			}
		}
	}
	for _, h := range hs {
		for _, d := range h.Defines {
			if len(d.body) == 1 && d.body[0].text == d.Name {
				continue // #define NFNLGRP_NONE NFNLGRP_NONE names the enumerator itself
			}
			ev.syms[d.Name] = d
		}
	}
	for _, h := range hs {
		for _, e := range h.Enums {
			for _, m := range e.Members {
				ev.member(m)
			}
		}
	}
	for _, h := range hs {
		kept := h.Defines[:0]
		for _, d := range h.Defines {
			if len(d.body) == 1 && d.body[0].text == d.Name {
				continue
			}
			ev.define(d)
			if target := ev.aliasTarget(d, h); target != nil {
				addAlias(h, d, target)
				continue
			}
			if !d.Known {
				continue // an include guard, a feature macro or not an integer
			}
			d.Sentinel = strings.HasPrefix(d.Name, "__") || ev.mentionsSentinel(d.body)
			kept = append(kept, d)
		}
		h.Defines = kept
	}
	return ev.errs
}

// member evaluates one enumerator; the value of an implicit one follows the
// member before it.
func (ev *evaluator) member(m *Enumerator) (int64, error) {
	switch m.state {
	case evaluated:
		return m.Value, m.err
	case evaluating:
		return 0, fmt.Errorf("%s refers to itself", m.Name)
	}
	m.state = evaluating
	var v int64
	var err error
	switch {
	case m.Explicit:
		if len(m.expr) == 0 {
			err = errors.New("no value")
			break
		}
		v, err = ev.expr(m.expr)
		if err != nil {
			ev.errs = append(ev.errs, &posError{m.file, m.Line, fmt.Sprintf("%s: cannot evaluate %s: %v", m.Name, exprText(m.expr), err)})
		}
		if len(m.expr) == 1 && m.expr[0].kind == tIdent {
			if t, ok := ev.syms[m.expr[0].text].(*Enumerator); ok && t != m && sameEnum(m, t) {
				m.AliasOf = t.Name
			}
		}
	case m.prev == nil:
		v = 0
	default:
		var pv int64
		pv, err = ev.member(m.prev)
		v = pv + 1
	}
	m.state = evaluated
	m.Value, m.Known, m.err = v, err == nil, err
	if err != nil {
		m.Value = 0
	}
	return m.Value, err
}

func sameEnum(a, b *Enumerator) bool {
	for m := a.prev; m != nil; m = m.prev {
		if m == b {
			return true
		}
	}
	return false
}

func (ev *evaluator) define(d *Define) (int64, error) {
	switch d.state {
	case evaluated:
		if !d.Known {
			return 0, fmt.Errorf("%s is not an integer constant", d.Name)
		}
		return d.Value, nil
	case evaluating:
		return 0, fmt.Errorf("%s refers to itself", d.Name)
	}
	d.state = evaluating
	var v int64
	err := errors.New("empty")
	if len(d.body) > 0 {
		v, err = ev.expr(d.body)
	}
	d.state = evaluated
	d.Value, d.Known = v, err == nil
	if err != nil {
		d.Value = 0
	}
	return d.Value, err
}

// aliasTarget returns the enumerator of header h that the #define names, if
// its whole body is that one name.
func (ev *evaluator) aliasTarget(d *Define, h *Header) *Enumerator {
	if len(d.body) != 1 || d.body[0].kind != tIdent {
		return nil
	}
	m, ok := ev.syms[d.body[0].text].(*Enumerator)
	if !ok || m.file != h.File {
		return nil
	}
	return m
}

// addAlias inserts the alias d of target into the target's enum: where the
// #define stands when it is inside that enum, else right after the target
// and the aliases that already follow it.
func addAlias(h *Header, d *Define, target *Enumerator) {
	var e *Enum
	for _, x := range h.Enums {
		for _, m := range x.Members {
			if m == target {
				e = x
			}
		}
	}
	if e == nil {
		return
	}
	a := &Enumerator{
		Name: d.Name, Value: target.Value, Known: target.Known, Explicit: true,
		AliasOf: target.Name, Define: true, Line: d.Line, Doc: d.Doc, file: d.file,
		state: evaluated, err: target.err,
	}
	at := -1
	if d.enum == e {
		// d.index counts the members before the #define, aliases excluded.
		n := 0
		for i, m := range e.Members {
			if n == d.index {
				at = i
				break
			}
			if !m.Define {
				n++
			}
		}
		if at < 0 {
			at = len(e.Members)
		}
		for at < len(e.Members) && e.Members[at].Define && e.Members[at].Line < d.Line {
			at++
		}
	} else {
		for i, m := range e.Members {
			if m == target {
				at = i + 1
			}
		}
		for at < len(e.Members) && e.Members[at].AliasOf == target.Name {
			at++
		}
	}
	e.Members = append(e.Members, nil)
	copy(e.Members[at+1:], e.Members[at:])
	e.Members[at] = a
}

func (ev *evaluator) mentionsSentinel(body []token) bool {
	for _, t := range body {
		if t.kind != tIdent {
			continue
		}
		if strings.HasPrefix(t.text, "__") {
			return true
		}
		if m, ok := ev.syms[t.text].(*Enumerator); ok && m.Sentinel {
			return true
		}
	}
	return false
}

func exprText(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t.off > toks[i-1].end {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String()
}

// expr evaluates an integer constant expression: numbers, names of
// enumerators and #defines, parentheses, unary - + ~ ! and the binary
// operators * / % + - << >> & ^ |.
func (ev *evaluator) expr(toks []token) (int64, error) {
	x := &exprParser{ev: ev, toks: toks}
	v, err := x.binary(0, 0)
	if err != nil {
		return 0, err
	}
	if x.i < len(toks) {
		return 0, fmt.Errorf("unexpected %q", toks[x.i].text)
	}
	return v, nil
}

type exprParser struct {
	ev   *evaluator
	toks []token
	i    int
}

var binaryPrec = map[string]int{
	"|": 1, "^": 2, "&": 3, "<<": 4, ">>": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6,
}

const maxExprDepth = 100

func (x *exprParser) binary(minPrec, depth int) (int64, error) {
	if depth > maxExprDepth {
		return 0, errors.New("expression nested too deeply")
	}
	l, err := x.unary(depth + 1)
	if err != nil {
		return 0, err
	}
	for x.i < len(x.toks) {
		op := x.toks[x.i]
		prec, ok := binaryPrec[op.text]
		if op.kind != tPunct || !ok || prec <= minPrec {
			break
		}
		x.i++
		r, err := x.binary(prec, depth+1)
		if err != nil {
			return 0, err
		}
		switch op.text {
		case "|":
			l |= r
		case "^":
			l ^= r
		case "&":
			l &= r
		case "<<", ">>":
			if r < 0 || r > 63 {
				return 0, fmt.Errorf("shift by %d", r)
			}
			if op.text == "<<" {
				l <<= uint(r)
			} else {
				l >>= uint(r)
			}
		case "+":
			l += r
		case "-":
			l -= r
		case "*":
			l *= r
		case "/", "%":
			if r == 0 {
				return 0, errors.New("division by zero")
			}
			if op.text == "/" {
				l /= r
			} else {
				l %= r
			}
		}
	}
	return l, nil
}

func (x *exprParser) unary(depth int) (int64, error) {
	if depth > maxExprDepth {
		return 0, errors.New("expression nested too deeply")
	}
	if x.i >= len(x.toks) {
		return 0, errors.New("expression ends early")
	}
	t := x.toks[x.i]
	x.i++
	switch {
	case t.kind == tPunct && (t.text == "-" || t.text == "+" || t.text == "~" || t.text == "!"):
		v, err := x.unary(depth + 1)
		if err != nil {
			return 0, err
		}
		switch t.text {
		case "-":
			return -v, nil
		case "~":
			return ^v, nil
		case "!":
			if v == 0 {
				return 1, nil
			}
			return 0, nil
		}
		return v, nil
	case t.kind == tPunct && t.text == "(":
		v, err := x.binary(0, depth+1)
		if err != nil {
			return 0, err
		}
		if x.i >= len(x.toks) || x.toks[x.i].text != ")" {
			return 0, errors.New("missing )")
		}
		x.i++
		return v, nil
	case t.kind == tNumber:
		return parseCInt(t.text)
	case t.kind == tIdent:
		switch s := x.ev.syms[t.text].(type) {
		case *Enumerator:
			if s.state == evaluating {
				return 0, fmt.Errorf("%s refers to itself", t.text)
			}
			v, err := x.ev.member(s)
			if err != nil {
				return 0, fmt.Errorf("%s has no value", t.text)
			}
			return v, nil
		case *Define:
			return x.ev.define(s)
		}
		return 0, fmt.Errorf("unknown name %s", t.text)
	}
	return 0, fmt.Errorf("unexpected %q", t.text)
}

// parseCInt reads a C integer literal: decimal, 0x hex or 0 octal, with any
// U and L suffixes.
func parseCInt(s string) (int64, error) {
	lit := strings.TrimRight(s, "uUlL")
	if strings.ContainsAny(lit, "_.oObB") && !strings.HasPrefix(lit, "0x") && !strings.HasPrefix(lit, "0X") {
		return 0, fmt.Errorf("bad number %q", s)
	}
	u, err := strconv.ParseUint(lit, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return int64(u), nil
}
