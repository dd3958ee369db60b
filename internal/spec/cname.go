package spec

import "strings"

// The kernel (C) name of an entry is derived from the spec by one rule: the
// name prefix of its set, enum or section followed by its own name, upper
// case, dashes turned into underscores. A few kernel names do not follow that
// rule, because the kernel's own spec chose attribute names that differ from
// the C enum; they are listed here, keyed by kind, container and name.
var cNameExceptions = map[string]string{
	"attr:counter-attrs/packets-old":           "CTA_COUNTERS32_PACKETS",
	"attr:counter-attrs/bytes-old":             "CTA_COUNTERS32_BYTES",
	"attr:protoinfo-sctp-attrs/sctp-state":     "CTA_PROTOINFO_SCTP_STATE",
	"entry:nf-ct-tcp-flags/challenge-ack":      "IP_CT_EXP_CHALLENGE_ACK",
	"entry:nf-ct-tcp-flags/simultaneous-open":  "IP_CT_TCP_SIMULTANEOUS_OPEN",
	"entry:nf-ct-tcp-flags/unacked":            "IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED",
	"entry:nf-ct-tcp-flags/maxack":             "IP_CT_TCP_FLAG_MAXACK_SET",
	"entry:nf-ct-sctp-state/shutdown-received": "SCTP_CONNTRACK_SHUTDOWN_RECD",
	"entry:nf-ct-status/seq-adj":               "IPS_SEQ_ADJUST",
	"entry:nf-ct-status/nat-clash":             "IPS_UNTRACKED",
	"op:get-stats":                             "IPCTNL_MSG_CT_GET_STATS_CPU",
	"op:get-stats-global":                      "IPCTNL_MSG_CT_GET_STATS",
	"op:exp-new":                               "IPCTNL_MSG_EXP_NEW",
	"op:exp-get":                               "IPCTNL_MSG_EXP_GET",
	"op:exp-delete":                            "IPCTNL_MSG_EXP_DELETE",
	"op:exp-get-stats-cpu":                     "IPCTNL_MSG_EXP_GET_STATS_CPU",
}

// CIdent turns a kebab-case spec name into a C identifier in upper case.
func CIdent(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// CName returns the kernel name of attribute a of set.
func (set *AttrSet) CName(a *Attribute) string {
	if n, ok := cNameExceptions["attr:"+set.Name+"/"+a.Name]; ok {
		return n
	}
	return CIdent(set.NamePrefix + a.Name)
}

// CEnumName returns the kernel name of the set's enum, or "" when unnamed.
func (set *AttrSet) CEnumName() string {
	if set.EnumName == nil {
		return ""
	}
	return strings.ToLower(CIdent(*set.EnumName))
}

// CName returns the kernel name of entry e of definition d.
func (d *Definition) CName(e *Entry) string {
	if n, ok := cNameExceptions["entry:"+d.Name+"/"+e.Name]; ok {
		return n
	}
	return CIdent(d.NamePrefix + e.Name)
}

// CConstName returns the kernel name of a const definition.
func (d *Definition) CConstName() string {
	if n, ok := cNameExceptions["const:"+d.Name]; ok {
		return n
	}
	return CIdent(d.NamePrefix + d.Name)
}

// CEnumName returns the kernel name of the definition's enum, or "".
func (d *Definition) CEnumName() string {
	if d.EnumName == nil {
		return ""
	}
	return strings.ToLower(CIdent(*d.EnumName))
}

// CName returns the kernel name of operation op.
func (ops *Operations) CName(op *Operation) string {
	if n, ok := cNameExceptions["op:"+op.Name]; ok {
		return n
	}
	return CIdent(ops.NamePrefix + op.Name)
}

// CName returns the kernel name of multicast group g.
func (g *McastGroup) CName() string {
	if g.CDefineName != "" {
		return CIdent(g.CDefineName)
	}
	return CIdent(g.Name)
}
