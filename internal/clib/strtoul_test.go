package clib

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The expected values below follow glibc's strtoul(3), strtol(3), atoi(3),
// inet_aton(3) and getopt_long(3), worked out from their manual pages.

func TestStrtoul(t *testing.T) {
	type result struct {
		V    uint64
		Rest string
		OK   bool
	}
	for _, tt := range []struct {
		name string
		in   string
		base int
		want result
	}{
		{name: "decimal", in: "80", want: result{80, "", true}},
		{name: "trailing junk", in: "80x", want: result{80, "x", true}},
		{name: "leading spaces", in: " \t\n\v\f\r42", want: result{42, "", true}},
		{name: "plus sign", in: "+7", want: result{7, "", true}},
		{name: "minus one wraps", in: "-1", want: result{math.MaxUint64, "", true}},
		{name: "minus two wraps", in: "-2", want: result{math.MaxUint64 - 1, "", true}},
		{name: "hex", in: "0x1F", want: result{31, "", true}},
		{name: "hex upper X", in: "0XfF/8", want: result{255, "/8", true}},
		{name: "octal", in: "010", want: result{8, "", true}},
		{name: "octal stops at 8", in: "08", want: result{0, "8", true}},
		{name: "0x without hex digit is zero", in: "0xg", want: result{0, "xg", true}},
		{name: "zero", in: "0", want: result{0, "", true}},
		{name: "base 10 ignores 0x", in: "0x10", base: 10, want: result{0, "x10", true}},
		{name: "base 10 leading zero", in: "010", base: 10, want: result{10, "", true}},
		{name: "max", in: "18446744073709551615", want: result{math.MaxUint64, "", true}},
		{name: "overflow saturates", in: "18446744073709551616", want: result{math.MaxUint64, "", true}},
		{name: "negative overflow saturates", in: "-99999999999999999999", want: result{math.MaxUint64, "", true}},
		{name: "no digits", in: "abc", want: result{0, "abc", false}},
		{name: "sign only", in: " -", want: result{0, " -", false}},
		{name: "empty", in: "", want: result{0, "", false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, rest, ok := Strtoul(tt.in, tt.base)
			if diff := cmp.Diff(tt.want, result{v, rest, ok}); diff != "" {
				t.Errorf("Strtoul(%q, %d) (-want +got)\n%s", tt.in, tt.base, diff)
			}
		})
	}
}

func TestAtoi(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want int64
	}{
		{name: "decimal", in: "443", want: 443},
		{name: "junk after", in: "12abc", want: 12},
		{name: "spaces and sign", in: "  -5", want: -5},
		{name: "plus", in: "+9", want: 9},
		{name: "no digits", in: "x1", want: 0},
		{name: "hex is not read", in: "0x10", want: 0},
		{name: "leading zero is decimal", in: "010", want: 10},
		{name: "beyond 16 bits", in: "65537", want: 65537},
		{name: "saturates", in: "99999999999999999999", want: math.MaxInt64},
		{name: "empty", in: "", want: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Atoi(tt.in)); diff != "" {
				t.Errorf("Atoi(%q) (-want +got)\n%s", tt.in, diff)
			}
		})
	}
}
