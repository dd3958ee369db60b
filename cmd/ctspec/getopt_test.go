package main

import (
	"strings"
	"testing"
)

// linearLong is getopt_long's search over one list, written out: the
// first exact name wins; otherwise a unique abbreviation, where options
// that differ make it ambiguous.
func linearLong(opts []longOpt, name string) (val int, ok bool) {
	var match *longOpt
	ambiguous := false
	for i := range opts {
		o := &opts[i]
		if o.name == name {
			return o.val, true
		}
		if strings.HasPrefix(o.name, name) {
			if match == nil {
				match = o
			} else if match.arg != o.arg || match.val != o.val {
				ambiguous = true
			}
		}
	}
	if match == nil || ambiguous || name == "" {
		return 0, false
	}
	return match.val, true
}

// TestLongOptSearch checks every long option name and every prefix of
// one, with and without a protocol's options added, against the search
// over the concatenated list.
func TestLongOptSearch(t *testing.T) {
	for _, extra := range [][]longOpt{nil, portOpts} {
		all := append(append([]longOpt(nil), longOpts...), extra...)
		seen := map[string]bool{}
		for _, o := range all {
			for n := 1; n <= len(o.name); n++ {
				name := o.name[:n]
				if seen[name] {
					continue
				}
				seen[name] = true
				g := newGetopt([]string{"prog", "--" + name}, shortOpts, longOpts)
				if extra != nil {
					g.addLong(extra)
				}
				got := g.nextOpt()
				want, ok := linearLong(all, name)
				if !ok {
					want = optUnknown
				}
				// An option that needs an argument and has none.
				if ok && got == optMissing {
					continue
				}
				if got != want {
					t.Errorf("--%s (extra %t): got %d, want %d", name, extra != nil, got, want)
				}
			}
		}
	}
}
