package main

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctspec/ctspec/internal/clib"
)

func TestInetAton(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{name: "dotted quad", in: "192.0.2.1", want: "192.0.2.1"},
		{name: "one part", in: "1", want: "0.0.0.1"},
		{name: "two parts", in: "10.1", want: "10.0.0.1"},
		{name: "three parts", in: "10.1.2", want: "10.1.0.2"},
		{name: "hex and octal", in: "0x7f.010.0.1", want: "127.8.0.1"},
		{name: "too large", in: "256.1.1.1", want: "invalid IP"},
		{name: "junk", in: "1.2.3.x", want: "invalid IP"},
		{name: "empty", in: "", want: "invalid IP"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := clib.InetAton(tt.in)
			if diff := cmp.Diff(tt.want, a.String()); diff != "" {
				t.Errorf("clib.InetAton(%q) (-want +got)\n%s", tt.in, diff)
			}
		})
	}
}

func TestNtop6(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{name: "plain", in: "2001:db8::1", want: "2001:db8::1"},
		{name: "loopback", in: "::1", want: "::1"},
		{name: "unspecified", in: "::", want: "::"},
		{name: "ipv4 mapped", in: "::ffff:192.0.2.4", want: "::ffff:192.0.2.4"},
		{name: "ipv4 compatible", in: "::192.0.2.4", want: "::192.0.2.4"},
		{name: "trailing zeros", in: "2001:db8::", want: "2001:db8::"},
		{name: "first of equal runs", in: "1:0:0:2:0:0:3:4", want: "1::2:0:0:3:4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ntop6(netip.MustParseAddr(tt.in))); diff != "" {
				t.Errorf("ntop6(%s) (-want +got)\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	for _, tt := range []struct {
		name        string
		in          string
		value, mask uint32
		err         string
	}{
		{name: "assured", in: "ASSURED", value: 4, mask: 4},
		{name: "prefix and case", in: "ass,seen", value: 6, mask: 6},
		{name: "unreplied", in: "UNREPLIED", value: 0, mask: 2},
		{name: "negated", in: "!ASSURED", value: 0, mask: 4},
		{name: "unknown", in: "FOO", err: "Bad parameter `FOO'"},
		{name: "empty word", in: "ASSURED,", err: "Bad parameter `'"},
		{name: "negated unreplied", in: "!UNREPLIED", err: "Bad parameter `UNREPLIED'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, m, err := parseStatus(tt.in, func(string) {})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.err, got); diff != "" {
				t.Fatalf("error (-want +got)\n%s", diff)
			}
			if err == nil && (v != tt.value || m != tt.mask) {
				t.Errorf("parseStatus(%q) = %#x/%#x, want %#x/%#x", tt.in, v, m, tt.value, tt.mask)
			}
		})
	}
}

func TestParseCmdLine(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		cmd  int
		err  string
	}{
		{name: "list", args: []string{"-L"}, cmd: ctList},
		{name: "abbreviated long", args: []string{"--dum"}, cmd: ctList},
		{name: "ambiguous long", args: []string{"--d"}, err: "unknown option `--d'"},
		{name: "table", args: []string{"-L", "exp"}, cmd: expList},
		{name: "unknown table", args: []string{"-L", "foo"}, err: "unknown type `foo'"},
		{name: "proto option before -p", args: []string{"-L", "--sport", "1"}, err: "unknown option `--sport'"},
		{name: "missing argument", args: []string{"-L", "-p"}, err: "option `-p' requires an argument"},
		{name: "two commands", args: []string{"-L", "-D"}, err: "Invalid commands combination"},
		{name: "create needs timeout", args: []string{"-I", "-p", "udp", "-s", "1.1.1.1", "-d", "2.2.2.2", "--sport", "1", "--dport", "2"}, err: "You need to supply the `--timeout' option for this command"},
		{name: "create needs a pair", args: []string{"-I", "-p", "udp", "-s", "1.1.1.1", "--sport", "1", "--dport", "2", "-t", "1"}, err: "you have to specify `--src' and `--dst'"},
		{name: "mismatched family", args: []string{"-L", "-s", "1.1.1.1", "-d", "::1"}, err: "mismatched address family"},
		{name: "cidr on reply", args: []string{"-L", "-r", "1.1.1.1/8"}, err: "CIDR notation unavailable for `--reply-src'"},
		{name: "save with xml", args: []string{"-L", "-o", "save,xml"}, err: "cannot combine save output with any other output type, use -o save only"},
		{name: "json", args: []string{"-L", "-o", "json"}, cmd: ctList},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseCmdLine(append([]string{"ctspec"}, tt.args...), func(string) {})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.err, got); diff != "" {
				t.Fatalf("error (-want +got)\n%s", diff)
			}
			if err == nil && c.cmd != tt.cmd {
				t.Errorf("command %d, want %d", c.cmd, tt.cmd)
			}
		})
	}
}

func TestSplitLine(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want []string
	}{
		{name: "words", in: "-I -p tcp", want: []string{"-I", "-p", "tcp"}},
		{name: "spaces and tabs", in: "  -L\t -p  udp ", want: []string{"-L", "-p", "udp"}},
		{name: "quotes", in: `-l "a b" x`, want: []string{"-l", "a b", "x"}},
		{name: "escape in quotes", in: `"a\"b"`, want: []string{`a"b`}},
		{name: "empty quotes", in: `-l ""`, want: []string{"-l", ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitLine(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("splitLine(%q) (-want +got)\n%s", tt.in, diff)
			}
		})
	}
}
