package clib

import (
	"net/netip"
	"strings"
)

// InetAton parses an IPv4 address the way inet_aton(3) does: one to four
// parts in decimal, octal or hex, the last part filling the remaining
// bytes ("10.1" is 10.0.0.1, "0x7f.1" is 127.0.0.1).
func InetAton(s string) (netip.Addr, bool) {
	var parts []uint64
	rest := s
	for {
		if rest == "" || !(rest[0] >= '0' && rest[0] <= '9') {
			return netip.Addr{}, false
		}
		v, r, ok := strtoulNoSign(rest)
		if !ok {
			return netip.Addr{}, false
		}
		parts = append(parts, v)
		rest = r
		if rest == "" || IsSpace(rest[0]) {
			break
		}
		if rest[0] != '.' || len(parts) == 4 {
			return netip.Addr{}, false
		}
		rest = rest[1:]
	}
	var val uint64
	switch len(parts) {
	case 1:
		if parts[0] > 0xffffffff {
			return netip.Addr{}, false
		}
		val = parts[0]
	case 2:
		if parts[0] > 0xff || parts[1] > 0xffffff {
			return netip.Addr{}, false
		}
		val = parts[0]<<24 | parts[1]
	case 3:
		if parts[0] > 0xff || parts[1] > 0xff || parts[2] > 0xffff {
			return netip.Addr{}, false
		}
		val = parts[0]<<24 | parts[1]<<16 | parts[2]
	case 4:
		for _, p := range parts {
			if p > 0xff {
				return netip.Addr{}, false
			}
		}
		val = parts[0]<<24 | parts[1]<<16 | parts[2]<<8 | parts[3]
	}
	return netip.AddrFrom4([4]byte{byte(val >> 24), byte(val >> 16), byte(val >> 8), byte(val)}), true
}

// strtoulNoSign is the number parser of inet_aton: base by prefix, no sign,
// overflow is an error.
func strtoulNoSign(s string) (uint64, string, bool) {
	base := 10
	i := 0
	if len(s) > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		base, i = 16, 2
	} else if s[0] == '0' {
		base = 8
	}
	var v uint64
	start := i
	for ; i < len(s); i++ {
		d := hexDigit(s[i])
		if d < 0 || d >= base {
			break
		}
		v = v*uint64(base) + uint64(d)
		if v > 0xffffffff {
			return 0, s, false
		}
	}
	if i == start && base != 16 && start == 0 {
		return 0, s, false
	}
	return v, s[i:], true
}

// InetPton6 parses an IPv6 address as inet_pton(AF_INET6) does; IPv4-mapped
// forms stay IPv6.
func InetPton6(s string) (netip.Addr, bool) {
	if !strings.Contains(s, ":") || strings.Contains(s, "%") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return netip.Addr{}, false
	}
	return a, true
}
