package main

import (
	"math"
	"net/netip"
	"strings"

	"github.com/ctspec/ctspec/internal/clib"
)

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
	if a, ok := clib.InetAton(s); ok {
		if mask > 32 {
			mask = invalidMask
		}
		return a, mask
	}
	if a, ok := clib.InetPton6(s); ok {
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
	for i < len(m) && clib.IsSpace(m[i]) {
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
