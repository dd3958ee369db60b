package main

import (
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/clib"
)

// parseParameter parses a comma-separated list of names, each of which may
// be abbreviated and is matched without regard to case, into bits, as
// conntrack's parse_parameter does for -o, -e and -u.
type paramName struct {
	name string
	bits uint32
}

var (
	statusParams = []paramName{{"ASSURED", uint32(ctnetlink.StatusAssured)}, {"SEEN_REPLY", uint32(ctnetlink.StatusSeenReply)}, {"UNSET", 0},
		{"FIXED_TIMEOUT", uint32(ctnetlink.StatusFixedTimeout)}, {"EXPECTED", uint32(ctnetlink.StatusExpected)},
		{"OFFLOAD", uint32(ctnetlink.StatusOffload)}, {"HW_OFFLOAD", uint32(ctnetlink.StatusHWOffload)}}
	eventParams  = []paramName{{"ALL", evAll}, {"NEW", evNew}, {"UPDATES", evUpdate}, {"DESTROY", evDestroy}}
	outputParams = []paramName{{"xml", outXML}, {"extended", outExtended}, {"timestamp", outTimestamp}, {"id", outID},
		{"ktimestamp", outKTimestamp}, {"labels", outLabels}, {"userspace", outUserspace}, {"save", outSave}, {"json", outJSON}}
)

// matchParam matches one word as conntrack's do_parse_parameter: a
// case-insensitive prefix of a name. SRC_NAT and DST_NAT, which older
// versions accepted for -u, are recognised first and ignored with a
// warning, and so is any prefix of them.
func matchParam(word string, params []paramName, warn func(string)) (uint32, bool) {
	hasPrefix := func(name string) bool {
		return len(word) <= len(name) && strings.EqualFold(word, name[:len(word)])
	}
	if hasPrefix("SRC_NAT") {
		warn("WARNING: ignoring SRC_NAT, use --src-nat instead\n")
		return 0, true
	}
	if hasPrefix("DST_NAT") {
		warn("WARNING: ignoring DST_NAT, use --dst-nat instead\n")
		return 0, true
	}
	for _, p := range params {
		if hasPrefix(p.name) {
			return p.bits, true
		}
	}
	return 0, false
}

func parseParams(arg string, params []paramName, warn func(string)) (uint32, error) {
	var v uint32
	for rest := arg; ; {
		word, tail, more := strings.Cut(rest, ",")
		if word == "" {
			return 0, paramError("Bad parameter `%s'", rest)
		}
		b, ok := matchParam(word, params, warn)
		if !ok {
			return 0, paramError("Bad parameter `%s'", rest)
		}
		v |= b
		if !more {
			return v, nil
		}
		rest = tail
	}
}

// parseStatus parses -u: names, "!NAME" for a bit that must be clear, and
// UNREPLIED for SEEN_REPLY clear. It returns the value and the mask.
func parseStatus(arg string, warn func(string)) (value, mask uint32, err error) {
	for rest := arg; ; {
		word, tail, more := strings.Cut(rest, ",")
		bad := rest
		neg := strings.HasPrefix(word, "!")
		if neg {
			word = word[1:]
			bad = rest[1:]
		}
		if word == "" && (more || neg) {
			return 0, 0, paramError("Bad parameter `%s'", bad)
		}
		switch {
		case !neg && strings.HasPrefix(word, "UNREPLIED"):
			mask |= uint32(ctnetlink.StatusSeenReply)
		default:
			b, ok := matchParam(word, statusParams, warn)
			if word == "" || !ok {
				return 0, 0, paramError("Bad parameter `%s'", bad)
			}
			if neg {
				mask |= b
			} else {
				value |= b
			}
		}
		if !more {
			break
		}
		rest = tail
	}
	if mask == 0 {
		mask = value
	} else {
		mask |= value
	}
	return value, mask, nil
}

// splitNATArg splits "ADDR", "ADDR:PORT" or "[IPV6]:PORT" as conntrack's
// split_address_and_port does.
func splitNATArg(arg string) (addr, port string, hasPort bool, err error) {
	if i := strings.IndexByte(arg, '['); i >= 0 {
		start := arg[i+1:]
		end := strings.IndexByte(start, ']')
		switch {
		case end == 0:
			return "", "", false, paramError("No IPv6 address specified")
		case end < 0:
			return "", "", false, paramError("No closing ']' around IPv6 address")
		}
		if j := strings.IndexByte(start[end:], ':'); j >= 0 {
			addr = start[:end]
			port, hasPort = start[end+j+1:], true
		} else {
			return arg, "", false, nil
		}
	} else if i := strings.IndexByte(arg, ':'); i >= 0 && !strings.Contains(arg[i+1:], ":") {
		addr, port, hasPort = arg[:i], arg[i+1:], true
	} else {
		return arg, "", false, nil
	}
	if port == "" {
		return "", "", false, paramError("No port specified after `:'")
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", "", false, paramError("Invalid port `%s'", port)
		}
	}
	if v, _, _ := clib.Strtoul(port, 10); v > 65535 || len(port) > 6 {
		return "", "", false, paramError("Invalid port `%s'", port)
	}
	return addr, port, true, nil
}

// checkOpts checks the options given against a row of a table, as
// conntrack's generic_opt_check: the first needed option missing or
// illegal option given, in option order, is the error; then, where the row
// says 3, one of the pairs must be complete.
func checkOpts(given uint32, row []byte, names []string, pairs []uint32, pairMsg []string) error {
	special := false
	for i, v := range row {
		if given&(1<<i) == 0 {
			if v == 1 {
				return paramError("You need to supply the `--%s' option for this command", names[i])
			}
		} else if v == 0 {
			return paramError("Illegal option `--%s' with this command", names[i])
		}
		if v == 3 {
			special = true
		}
	}
	if !special || len(pairs) == 0 {
		return nil
	}
	partial := -1
	for i, p := range pairs {
		if given&p == p {
			return nil
		}
		if given&p != 0 && partial < 0 {
			partial = i
		}
	}
	if partial < 0 {
		partial = 0
	}
	return paramError("%s", pairMsg[partial])
}

// parseMark parses -m VALUE[/MASK] with strtoul, as conntrack 1.4.7 does:
// trailing junk is ignored. Without a mask all bits count.
func parseMark(arg string) (value, mask uint32) {
	v, rest, _ := clib.Strtoul(arg, 0)
	value, mask = uint32(v), ^uint32(0)
	if strings.HasPrefix(rest, "/") {
		m, _, _ := clib.Strtoul(rest[1:], 0)
		mask = uint32(m)
	}
	return value, mask
}

func prefixMask(fam uint8, bits int) netip.Addr {
	if fam == unix.AF_INET {
		var b [4]byte
		for i := range b {
			switch {
			case bits >= 8:
				b[i] = 0xff
				bits -= 8
			case bits > 0:
				b[i] = byte(0xff << (8 - bits))
				bits = 0
			}
		}
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	for i := range b {
		switch {
		case bits >= 8:
			b[i] = 0xff
			bits -= 8
		case bits > 0:
			b[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return netip.AddrFrom16(b)
}

// setTupleSrc and setTupleDst set an address in the attribute of its
// family; an IPv4-mapped IPv6 address stays IPv6, as in conntrack.
func setTupleSrc(t *ctnetlink.Tuple, a netip.Addr) {
	if a.Is4() {
		t.IP.SetV4Src(a)
	} else {
		t.IP.SetV6Src(a)
	}
}

func setTupleDst(t *ctnetlink.Tuple, a netip.Addr) {
	if a.Is4() {
		t.IP.SetV4Dst(a)
	} else {
		t.IP.SetV6Dst(a)
	}
}
