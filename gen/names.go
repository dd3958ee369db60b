package main

import (
	"strings"
	"unicode"
)

// Go names come from spec names by one rule: split the kebab-case name on
// dashes, spell each word as the words table says or else capitalise it, and
// join the words. "ip" followed by "v4" or "v6" becomes one word, IPv4 or
// IPv6. So ip-v4-src becomes IPv4Src and icmpv6-id becomes ICMPv6ID.
//
// Within a set, when every attribute name starts with the same word (the
// tuple-ip-attrs set names all its attributes ip-...), field names drop that
// word: TupleIP.V4Src rather than TupleIP.IPV4Src.
//
// Names the rule gets wrong are listed in goNameOverrides.

// words spells initialisms and compound words.
var words = map[string]string{
	"id":        "ID",
	"ip":        "IP",
	"ipv4":      "IPv4",
	"ipv6":      "IPv6",
	"tcp":       "TCP",
	"udp":       "UDP",
	"icmp":      "ICMP",
	"icmpv6":    "ICMPv6",
	"sctp":      "SCTP",
	"dccp":      "DCCP",
	"gre":       "GRE",
	"nat":       "NAT",
	"cpu":       "CPU",
	"nfnl":      "NFNL",
	"ctnetlink": "CTNetlink",
	"protoinfo": "ProtoInfo",
	"protonat":  "ProtoNAT",
	"seqadj":    "SeqAdj",
	"secctx":    "SecCtx",
	"synproxy":  "SynProxy",
	"ctrzero":   "CtrZero",
	"minip":     "MinIP",
	"maxip":     "MaxIP",
	"wscale":    "WScale",
	"vtag":      "VTag",
	"tsoff":     "TSOff",
	"isn":       "ISN",
	"its":       "ITS",
	"fn":        "Fn",
	"toolong":   "TooLong",
	"hw":        "HW",
	"ack":       "ACK",
	"sack":      "SACK",
	"perm":      "Perm",
	"tstamp":    "Timestamp",
	"nfgenmsg":  "NFGenMsg",
	"v4":        "V4",
	"v6":        "V6",
}

// goNameOverrides maps a qualified spec name to its Go name where the rule
// does not give the name Go readers expect. Keys: "set:NAME" for the Go type
// of an attribute set, "def:NAME" for a definition's Go type,
// "field:SET/ATTR" for a struct field, "const:NAME" for a const definition,
// "entry:DEF/NAME" for an enum or flags entry (the whole constant name),
// "op:NAME" for an operation's MsgType constant.
var goNameOverrides = map[string]string{
	"set:conntrack-attrs":       "Flow",
	"set:counter-attrs":         "Counters",
	"set:conntrack-stats-attrs": "StatsCPU",
	"set:expect-stats-attrs":    "ExpectStatsCPU",
	"def:ip-conntrack-dir":      "Direction",
	// The SCTP set names only its state after its protocol.
	"field:protoinfo-sctp-attrs/sctp-state": "State",
	// The spec uses the names of the kernel's own conntrack.yaml; these Go
	// names keep the kernel header's spelling they had before.
	"entry:nf-ct-tcp-flags/unacked":            "TCPFlagsDataUnacknowledged",
	"entry:nf-ct-tcp-flags/maxack":             "TCPFlagsMaxackSet",
	"entry:nf-ct-sctp-state/shutdown-received": "SCTPStateShutdownRecd",
	"entry:nf-ct-status/seq-adj":               "StatusSeqAdjust",
	"entry:nf-ct-status/nat-clash":             "StatusUntracked",
	"op:get-stats":                             "MsgGetStatsCPU",
	"op:get-stats-global":                      "MsgGetStats",
}

// pointerNests lists, as "SET/ATTR", the nests held behind a pointer rather
// than by value. They are large nests the kernel sends rarely or never in a
// dump (request-only, or tied to a helper, NAT sequence adjustment or
// SELinux): by value they would make every decoded flow, and so every slice of
// a large table, twice as large for nothing. A nest the kernel sends for
// common flows stays a value, because a pointer costs an allocation per
// decode: synproxy is sent for every flow created over ctnetlink.
var pointerNests = map[string]bool{
	"conntrack-attrs/help":          true,
	"conntrack-attrs/nat-src":       true,
	"conntrack-attrs/nat-dst":       true,
	"conntrack-attrs/tuple-master":  true,
	"conntrack-attrs/seq-adj-orig":  true,
	"conntrack-attrs/seq-adj-reply": true,
	"conntrack-attrs/secctx":        true,
	"conntrack-attrs/filter":        true,
	// The golden case gen/testdata/basic.
	"outer-attrs/spare": true,
}

// goName applies the rule to a kebab-case name.
func goName(s string) string {
	parts := strings.Split(s, "-")
	var b strings.Builder
	for i := 0; i < len(parts); i++ {
		p := strings.ToLower(parts[i])
		if p == "" {
			continue
		}
		if p == "ip" && i+1 < len(parts) && (parts[i+1] == "v4" || parts[i+1] == "v6") {
			b.WriteString("IP" + parts[i+1])
			i++
			continue
		}
		if w, ok := words[p]; ok {
			b.WriteString(w)
			continue
		}
		r := []rune(p)
		r[0] = unicode.ToUpper(r[0])
		b.WriteString(string(r))
	}
	return b.String()
}

// setGoName is the Go type name of an attribute set: its name without the
// -attrs suffix, by the rule.
func setGoName(name string) string {
	if n, ok := goNameOverrides["set:"+name]; ok {
		return n
	}
	return goName(strings.TrimSuffix(name, "-attrs"))
}

// defGoName is the Go type name of a definition: its name without the nf-ct-
// prefix, by the rule.
func defGoName(name string) string {
	if n, ok := goNameOverrides["def:"+name]; ok {
		return n
	}
	return goName(strings.TrimPrefix(name, "nf-ct-"))
}

// commonWord returns the first word shared by every name, or "" if there is
// none or if dropping it would leave an empty name or a name starting with a digit.
func commonWord(names []string) string {
	if len(names) < 2 {
		return ""
	}
	var w string
	for i, n := range names {
		first, rest, ok := strings.Cut(n, "-")
		if !ok || rest == "" || unicode.IsDigit(rune(rest[0])) {
			return ""
		}
		if i == 0 {
			w = first
		} else if first != w {
			return ""
		}
	}
	return w
}

// entryGoName is the Go constant name of entry of the definition def, whose
// Go type is typeName.
func entryGoName(def, typeName, entry string) string {
	if n, ok := goNameOverrides["entry:"+def+"/"+entry]; ok {
		return n
	}
	return typeName + goName(entry)
}

// opGoName is the Go name of an operation's MsgType constant.
func opGoName(name string) string {
	if n, ok := goNameOverrides["op:"+name]; ok {
		return n
	}
	return "Msg" + goName(name)
}

// fieldGoName is the Go field name of an attribute.
func fieldGoName(set, attr, drop string) string {
	if n, ok := goNameOverrides["field:"+set+"/"+attr]; ok {
		return n
	}
	if drop != "" {
		attr = strings.TrimPrefix(attr, drop+"-")
	}
	return goName(attr)
}
