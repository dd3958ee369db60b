package main

import (
	"bufio"
	"math"
	"net/netip"
	"os"
	"strings"
)

// This file holds the C library's lenient number and address parsers that
// conntrack uses, so that ctspec accepts exactly what conntrack accepts:
// "--sport 80x" is port 80, "-s 10.1" is 10.0.0.1 and "-m 0x10/0xff" is a
// mark with a mask.

// strtoul parses an unsigned number the way strtoul(3) does with base 0
// (or base 10): leading white space, an optional sign, then "0x" for hex
// and "0" for octal. It returns the value (saturated at MaxUint64), the
// unparsed rest, and whether any digit was read.
func strtoul(s string, base int) (uint64, string, bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if base == 0 {
		switch {
		case i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && i+2 < len(s) && hexDigit(s[i+2]) >= 0:
			base = 16
			i += 2
		case i < len(s) && s[i] == '0':
			base = 8
		default:
			base = 10
		}
	}
	start := i
	var v uint64
	over := false
	for i < len(s) {
		d := hexDigit(s[i])
		if d < 0 || d >= base {
			break
		}
		if v > (math.MaxUint64-uint64(d))/uint64(base) {
			over = true
		}
		v = v*uint64(base) + uint64(d)
		i++
	}
	if i == start {
		return 0, s, false
	}
	if over {
		v = math.MaxUint64
	} else if neg {
		v = -v
	}
	return v, s[i:], true
}

// atoi is atoi(3): a decimal prefix, 0 when there is none, truncated to
// int the way the C library's long-to-int conversion does.
func atoi(s string) int64 {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var v int64
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if v < math.MaxInt64/10 {
			v = v*10 + int64(s[i]-'0')
		} else {
			v = math.MaxInt64
		}
	}
	if neg {
		v = -v
	}
	return v
}

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return -1
}

// inetAton parses an IPv4 address the way inet_aton(3) does: one to four
// parts in decimal, octal or hex, the last part filling the remaining
// bytes ("10.1" is 10.0.0.1, "0x7f.1" is 127.0.0.1).
func inetAton(s string) (netip.Addr, bool) {
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
		if rest == "" || isCSpace(rest[0]) {
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

// inetPton6 parses an IPv6 address as inet_pton(AF_INET6) does; IPv4-mapped
// forms stay IPv6.
func inetPton6(s string) (netip.Addr, bool) {
	if !strings.Contains(s, ":") || strings.Contains(s, "%") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return netip.Addr{}, false
	}
	return a, true
}

// Results of parseAddr for the netmask.
const (
	noMask      = -1
	invalidMask = -2
)

// parseAddr parses an address with an optional "/bits" suffix as
// conntrack's parse_addr does. mask is noMask without a suffix and
// invalidMask for a bad one. The address is not valid for bad input.
func parseAddr(s string, withMask bool) (addr netip.Addr, mask int) {
	// conntrack copies the argument into a buffer of INET6_ADDRSTRLEN.
	if len(s) > 45 {
		s = s[:45]
	}
	mask = noMask
	if withMask {
		if a, m, ok := strings.Cut(s, "/"); ok {
			s = a
			mask = strtolMask(m)
		}
	}
	if a, ok := inetAton(s); ok {
		if mask > 32 {
			mask = invalidMask
		}
		return a, mask
	}
	if a, ok := inetPton6(s); ok {
		if mask > 128 {
			mask = invalidMask
		}
		return a, mask
	}
	return netip.Addr{}, mask
}

// strtolMask is conntrack's netmask check: strtol(3) in base 10 must use
// up the whole suffix and give a value of 0 or more. An empty suffix is 0,
// as strtol consumes nothing and so ends where the string ends.
func strtolMask(m string) int {
	i := 0
	for i < len(m) && isCSpace(m[i]) {
		i++
	}
	neg := false
	if i < len(m) && (m[i] == '+' || m[i] == '-') {
		neg = m[i] == '-'
		i++
	}
	start := i
	var v int64
	for ; i < len(m) && m[i] >= '0' && m[i] <= '9'; i++ {
		if v < math.MaxInt32 {
			v = v*10 + int64(m[i]-'0')
		}
	}
	if i == start {
		// No digits: strtol leaves the end pointer at the start.
		if m == "" {
			return 0
		}
		return invalidMask
	}
	if i != len(m) || neg && v != 0 || v > math.MaxInt32 {
		return invalidMask
	}
	return int(v)
}

// protoByName looks a protocol name or alias up in /etc/protocols, as
// getprotobyname(3) does.
func protoByName(name string) (int, bool) {
	f, err := os.Open("/etc/protocols")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		match := fields[0] == name
		for _, alias := range fields[2:] {
			match = match || alias == name
		}
		if match {
			v, rest, ok := strtoul(fields[1], 10)
			if ok && rest == "" && v <= 255 {
				return int(v), true
			}
		}
	}
	return 0, false
}
