package main

import (
	"fmt"
	"math/bits"
	"path/filepath"
	"strings"

	"github.com/ctspec/ctspec/internal/spec"
)

// The spec names some header content only implicitly. These tables say where
// to find it; they are the only conntrack knowledge headergen has.
var (
	// msgEnums are the enums of message types. An operation's value in the
	// spec is the full nlmsg_type, subsystem << 8 | message.
	msgEnums = []struct {
		enum   string
		subsys int64
		define string // the subsystem id's #define in nfnetlink.h
	}{
		{"cntl_msg_types", 1, "NFNL_SUBSYS_CTNETLINK"},
		{"ctnl_exp_msg_types", 2, "NFNL_SUBSYS_CTNETLINK_EXP"},
		{"ctnl_timeout_msg_types", 8, "NFNL_SUBSYS_CTNETLINK_TIMEOUT"},
		{"nfqnl_msg_types", 3, "NFNL_SUBSYS_QUEUE"},
	}

	// The multicast groups are the conntrack members of nfnetlink's enum,
	// compared only with a spec that has mcast-groups.
	groupsHeader = "linux/netfilter/nfnetlink.h"
	groupsEnum   = "nfnetlink_groups"
	groupsPrefix = "NFNLGRP_CONNTRACK_"
)

// index finds enums, enumerators and #defines by name across headers.
type index struct {
	enums   map[string]*Enum
	members map[string]*Enumerator
	defines map[string]*Define
	header  map[string]*Header // by path
}

func newIndex(hs []*Header) *index {
	x := &index{enums: map[string]*Enum{}, members: map[string]*Enumerator{}, defines: map[string]*Define{}, header: map[string]*Header{}}
	for _, h := range hs {
		x.header[h.File] = h
		for _, e := range h.Enums {
			if _, ok := x.enums[e.Name]; !ok && e.Name != "" {
				x.enums[e.Name] = e
			}
			for _, m := range e.Members {
				if _, ok := x.members[m.Name]; !ok {
					x.members[m.Name] = m
				}
			}
		}
		for _, d := range h.Defines {
			if _, ok := x.defines[d.Name]; !ok {
				x.defines[d.Name] = d
			}
		}
	}
	return x
}

// hName is a header name the spec should list.
type hName struct {
	name     string
	value    int64
	file     string
	line     int
	doc      string
	alias    string // the name this one is an alias of
	optional bool   // a sentinel: compared if the spec lists it, never missing
}

// sName is a spec entry with its kernel name.
type sName struct {
	cname string
	value int64
	line  int
	name  string
}

// pairing is one spec container matched with the header names it should list.
type pairing struct {
	label string // "set conntrack-attrs", "definition nf-ct-status", "operations"
	hdr   []hName
	spec  []sName
	hex   bool // print values in hex (flags and message types)

	// In a definition, a header alias may be left out when a name of the
	// same value is listed: the generator gives each value one name there.
	// Attribute sets list every alias.
	aliasesOptional bool

	set *spec.AttrSet
	def *spec.Definition
}

// pairings matches the spec against the headers. It also returns problems
// that belong to no pairing, and notes for -v.
func (in *input) pairings() (ps []*pairing, problems, notes []string) {
	p := &pairer{in: in, x: newIndex(in.headers), used: map[*Enum]bool{}}
	for _, d := range in.spec.Definitions {
		switch d.Type {
		case "const":
			p.constant(d)
		case "enum", "flags":
			p.enum(d)
		}
	}
	for _, set := range in.spec.AttributeSets {
		p.attrSet(set)
	}
	p.operations()
	p.mcastGroups()
	p.unused()
	return p.ps, p.problems, p.notes
}

// pairer collects the pairings of an input, the problems that belong to
// none, and notes for -v.
type pairer struct {
	in              *input
	x               *index
	used            map[*Enum]bool // the enums some pairing took
	ps              []*pairing
	problems, notes []string
}

// note adds a note about the spec's line.
func (p *pairer) note(line int, format string, args ...any) {
	p.notes = append(p.notes, fmt.Sprintf("%s:%d: ", p.in.specPath, line)+fmt.Sprintf(format, args...))
}

// constant pairs a const definition with its enum member or #define.
func (p *pairer) constant(d *spec.Definition) {
	v, ok := d.Value.(int)
	if !ok {
		return
	}
	pr := &pairing{label: "definition " + d.Name, def: d}
	pr.spec = []sName{{cname: d.CConstName(), value: int64(v), line: d.Line, name: d.Name}}
	if m := p.x.members[d.CConstName()]; m != nil && m.Known {
		pr.hdr = []hName{{name: m.Name, value: m.Value, file: m.file, line: m.Line}}
	} else if df := p.x.defines[d.CConstName()]; df != nil {
		pr.hdr = []hName{{name: df.Name, value: df.Value, file: df.file, line: df.Line}}
	} else {
		p.note(d.Line, "definition %s: %s is not in the headers", d.Name, d.CConstName())
		return
	}
	p.ps = append(p.ps, pr)
}

// enum pairs an enum or flags definition with its C enum or #defines.
func (p *pairer) enum(d *spec.Definition) {
	pr := &pairing{label: "definition " + d.Name, def: d, aliasesOptional: true, hex: d.Type == "flags"}
	for _, e := range d.Entries {
		pr.spec = append(pr.spec, sName{cname: d.CName(e), value: int64(e.Num), line: e.Line, name: e.Name})
	}
	if e := p.x.enums[d.CEnumName()]; e != nil && d.CEnumName() != "" {
		p.used[e] = true
		if d.Type == "flags" {
			pr.hdr = flagNames(e)
		} else {
			pr.hdr = enumNames(e, false)
		}
	} else if h := p.x.header[filepath.Join(p.in.include, d.Header)]; h != nil && d.Header != "" {
		pr.hdr = defineNames(h, d, pr.spec, otherPrefixes(p.in.spec, d))
	}
	if len(pr.hdr) == 0 {
		what := "no enum " + d.CEnumName()
		if d.CEnumName() == "" {
			what = "no #defines " + spec.CIdent(d.NamePrefix) + "*"
		}
		if d.Header == "" {
			what += " (no header: given)"
		}
		p.note(d.Line, "definition %s: %s in the headers", d.Name, what)
		return
	}
	p.ps = append(p.ps, pr)
}

// attrSet pairs an attribute set with its C enum.
func (p *pairer) attrSet(set *spec.AttrSet) {
	cen := set.CEnumName()
	e := p.x.enums[cen]
	if cen == "" || e == nil {
		if cen == "" {
			cen = "(no enum-name)"
		}
		p.note(set.Line, "set %s: no enum %s in the headers", set.Name, cen)
		return
	}
	p.used[e] = true
	pr := &pairing{label: "set " + set.Name, set: set, hdr: enumNames(e, true)}
	for _, a := range set.Attributes {
		pr.spec = append(pr.spec, sName{cname: set.CName(a), value: int64(a.Num), line: a.Line, name: a.Name})
	}
	p.ps = append(p.ps, pr)
}

// operations pairs the spec's operations with the message enums of the
// subsystems they use.
func (p *pairer) operations() {
	s := p.in.spec
	ops := &pairing{label: "operations", hex: true}
	subsystems := map[int64]bool{}
	if s.Operations != nil {
		for _, op := range s.Operations.List {
			subsystems[int64(op.MsgType())>>8] = true
		}
	}
	for _, me := range msgEnums {
		e := p.x.enums[me.enum]
		if e == nil || !subsystems[me.subsys] {
			continue
		}
		p.used[e] = true
		if d := p.x.defines[me.define]; d != nil && d.Value != me.subsys {
			p.problems = append(p.problems, fmt.Sprintf("%s:%d: %s = %d: headergen's table says %d; update msgEnums", d.file, d.Line, d.Name, d.Value, me.subsys))
		}
		for _, h := range enumNames(e, false) {
			h.value |= me.subsys << 8
			ops.hdr = append(ops.hdr, h)
		}
	}
	if s.Operations != nil {
		for _, op := range s.Operations.List {
			ops.spec = append(ops.spec, sName{cname: s.Operations.CName(op), value: int64(op.MsgType()), line: op.Line, name: op.Name})
		}
	}
	if len(ops.hdr) > 0 {
		p.ps = append(p.ps, ops)
	}
}

// mcastGroups pairs the spec's multicast groups with the groups enum.
func (p *pairer) mcastGroups() {
	s := p.in.spec
	e := p.x.enums[groupsEnum]
	if e == nil || s.McastGroups == nil {
		return
	}
	groups := &pairing{label: "mcast-groups"}
	for _, h := range enumNames(e, false) {
		if strings.HasPrefix(h.name, groupsPrefix) {
			groups.hdr = append(groups.hdr, h)
		}
	}
	for _, g := range s.McastGroups.List {
		v := int64(-1)
		if g.Value != nil {
			v = int64(*g.Value)
		}
		groups.spec = append(groups.spec, sName{cname: g.CName(), value: v, line: g.Line, name: g.Name})
	}
	p.ps = append(p.ps, groups)
}

// unused reports the enums of the subsystem's UAPI header that no set or
// definition took.
func (p *pairer) unused() {
	h := p.in.uapiHeader()
	if h == nil {
		return
	}
	for _, e := range h.Enums {
		if !p.used[e] && e.Name != "" {
			p.problems = append(p.problems, fmt.Sprintf("%s:%d: enum %s: no spec set or definition has enum-name %s", h.File, e.Line, e.Name, strings.ReplaceAll(e.Name, "_", "-")))
		}
	}
}

// enumNames lists the members of e. Sentinels are optional; in an attribute
// set, value 0 (CTA_UNSPEC) is left out because attributes start at 1.
func enumNames(e *Enum, attrs bool) []hName {
	var out []hName
	for _, m := range e.Members {
		if !m.Known || attrs && m.Value == 0 {
			continue
		}
		out = append(out, hName{name: m.Name, value: m.Value, file: m.file, line: m.Line, doc: m.Doc, alias: m.AliasOf, optional: m.Sentinel})
	}
	return out
}

// flagNames lists the flags of a bit-flag enum such as ip_conntrack_status:
// members whose value is a single bit. IPS_X_BIT = n gives the position of
// IPS_X and is skipped when IPS_X is there; alone, it stands for IPS_X.
// Masks of several bits and sentinels are left out.
func flagNames(e *Enum) []hName {
	byName := map[string]*Enumerator{}
	for _, m := range e.Members {
		byName[m.Name] = m
	}
	var out []hName
	for _, m := range e.Members {
		if !m.Known || m.Sentinel {
			continue
		}
		h := hName{name: m.Name, value: m.Value, file: m.file, line: m.Line, doc: m.Doc, alias: m.AliasOf}
		if base, ok := strings.CutSuffix(m.Name, "_BIT"); ok {
			if byName[base] != nil || m.Value < 0 || m.Value > 63 {
				continue
			}
			h.name, h.value = base, 1<<m.Value
			h.alias, _ = strings.CutSuffix(m.AliasOf, "_BIT")
		}
		if h.value <= 0 || bits.OnesCount64(uint64(h.value)) != 1 {
			continue
		}
		if h.doc == "" {
			if b := byName[m.Name+"_BIT"]; b != nil {
				h.doc = b.Doc
			}
		}
		out = append(out, h)
	}
	return out
}

// defineNames lists the #defines of header h that belong to definition d:
// every #define the spec names, and every #define in the same run (a block of
// #defines with only comments between them) as one that starts with the
// definition's C prefix or that the spec names, except those that start with
// the C prefix of another definition (others), which belong to it. A flags
// definition skips masks of several bits, and its PREFIX_MAX, the bound
// above its last flag (NFQA_CFG_F_MAX), is optional.
func defineNames(h *Header, d *spec.Definition, entries []sName, others []string) []hName {
	named := map[string]bool{}
	for _, e := range entries {
		named[e.cname] = true
	}
	prefix := spec.CIdent(d.NamePrefix)
	runs := map[int]bool{}
	for _, df := range h.Defines {
		if named[df.Name] || prefix != "" && strings.HasPrefix(df.Name, prefix) {
			runs[df.Run] = true
		}
	}
	var out []hName
	for _, df := range h.Defines {
		if df.Sentinel || !runs[df.Run] && !named[df.Name] {
			continue
		}
		if !named[df.Name] && !(prefix != "" && strings.HasPrefix(df.Name, prefix)) && hasAnyPrefix(df.Name, others) {
			continue
		}
		if d.Type == "flags" && (df.Value <= 0 || bits.OnesCount64(uint64(df.Value)) != 1) {
			continue
		}
		bound := d.Type == "flags" && prefix != "" && df.Name == prefix+"MAX"
		out = append(out, hName{name: df.Name, value: df.Value, file: df.file, line: df.Line, doc: df.Doc, optional: bound})
	}
	return out
}

// otherPrefixes returns the C prefixes of the enum and flags definitions of
// s other than d.
func otherPrefixes(s *spec.Spec, d *spec.Definition) []string {
	var out []string
	for _, o := range s.Definitions {
		if o != d && (o.Type == "enum" || o.Type == "flags") && o.NamePrefix != "" {
			out = append(out, spec.CIdent(o.NamePrefix))
		}
	}
	return out
}

func hasAnyPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Differences.

type findingKind uint8

const (
	missing findingKind = iota
	wrongValue
	wrongName
)

// finding is one header name the spec does not agree with.
type finding struct {
	kind findingKind
	h    hName
	s    sName // the spec entry, for wrongValue and wrongName
	p    *pairing
}

func (p *pairing) fmtValue(v int64) string {
	if p.hex && v >= 0 {
		return fmt.Sprintf("%#x", v)
	}
	return fmt.Sprint(v)
}

func (f finding) String() string {
	head := fmt.Sprintf("%s:%d: %s = %s: ", f.h.file, f.h.line, f.h.name, f.p.fmtValue(f.h.value))
	switch f.kind {
	case wrongValue:
		return head + fmt.Sprintf("spec says value %s (%s, line %d)", f.p.fmtValue(f.s.value), f.p.label, f.s.line)
	case wrongName:
		return head + fmt.Sprintf("spec says name %s (%s, line %d)", f.s.cname, f.p.label, f.s.line)
	}
	return head + "missing from spec " + f.p.label
}

// compare returns the header names the spec lacks or disagrees with, and the
// spec entries that are not in the headers.
func (p *pairing) compare() (fs []finding, extra []sName) {
	byName := map[string]sName{}
	for _, s := range p.spec {
		if _, ok := byName[s.cname]; !ok {
			byName[s.cname] = s
		}
	}
	inHeader := map[string]bool{}
	for _, h := range p.hdr {
		inHeader[h.name] = true
	}
	claimed := map[string]bool{}
	for _, h := range p.hdr {
		if s, ok := byName[h.name]; ok {
			if s.value != h.value {
				fs = append(fs, finding{kind: wrongValue, h: h, s: s, p: p})
			}
			continue
		}
		if h.optional || p.aliasesOptional && p.aliasListed(h, byName) {
			continue
		}
		f := finding{kind: missing, h: h, p: p}
		for _, s := range p.spec {
			if s.value == h.value && !inHeader[s.cname] && !claimed[s.cname] {
				f.kind, f.s = wrongName, s
				claimed[s.cname] = true
				break
			}
		}
		fs = append(fs, f)
	}
	for _, s := range p.spec {
		if !inHeader[s.cname] && !claimed[s.cname] {
			extra = append(extra, s)
		}
	}
	return fs, extra
}

// aliasListed reports whether the spec lists, with the same value, another
// name of h's alias group: its target, or another alias of that target.
func (p *pairing) aliasListed(h hName, byName map[string]sName) bool {
	root := h.name
	if h.alias != "" {
		root = h.alias
	}
	for _, o := range p.hdr {
		if o.name == h.name || o.name != root && o.alias != root {
			continue
		}
		if s, ok := byName[o.name]; ok && s.value == h.value {
			return true
		}
	}
	return false
}
