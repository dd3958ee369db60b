package clib

import "strings"

// Argument kinds of an option, as getopt_long(3) spells them.
const (
	NoArg       = 0 // no_argument
	RequiredArg = 1 // required_argument
	OptionalArg = 2 // optional_argument
)

// LongOpt is one long option, as getopt_long's struct option: its name,
// argument kind (NoArg, RequiredArg or OptionalArg) and the value the
// parser returns for it (a short option letter, or a private code).
type LongOpt struct {
	Name string
	Arg  int
	Val  int
}

// Codes getopt returns besides option values.
const (
	End     = -1  // no more options
	Unknown = '?' // an unknown or ambiguous option, or a stray argument
	Missing = ':' // an option without its required argument
)

// Getopt parses a command line the way GNU getopt_long(3) does for
// conntrack: an option string that starts with ':' (so a missing argument
// is reported apart from an unknown option), long options that may be
// abbreviated to any unambiguous prefix, "--name=value" and "--name value"
// forms, optional arguments that only attach ("-nADDR", "--src-nat=ADDR"),
// and clusters of short options ("-Lz"). Arguments that are not options
// are skipped, as GNU getopt's permutation moves them to the end, where
// conntrack ignores them; the caller may instead consume the argument that
// follows an option with NextArg, as conntrack's table names are read.
//
// A Getopt is not safe for concurrent use.
type Getopt struct {
	// Arg is the current option's argument and Has whether it had one.
	Arg string
	Has bool
	// Last is the argument word the current option came from.
	Last string

	// Index, when set, finds the first option of the long list passed to
	// New with an exact name, so that a caller with a long static list
	// can avoid a linear search.
	Index func(name string) (int, bool)

	args  []string
	short [256]int8 // option letter to argument kind plus one; 0 is none
	long  []LongOpt
	extra [][]LongOpt // long options added by AddLong, searched after long

	ind  int    // index of the next argument to read
	next string // rest of a short-option cluster
}

// New returns a parser of args (args[0] is the program name) for the
// short options of shortSpec, in getopt(3)'s syntax, and the long options
// of long.
func New(args []string, shortSpec string, long []LongOpt) *Getopt {
	g := &Getopt{args: args, long: long, ind: 1}
	spec := strings.TrimPrefix(shortSpec, ":")
	for i := 0; i < len(spec); i++ {
		c := spec[i]
		kind := NoArg
		if i+1 < len(spec) && spec[i+1] == ':' {
			kind = RequiredArg
			i++
			if i+1 < len(spec) && spec[i+1] == ':' {
				kind = OptionalArg
				i++
			}
		}
		g.short[c] = int8(kind + 1)
	}
	return g
}

// Reset makes g parse args (args[0] is the program name) from the
// start, with the option lists it has, less those AddLong added: a
// caller that parses many command lines builds one Getopt.
func (g *Getopt) Reset(args []string) {
	g.Arg, g.Has, g.Last = "", false, ""
	g.args, g.ind, g.next = args, 1, ""
	clear(g.extra)
	g.extra = g.extra[:0]
}

// AddLong adds long options, as conntrack merges a protocol's options once
// -p names it. They are searched after those already there.
func (g *Getopt) AddLong(opts []LongOpt) {
	g.extra = append(g.extra, opts)
}

// Next returns the next option's value, End at the end, Unknown for an
// unknown option and Missing for a missing argument. The word the option
// came from is in Last, its argument in Arg.
func (g *Getopt) Next() int {
	g.Arg, g.Has = "", false
	if g.next != "" {
		return g.shortOpt()
	}
	for g.ind < len(g.args) {
		a := g.args[g.ind]
		if a == "--" {
			g.ind = len(g.args)
			return End
		}
		if len(a) < 2 || a[0] != '-' {
			// Not an option: GNU getopt permutes it to the end.
			g.ind++
			continue
		}
		g.ind++
		g.Last = a
		if strings.HasPrefix(a, "--") {
			return g.longOpt(a[2:])
		}
		g.next = a[1:]
		return g.shortOpt()
	}
	return End
}

func (g *Getopt) shortOpt() int {
	c := g.next[0]
	g.next = g.next[1:]
	kind := int(g.short[c]) - 1
	if kind < 0 {
		g.next = ""
		return Unknown
	}
	switch kind {
	case RequiredArg:
		if g.next != "" {
			g.Arg, g.Has, g.next = g.next, true, ""
		} else if g.ind < len(g.args) {
			g.Arg, g.Has = g.args[g.ind], true
			g.ind++
		} else {
			return Missing
		}
	case OptionalArg:
		if g.next != "" {
			g.Arg, g.Has, g.next = g.next, true, ""
		}
	}
	return int(c)
}

func (g *Getopt) longOpt(s string) int {
	name, value, hasValue := strings.Cut(s, "=")
	var match *LongOpt
	ambiguous := false
	// An exact name wins over any abbreviation: look for one first.
	if o := g.exactLong(name); o != nil {
		match = o
	} else {
		g.searchLong(name, &match, &ambiguous)
	}
	if match == nil || ambiguous || name == "" {
		return Unknown
	}
	switch match.Arg {
	case NoArg:
		if hasValue {
			return Unknown
		}
	case RequiredArg:
		if hasValue {
			g.Arg, g.Has = value, true
		} else if g.ind < len(g.args) {
			g.Arg, g.Has = g.args[g.ind], true
			g.ind++
		} else {
			return Missing
		}
	case OptionalArg:
		if hasValue {
			g.Arg, g.Has = value, true
		}
	}
	return match.Val
}

// exactLong returns the first long option named name, or nil.
func (g *Getopt) exactLong(name string) *LongOpt {
	if g.Index != nil {
		if i, ok := g.Index(name); ok {
			return &g.long[i]
		}
	} else {
		for i := range g.long {
			if g.long[i].Name == name {
				return &g.long[i]
			}
		}
	}
	for _, opts := range g.extra {
		for i := range opts {
			if opts[i].Name == name {
				return &opts[i]
			}
		}
	}
	return nil
}

// searchLong finds the long option that name abbreviates, in order, as
// getopt_long does: several that differ make it ambiguous.
func (g *Getopt) searchLong(name string, match **LongOpt, ambiguous *bool) {
	search := func(opts []LongOpt) {
		for i := range opts {
			o := &opts[i]
			if strings.HasPrefix(o.Name, name) {
				if *match == nil {
					*match = o
				} else if (*match).Arg != o.Arg || (*match).Val != o.Val {
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

// NextArg consumes and returns the argument after the current option when
// the option took none and that argument does not look like an option, as
// conntrack's get_optional_arg reads a table name or a NAT address.
func (g *Getopt) NextArg() (string, bool) {
	if g.Has || g.next != "" {
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
