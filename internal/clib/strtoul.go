package clib

import "math"

// Strtoul parses an unsigned number the way strtoul(3) does with base 0
// (or base 10): leading white space, an optional sign, then "0x" for hex
// and "0" for octal. It returns the value (saturated at MaxUint64), the
// unparsed rest, and whether any digit was read.
func Strtoul(s string, base int) (uint64, string, bool) {
	i := 0
	for i < len(s) && IsSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if base == 0 {
		switch {
		case i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && i+2 < len(s) && isHex(s[i+2]):
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

// Atoi is atoi(3) as glibc implements it, strtol(3) in base 10: leading
// white space, an optional sign, then a decimal prefix; 0 when there is
// none, saturated at MaxInt64. Callers truncate the result to the width
// of the C type it is stored in, as C's conversion does.
func Atoi(s string) int64 {
	i := 0
	for i < len(s) && IsSpace(s[i]) {
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

// IsSpace reports whether c is white space in the C locale, as isspace(3).
func IsSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// isHex reports whether c is a hex digit, as isxdigit(3).
func isHex(c byte) bool {
	d := hexDigit(c)
	return d >= 0 && d < 16
}

// hexDigit is the value of c as a digit of any base up to 36, or -1.
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
