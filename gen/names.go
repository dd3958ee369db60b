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
// Names the rule gets wrong are rows of the override table in overrides.go.

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

// setGoName is the Go type name of an attribute set: its override, or its
// name without the -attrs suffix, by the rule.
func (t *nameTable) setGoName(name string) string {
	if n, ok := t.sets[name]; ok {
		return n
	}
	return goName(strings.TrimSuffix(name, "-attrs"))
}

// defGoName is the Go type name of a definition: its override, or its name
// without the nf-ct- prefix, by the rule.
func (t *nameTable) defGoName(name string) string {
	if n, ok := t.defs[name]; ok {
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

// entryGoName is the Go constant name of entry of definition def, whose Go
// type is typeName: its override, or typeName followed by the entry's name
// by the rule.
func (t *nameTable) entryGoName(def, typeName, entry string) string {
	if n, ok := t.entries[def+"/"+entry]; ok {
		return n
	}
	return typeName + goName(entry)
}

// opGoName is the Go name of the MsgType constant of operation op: its
// override, or Msg followed by its name by the rule.
func (t *nameTable) opGoName(op string) string {
	if n, ok := t.ops[op]; ok {
		return n
	}
	return "Msg" + goName(op)
}

// fieldGoName is the Go field name of attribute attr of set: its override,
// or its name without drop, the word every attribute of the set starts with.
func (t *nameTable) fieldGoName(set, attr, drop string) string {
	if n, ok := t.fields[set+"/"+attr]; ok {
		return n
	}
	if drop != "" {
		attr = strings.TrimPrefix(attr, drop+"-")
	}
	return goName(attr)
}
