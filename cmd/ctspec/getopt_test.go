package main

import (
	"strings"
	"testing"

	"github.com/ctspec/ctspec/internal/clib"
)

// linearLong is getopt_long's search over one list, written out: the
// first exact name wins; otherwise a unique abbreviation, where options
// that differ make it ambiguous.
func linearLong(opts []clib.LongOpt, name string) (val int, ok bool) {
	var match *clib.LongOpt
	ambiguous := false
	for i := range opts {
		o := &opts[i]
		if o.Name == name {
			return o.Val, true
		}
		if strings.HasPrefix(o.Name, name) {
			if match == nil {
				match = o
			} else if match.Arg != o.Arg || match.Val != o.Val {
				ambiguous = true
			}
		}
	}
	if match == nil || ambiguous || name == "" {
		return 0, false
	}
	return match.Val, true
}

// TestLongOptSearch checks every long option name and every prefix of
// one, with and without a protocol's options added, against the search
// over the concatenated list.
func TestLongOptSearch(t *testing.T) {
	for _, extra := range [][]clib.LongOpt{nil, portOpts} {
		_, long := getoptSpec()
		all := append(append([]clib.LongOpt(nil), long...), extra...)
		seen := map[string]bool{}
		for _, o := range all {
			for n := 1; n <= len(o.Name); n++ {
				name := o.Name[:n]
				if seen[name] {
					continue
				}
				seen[name] = true
				g := newGetopt([]string{"prog", "--" + name})
				if extra != nil {
					g.AddLong(extra)
				}
				got := g.Next()
				want, ok := linearLong(all, name)
				if !ok {
					want = clib.Unknown
				}
				// An option that needs an argument and has none.
				if ok && got == clib.Missing {
					continue
				}
				if got != want {
					t.Errorf("--%s (extra %t): got %d, want %d", name, extra != nil, got, want)
				}
			}
		}
	}
}
