package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// runCheck prints every difference and fails if there is one.
func runCheck(in *input, verbose bool, stdout io.Writer) error {
	if n := check(in, verbose, stdout); n > 0 {
		return fmt.Errorf("check: %d %s between %s and the headers in %s", n, plural(n, "difference"), in.specPath, in.include)
	}
	return nil
}

// todoMarker is the doc sync gives an attribute whose type it cannot know.
// check fails while any attribute still carries it.
const todoMarker = "TODO(headergen): set the type from nf_conntrack_netlink.c"

// check compares the spec with the headers and prints one line per problem
// to w. With verbose it also prints what is fine but worth knowing: spec
// entries the headers lack and spec containers no header declares. It
// returns the number of problems.
func check(in *input, verbose bool, w io.Writer) int {
	var problems []string
	for _, err := range in.errs {
		problems = append(problems, err.Error())
	}
	ps, other, notes := in.pairings()
	problems = append(problems, other...)
	var findings []finding
	for _, p := range ps {
		fs, extra := p.compare()
		findings = append(findings, fs...)
		for _, s := range extra {
			notes = append(notes, fmt.Sprintf("%s:%d: %s = %s (%s): not in the headers", in.specPath, s.line, s.cname, p.fmtValue(s.value), p.label))
		}
	}
	sort.SliceStable(findings, func(i, j int) bool {
		a, b := findings[i].h, findings[j].h
		if a.file != b.file {
			return a.file < b.file
		}
		return a.line < b.line
	})
	for _, f := range findings {
		problems = append(problems, f.String())
	}
	for _, set := range in.spec.AttributeSets {
		for _, a := range set.Attributes {
			if strings.Contains(a.Doc, todoMarker) {
				problems = append(problems, fmt.Sprintf("%s:%d: %s.%s: %s", in.specPath, a.Line, set.Name, a.Name, todoMarker))
			}
		}
	}
	for _, p := range problems {
		fmt.Fprintln(w, p)
	}
	if verbose {
		notes = append(in.notes, notes...)
		for _, n := range notes {
			fmt.Fprintln(w, "note:", n)
		}
		fmt.Fprintf(w, "note: compared %d spec containers with %d headers under %s\n", len(ps), len(in.headers), in.include)
	}
	return len(problems)
}
