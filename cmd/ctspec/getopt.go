package main

import (
	"strings"
	"sync"
)

// Argument kinds of an option, as getopt_long(3) spells them.
const (
	noArg       = 0
	requiredArg = 1
	optionalArg = 2
)

// longOpt is one long option: its name, argument kind and the value the
// parser returns for it (a short option letter, or a private code).
type longOpt struct {
	name string
	arg  int
	val  int
}

// Codes getopt returns besides option values.
const (
	optEnd     = -1
	optUnknown = '?'
	optMissing = ':'
)

// getopt parses a command line the way GNU getopt_long(3) does for
// conntrack: an option string that starts with ':' (so a missing argument
// is reported apart from an unknown option), long options that may be
// abbreviated to any unambiguous prefix, "--name=value" and "--name value"
// forms, optional arguments that only attach ("-nADDR", "--src-nat=ADDR"),
// and clusters of short options ("-Lz"). Arguments that are not options
// are skipped, as GNU getopt's permutation moves them to the end, where
// conntrack ignores them; the caller may instead consume the argument that
// follows an option with nextArg, as conntrack's table names are read.
type getopt struct {
	args  []string
	short [256]int8 // option letter to argument kind plus one; 0 is none
	long  []longOpt
	extra [][]longOpt // long options added by addLong, searched after long

	ind  int    // index of the next argument to read
	next string // rest of a short-option cluster

	arg  string // the current option's argument
	has  bool   // whether the current option had an argument
	last string // the argument word the current option came from
}

func newGetopt(args []string, shortSpec string, long []longOpt) *getopt {
	g := &getopt{args: args, long: long, ind: 1}
	spec := strings.TrimPrefix(shortSpec, ":")
	for i := 0; i < len(spec); i++ {
		c := spec[i]
		kind := noArg
		if i+1 < len(spec) && spec[i+1] == ':' {
			kind = requiredArg
			i++
			if i+1 < len(spec) && spec[i+1] == ':' {
				kind = optionalArg
				i++
			}
		}
		g.short[c] = int8(kind + 1)
	}
	return g
}

// addLong adds long options, as conntrack merges a protocol's options once
// -p names it. They are searched after those already there.
func (g *getopt) addLong(opts []longOpt) {
	g.extra = append(g.extra, opts)
}

// nextOpt returns the next option's value, optEnd at the end, optUnknown
// for an unknown option and optMissing for a missing argument. The word the
// option came from is in g.last, its argument in g.arg.
func (g *getopt) nextOpt() int {
	g.arg, g.has = "", false
	if g.next != "" {
		return g.shortOpt()
	}
	for g.ind < len(g.args) {
		a := g.args[g.ind]
		if a == "--" {
			g.ind = len(g.args)
			return optEnd
		}
		if len(a) < 2 || a[0] != '-' {
			// Not an option: GNU getopt permutes it to the end.
			g.ind++
			continue
		}
		g.ind++
		g.last = a
		if strings.HasPrefix(a, "--") {
			return g.longOpt(a[2:])
		}
		g.next = a[1:]
		return g.shortOpt()
	}
	return optEnd
}

func (g *getopt) shortOpt() int {
	c := g.next[0]
	g.next = g.next[1:]
	kind := int(g.short[c]) - 1
	if kind < 0 {
		g.next = ""
		return optUnknown
	}
	switch kind {
	case requiredArg:
		if g.next != "" {
			g.arg, g.has, g.next = g.next, true, ""
		} else if g.ind < len(g.args) {
			g.arg, g.has = g.args[g.ind], true
			g.ind++
		} else {
			return optMissing
		}
	case optionalArg:
		if g.next != "" {
			g.arg, g.has, g.next = g.next, true, ""
		}
	}
	return int(c)
}

func (g *getopt) longOpt(s string) int {
	name, value, hasValue := strings.Cut(s, "=")
	var match *longOpt
	ambiguous := false
	// An exact name wins over any abbreviation: look for one first.
	if o := g.exactLong(name); o != nil {
		match = o
	} else {
		g.searchLong(name, &match, &ambiguous)
	}
	if match == nil || ambiguous || name == "" {
		return optUnknown
	}
	switch match.arg {
	case noArg:
		if hasValue {
			return optUnknown
		}
	case requiredArg:
		if hasValue {
			g.arg, g.has = value, true
		} else if g.ind < len(g.args) {
			g.arg, g.has = g.args[g.ind], true
			g.ind++
		} else {
			return optMissing
		}
	case optionalArg:
		if hasValue {
			g.arg, g.has = value, true
		}
	}
	return match.val
}

// exactLong returns the first long option named name, or nil.
func (g *getopt) exactLong(name string) *longOpt {
	if len(g.long) > 0 && len(longOpts) > 0 && &g.long[0] == &longOpts[0] && len(g.long) == len(longOpts) {
		if i, ok := longOptIndex()[name]; ok {
			return &g.long[i]
		}
	} else {
		for i := range g.long {
			if g.long[i].name == name {
				return &g.long[i]
			}
		}
	}
	for _, opts := range g.extra {
		for i := range opts {
			if opts[i].name == name {
				return &opts[i]
			}
		}
	}
	return nil
}

// searchLong finds the long option that name abbreviates, in order, as
// getopt_long does: several that differ make it ambiguous.
func (g *getopt) searchLong(name string, match **longOpt, ambiguous *bool) {
	search := func(opts []longOpt) {
		for i := range opts {
			o := &opts[i]
			if strings.HasPrefix(o.name, name) {
				if *match == nil {
					*match = o
				} else if (*match).arg != o.arg || (*match).val != o.val {
					*ambiguous = true
				}
			}
		}
	}
	search(g.long)
	for _, opts := range g.extra {
		search(opts)
	}
}

// longOptIndex maps each name of longOpts to its first index. It is built
// on first use, by the first long option of a command line.
var longOptIndex = sync.OnceValue(func() map[string]int {
	m := make(map[string]int, len(longOpts))
	for i := len(longOpts) - 1; i >= 0; i-- {
		m[longOpts[i].name] = i
	}
	return m
})

// nextArg consumes and returns the argument after the current option when
// the option took none and that argument does not look like an option, as
// conntrack's get_optional_arg reads a table name or a NAT address.
func (g *getopt) nextArg() (string, bool) {
	if g.has || g.next != "" {
		return "", false
	}
	if g.ind < len(g.args) {
		if a := g.args[g.ind]; a == "" || (a[0] != '-' && a[0] != '!') {
			g.ind++
			return a, true
		}
	}
	return "", false
}
