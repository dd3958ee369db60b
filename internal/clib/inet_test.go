package clib

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestInetAton(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{name: "dotted quad", in: "192.0.2.1", want: "192.0.2.1"},
		{name: "one part", in: "1", want: "0.0.0.1"},
		{name: "one part is 32 bits", in: "3221225985", want: "192.0.2.1"},
		{name: "one part hex", in: "0xc0000201", want: "192.0.2.1"},
		{name: "two parts", in: "127.1", want: "127.0.0.1"},
		{name: "two parts, 24-bit tail", in: "10.65536", want: "10.1.0.0"},
		{name: "hex first part", in: "0x7f.1", want: "127.0.0.1"},
		{name: "three parts, 16-bit tail", in: "10.1.258", want: "10.1.1.2"},
		{name: "octal parts", in: "0177.0.0.01", want: "127.0.0.1"},
		{name: "hex and octal", in: "0x7f.010.0.1", want: "127.8.0.1"},
		{name: "trailing space ends it", in: "10.0.0.1 junk", want: "10.0.0.1"},
		{name: "part too large", in: "256.1.1.1", want: "invalid IP"},
		{name: "two parts, tail too large", in: "1.16777216", want: "invalid IP"},
		{name: "three parts, tail too large", in: "1.1.65536", want: "invalid IP"},
		{name: "one part too large", in: "4294967296", want: "invalid IP"},
		{name: "bad octal digit", in: "08.0.0.1", want: "invalid IP"},
		{name: "five parts", in: "1.2.3.4.5", want: "invalid IP"},
		{name: "trailing dot", in: "1.2.3.", want: "invalid IP"},
		{name: "junk", in: "1.2.3.x", want: "invalid IP"},
		{name: "sign", in: "+1.2.3.4", want: "invalid IP"},
		{name: "leading space", in: " 1.2.3.4", want: "invalid IP"},
		{name: "empty", in: "", want: "invalid IP"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := InetAton(tt.in)
			if ok != a.IsValid() {
				t.Errorf("InetAton(%q): ok %t with address %v", tt.in, ok, a)
			}
			if diff := cmp.Diff(tt.want, a.String()); diff != "" {
				t.Errorf("InetAton(%q) (-want +got)\n%s", tt.in, diff)
			}
		})
	}
}

func TestInetPton6(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{name: "plain", in: "2001:db8::1", want: "2001:db8::1"},
		{name: "ipv4 mapped stays ipv6", in: "::ffff:192.0.2.1", want: "::ffff:192.0.2.1"},
		{name: "ipv4", in: "192.0.2.1", want: "invalid IP"},
		{name: "zone", in: "fe80::1%eth0", want: "invalid IP"},
		{name: "junk", in: "2001:db8::g", want: "invalid IP"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := InetPton6(tt.in)
			if diff := cmp.Diff(tt.want, a.String()); diff != "" {
				t.Errorf("InetPton6(%q) (-want +got)\n%s", tt.in, diff)
			}
		})
	}
}
