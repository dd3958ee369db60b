// Package clib holds the C library's lenient parsers that conntrack(8)
// relies on, written in Go so that ctspec accepts exactly what conntrack
// accepts: strtoul(3) and atoi(3) ("--sport 80x" is port 80), inet_aton(3)
// ("-s 10.1" is 10.0.0.1), inet_pton(3) for IPv6, getprotobyname(3), and
// GNU getopt_long(3) with abbreviated long options.
//
// Each function follows the glibc behaviour, including the corners that
// strconv and net/netip reject: leading white space, signs on unsigned
// numbers, saturation on overflow and octal or hex address parts.
package clib
