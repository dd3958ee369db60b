package clib

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// step is one result of Next: the option value, its argument if it had
// one, and the word it came from.
type step struct {
	Val  int
	Arg  string
	Has  bool
	Last string
}

func TestGetopt(t *testing.T) {
	long := []LongOpt{
		{Name: "src", Arg: RequiredArg, Val: 's'},
		{Name: "src-nat", Arg: OptionalArg, Val: 'n'},
		{Name: "zero", Arg: NoArg, Val: 'z'},
		{Name: "dump", Arg: OptionalArg, Val: 'L'},
		{Name: "dst", Arg: RequiredArg, Val: 'd'},
		{Name: "orig-dst", Arg: RequiredArg, Val: 'd'},
		{Name: "dst-addr", Arg: RequiredArg, Val: 'd'},
	}
	const short = ":Lzs:d:n::"
	for _, tt := range []struct {
		name string
		args []string
		want []step
	}{
		{name: "short with separate argument", args: []string{"-s", "1.2.3.4"},
			want: []step{{Val: 's', Arg: "1.2.3.4", Has: true, Last: "-s"}}},
		{name: "short with attached argument", args: []string{"-s1.2.3.4"},
			want: []step{{Val: 's', Arg: "1.2.3.4", Has: true, Last: "-s1.2.3.4"}}},
		{name: "cluster", args: []string{"-Lzs", "x"},
			want: []step{{Val: 'L', Last: "-Lzs"}, {Val: 'z', Last: "-Lzs"}, {Val: 's', Arg: "x", Has: true, Last: "-Lzs"}}},
		{name: "optional short takes only attached", args: []string{"-n", "1.2.3.4"},
			want: []step{{Val: 'n', Last: "-n"}}},
		{name: "optional short attached", args: []string{"-n1.2.3.4"},
			want: []step{{Val: 'n', Arg: "1.2.3.4", Has: true, Last: "-n1.2.3.4"}}},
		{name: "missing argument", args: []string{"-s"},
			want: []step{{Val: Missing, Last: "-s"}}},
		{name: "unknown short", args: []string{"-x"},
			want: []step{{Val: Unknown, Last: "-x"}}},
		{name: "long with equals", args: []string{"--src=a"},
			want: []step{{Val: 's', Arg: "a", Has: true, Last: "--src=a"}}},
		{name: "long with separate argument", args: []string{"--src", "a"},
			want: []step{{Val: 's', Arg: "a", Has: true, Last: "--src"}}},
		{name: "exact name beats abbreviation", args: []string{"--src", "a", "--src-n=b"},
			want: []step{{Val: 's', Arg: "a", Has: true, Last: "--src"}, {Val: 'n', Arg: "b", Has: true, Last: "--src-n=b"}}},
		{name: "unique abbreviation", args: []string{"--ze"},
			want: []step{{Val: 'z', Last: "--ze"}}},
		{name: "ambiguous abbreviation", args: []string{"--sr"},
			want: []step{{Val: Unknown, Last: "--sr"}}},
		{name: "abbreviation of different options", args: []string{"--d", "x"},
			want: []step{{Val: Unknown, Last: "--d"}}},
		{name: "abbreviation of aliases is not ambiguous", args: []string{"--ds", "x"},
			want: []step{{Val: 'd', Arg: "x", Has: true, Last: "--ds"}}},
		{name: "no argument given one", args: []string{"--zero=1"},
			want: []step{{Val: Unknown, Last: "--zero=1"}}},
		{name: "optional long takes only attached", args: []string{"--src-nat", "x"},
			want: []step{{Val: 'n', Last: "--src-nat"}}},
		{name: "long missing argument", args: []string{"--dst"},
			want: []step{{Val: Missing, Last: "--dst"}}},
		{name: "non-options are skipped", args: []string{"foo", "-z", "-", "bar"},
			want: []step{{Val: 'z', Last: "-z"}}},
		{name: "double dash ends", args: []string{"--", "-z"}},
		{name: "empty long name", args: []string{"--=x"},
			want: []step{{Val: Unknown, Last: "--=x"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := New(append([]string{"prog"}, tt.args...), short, long)
			var got []step
			for v := g.Next(); v != End; v = g.Next() {
				got = append(got, step{Val: v, Arg: g.Arg, Has: g.Has, Last: g.Last})
				if len(got) > 10 {
					t.Fatal("no end")
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%q (-want +got)\n%s", tt.args, diff)
			}
		})
	}
}

func TestGetoptNextArg(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
		ok   bool
	}{
		{name: "word after", args: []string{"-L", "expect"}, want: "expect", ok: true},
		{name: "empty word", args: []string{"-L", ""}, want: "", ok: true},
		{name: "option after", args: []string{"-L", "-z"}},
		{name: "negation after", args: []string{"-L", "!x"}},
		{name: "nothing after", args: []string{"-L"}},
		{name: "attached argument", args: []string{"-Lexpect", "x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := New(append([]string{"prog"}, tt.args...), ":L::z", nil)
			g.Next()
			got, ok := g.NextArg()
			if got != tt.want || ok != tt.ok {
				t.Errorf("NextArg after %q = %q, %t; want %q, %t", tt.args, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestGetoptAddLong(t *testing.T) {
	g := New([]string{"prog", "--sport", "80", "--sp", "81"}, "", []LongOpt{{Name: "src", Arg: RequiredArg, Val: 's'}})
	g.AddLong([]LongOpt{{Name: "sport", Arg: RequiredArg, Val: 0x200}})
	var got []step
	for v := g.Next(); v != End; v = g.Next() {
		got = append(got, step{Val: v, Arg: g.Arg, Has: g.Has, Last: g.Last})
	}
	want := []step{{Val: 0x200, Arg: "80", Has: true, Last: "--sport"}, {Val: 0x200, Arg: "81", Has: true, Last: "--sp"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// TestGetoptReset parses a second command line with a Getopt that stopped
// inside a cluster of the first and had protocol options added: it must
// see what a new Getopt sees, without the added options.
func TestGetoptReset(t *testing.T) {
	long := []LongOpt{{Name: "src", Arg: RequiredArg, Val: 's'}}
	const short = ":Lzs:"
	steps := func(g *Getopt) []step {
		var got []step
		for v := g.Next(); v != End; v = g.Next() {
			got = append(got, step{Val: v, Arg: g.Arg, Has: g.Has, Last: g.Last})
		}
		return got
	}
	second := []string{"prog", "z", "--sport", "80", "-s", "a", "-L"}
	g := New([]string{"prog", "--sport", "1", "-Lzs"}, short, long)
	g.AddLong([]LongOpt{{Name: "sport", Arg: RequiredArg, Val: 0x200}})
	g.Next()
	g.Next() // inside the cluster "-Lzs"
	g.Reset(second)
	want := steps(New(second, short, long))
	if diff := cmp.Diff(want, steps(g)); diff != "" {
		t.Errorf("after Reset (-want +got)\n%s", diff)
	}
}
