package main

import (
	"strings"
	"testing"
)

// TestOptionTable checks the rows of the options table against each
// other: each option bit has one row, codes are unique, and each -h line
// names its option's letter and every long name.
func TestOptionTable(t *testing.T) {
	rows := map[int]string{}
	codes := map[int]string{}
	for _, o := range options {
		if o.bit >= 0 {
			if prev, dup := rows[o.bit]; dup {
				t.Errorf("bit %d: rows %s and %s", o.bit, prev, o.name)
			}
			rows[o.bit] = o.name
		}
		if prev, dup := codes[o.code]; dup {
			t.Errorf("code %q: rows %s and %s", o.code, prev, o.name)
		}
		codes[o.code] = o.name
		if o.short != "" && int(o.short[0]) != o.code {
			t.Errorf("%s: short form %q returns %q", o.name, o.short, o.code)
		}
		if o.help == "" {
			continue
		}
		words := strings.FieldsFunc(o.help, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
		has := func(w string) bool {
			for _, x := range words {
				if x == w {
					return true
				}
			}
			return false
		}
		if c := o.code; c >= 'a' && c <= 'z' && !has("-"+string(rune(c))) {
			t.Errorf("%s: -h line %q lacks -%c", o.name, o.help, c)
		}
		for _, n := range o.long {
			if !has("--" + n) {
				t.Errorf("%s: -h line %q lacks --%s", o.name, o.help, n)
			}
		}
	}
	for b := 0; b < numOpt; b++ {
		if _, ok := rows[b]; !ok {
			t.Errorf("bit %d has no row", b)
		}
	}
	for _, c := range commands {
		if prev, dup := codes[int(c.short[0])]; dup {
			t.Errorf("command -%c: also option %s", c.short[0], prev)
		}
		if p := "  -" + c.short[:1]; c.help != "" && !strings.HasPrefix(c.help, p+" ") && !strings.HasPrefix(c.help, p+"\t") {
			t.Errorf("command -%c: -h line %q", c.short[0], c.help)
		}
	}
}

// TestOptionLookups checks the precomputed lookups against a search of
// the tables: each code getopt may return finds its command or option,
// or nothing, and each command's row of optionRows is its column of the
// options table.
func TestOptionLookups(t *testing.T) {
	for code := -2; code < numCodes+2; code++ {
		var wantCmd *command
		for i := range commands {
			if int(commands[i].short[0]) == code {
				wantCmd = &commands[i]
			}
		}
		var wantOpt *option
		for i := range options {
			if options[i].code == code {
				wantOpt = &options[i]
			}
		}
		if got := commandByCode(code); got != wantCmd {
			t.Errorf("commandByCode(%#x) = %v, want %v", code, got, wantCmd)
		}
		if got := optionByCode(code); got != wantOpt {
			t.Errorf("optionByCode(%#x) = %v, want %v", code, got, wantOpt)
		}
	}
	for _, o := range options {
		if o.bit < 0 {
			continue
		}
		if got := optionRows.names[o.bit]; got != o.name {
			t.Errorf("bit %d: name %q, want %q", o.bit, got, o.name)
		}
		for cmd := range numCmd {
			if got := optionRows.cmds[cmd][o.bit]; got != o.cmds[cmd] {
				t.Errorf("%s with command %d: %d, want %d", o.name, cmd, got, o.cmds[cmd])
			}
		}
	}
}

// TestGetoptSpecAllocs checks that the option lists are built with one
// allocation each: on a small call they are built cold, where every
// growth step costs a new size class and its page faults.
func TestGetoptSpecAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(20, func() { buildGetoptSpec() }); n > 2 {
		t.Errorf("building the option lists allocates %v times, want 2", n)
	}
}
