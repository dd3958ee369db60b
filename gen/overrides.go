package main

import (
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/ctspec/ctspec/internal/spec"
)

// overrides is the one table of generator settings the spec cannot carry,
// because the netlink-raw schema forbids extra keys: Go names that the rule in
// names.go gets wrong, and the nests held behind a pointer. Each row names
// the spec it applies to (its name: key) and a set, attribute or definition of
// it; a row that names something the spec lacks is an error that gives the
// row's line here and, where there is one, the spec line it was checked
// against.
//
// Pointer nests are nests the kernel sends rarely or never in a dump
// (request-only, or tied to a helper, NAT sequence adjustment or SELinux): by
// value they would make every decoded flow, and so every slice of a large
// table, twice as large for nothing. A nest the kernel sends for common flows
// stays a value, because a pointer costs an allocation per decode: synproxy
// is sent for every flow created over ctnetlink.
var overrides = []override{
	setName("conntrack", "conntrack-attrs", "Flow"),
	setName("conntrack", "counter-attrs", "Counters"),
	setName("conntrack", "conntrack-stats-attrs", "StatsCPU"),
	setName("conntrack", "expect-stats-attrs", "ExpectStatsCPU"),
	defName("conntrack", "ip-conntrack-dir", "Direction"),
	// The SCTP set names only its state after its protocol.
	fieldName("conntrack", "protoinfo-sctp-attrs", "sctp-state", "State"),
	// The spec uses the names of the kernel's own conntrack.yaml; these Go
	// names keep the kernel header's spelling they had before.
	entryName("conntrack", "nf-ct-tcp-flags", "unacked", "TCPFlagsDataUnacknowledged"),
	entryName("conntrack", "nf-ct-tcp-flags", "maxack", "TCPFlagsMaxackSet"),
	entryName("conntrack", "nf-ct-sctp-state", "shutdown-received", "SCTPStateShutdownRecd"),
	entryName("conntrack", "nf-ct-status", "seq-adj", "StatusSeqAdjust"),
	entryName("conntrack", "nf-ct-status", "nat-clash", "StatusUntracked"),
	opName("conntrack", "get-stats", "MsgGetStatsCPU"),
	opName("conntrack", "get-stats-global", "MsgGetStats"),

	setName("cttimeout", "timeout-attrs", "Message"),
	setName("cttimeout", "udplite-attrs", "UDPLite"),
	fieldName("cttimeout", "timeout-attrs", "l3proto", "L3Proto"),
	fieldName("cttimeout", "timeout-attrs", "l4proto", "L4Proto"),
	defName("cttimeout", "ctnl-timeout-name-max", "NameMax"),

	pointerNest("conntrack", "conntrack-attrs", "help"),
	pointerNest("conntrack", "conntrack-attrs", "nat-src"),
	pointerNest("conntrack", "conntrack-attrs", "nat-dst"),
	pointerNest("conntrack", "conntrack-attrs", "tuple-master"),
	pointerNest("conntrack", "conntrack-attrs", "seq-adj-orig"),
	pointerNest("conntrack", "conntrack-attrs", "seq-adj-reply"),
	pointerNest("conntrack", "conntrack-attrs", "secctx"),
	pointerNest("conntrack", "conntrack-attrs", "filter"),

	setName("nfqueue", "queue-attrs", "Message"),
	setName("nfqueue", "config-attrs", "ConfigMessage"),
	setName("nfqueue", "vlan-attrs", "VLAN"),
	defName("nfqueue", "nfqnl-msg-packet-hdr", "PacketHeader"),
	defName("nfqueue", "nfqnl-msg-packet-hw", "HWAddr"),
	defName("nfqueue", "nfqnl-msg-packet-timestamp", "Timestamp"),
	defName("nfqueue", "nfqnl-msg-verdict-hdr", "VerdictHeader"),
	defName("nfqueue", "nfqnl-msg-config-cmd", "ConfigCmd"),
	defName("nfqueue", "nfqnl-msg-config-params", "ConfigParams"),
	defName("nfqueue", "nfqnl-msg-config-cmds", "Command"),
	defName("nfqueue", "nfqnl-config-mode", "CopyMode"),
	defName("nfqueue", "nfqa-cfg-flags", "Flags"),
	defName("nfqueue", "nfqa-skb-flags", "SKBInfo"),
	defName("nfqueue", "ip-conntrack-info", "CTInfo"),
	defName("nfqueue", "nfnl-subsys-queue", "NFNLSubsysQueue"),
	entryName("nfqueue", "nfqa-cfg-flags", "gso", "FlagsGSO"),
	entryName("nfqueue", "nfqa-cfg-flags", "uid-gid", "FlagsUIDGID"),
	entryName("nfqueue", "nfqa-skb-flags", "csumnotready", "SKBInfoCsumNotReady"),
	entryName("nfqueue", "nfqa-skb-flags", "gso", "SKBInfoGSO"),
	entryName("nfqueue", "nfqa-skb-flags", "csum-notverified", "SKBInfoCsumNotVerified"),
	entryName("nfqueue", "nfqnl-msg-config-cmds", "pf-bind", "CommandPFBind"),
	entryName("nfqueue", "nfqnl-msg-config-cmds", "pf-unbind", "CommandPFUnbind"),
	fieldName("nfqueue", "queue-attrs", "packet-hdr", "PacketHeader"),
	fieldName("nfqueue", "queue-attrs", "verdict-hdr", "VerdictHeader"),
	fieldName("nfqueue", "queue-attrs", "hwaddr", "HWAddr"),
	fieldName("nfqueue", "queue-attrs", "ct", "CT"),
	fieldName("nfqueue", "queue-attrs", "ct-info", "CTInfo"),
	fieldName("nfqueue", "queue-attrs", "skb-info", "SKBInfo"),
	fieldName("nfqueue", "queue-attrs", "uid", "UID"),
	fieldName("nfqueue", "queue-attrs", "gid", "GID"),
	fieldName("nfqueue", "queue-attrs", "vlan", "VLAN"),
	fieldName("nfqueue", "queue-attrs", "l2hdr", "L2Header"),
	fieldName("nfqueue", "queue-attrs", "ifindex-indev", "InDev"),
	fieldName("nfqueue", "queue-attrs", "ifindex-outdev", "OutDev"),
	fieldName("nfqueue", "queue-attrs", "ifindex-physindev", "PhysInDev"),
	fieldName("nfqueue", "queue-attrs", "ifindex-physoutdev", "PhysOutDev"),
	fieldName("nfqueue", "vlan-attrs", "tci", "TCI"),
	fieldName("nfqueue", "config-attrs", "cmd", "Command"),
	fieldName("nfqueue", "config-attrs", "queue-maxlen", "QueueMaxLen"),
	// ct and exp hold sets of another spec: the Go types generated from
	// spec/conntrack.yaml decode and encode them.
	foreignNest("nfqueue", "queue-attrs", "ct", "github.com/ctspec/ctspec/ctnetlink", "Flow"),
	foreignNest("nfqueue", "queue-attrs", "exp", "github.com/ctspec/ctspec/ctnetlink", "Expect"),

	// The golden case gen/testdata/basic.
	pointerNest("demo", "outer-attrs", "spare"),
}

// override is one row of the override table. Build rows with setName,
// defName, fieldName, entryName, opName and pointerNest, which record the
// row's position.
type override struct {
	spec   string // name of the spec the row applies to
	set    string // attribute set, for setName, fieldName and pointerNest
	attr   string // attribute of set, for fieldName and pointerNest
	def    string // definition, for defName and entryName
	entry  string // entry of def, for entryName
	op     string // operation, for opName
	goName string // the Go name, empty for pointerNest
	ptr    bool   // hold the nest set/attr behind a pointer
	// foreign is the Go type, in another package, of a binary attribute
	// that holds a nest of another spec's set, for foreignNest.
	foreign foreignType
	file    string
	line    int
}

// setName gives attribute set set of spec the Go type name goName.
func setName(spec, set, goName string) override {
	return at(override{spec: spec, set: set, goName: goName})
}

// defName gives definition def of spec (an enum, flags, struct or const) the
// Go name goName.
func defName(spec, def, goName string) override {
	return at(override{spec: spec, def: def, goName: goName})
}

// fieldName gives the field of attribute attr of set the Go name goName.
func fieldName(spec, set, attr, goName string) override {
	return at(override{spec: spec, set: set, attr: attr, goName: goName})
}

// entryName gives entry of the enum or flags definition def of spec the Go
// constant name goName, in full: the definition's Go type is not prefixed.
func entryName(spec, def, entry, goName string) override {
	return at(override{spec: spec, def: def, entry: entry, goName: goName})
}

// opName gives the MsgType constant of operation op of spec the Go name
// goName, in full: Msg is not prefixed.
func opName(spec, op, goName string) override {
	return at(override{spec: spec, op: op, goName: goName})
}

// pointerNest holds the nest attr of set behind a pointer, nil when absent.
func pointerNest(spec, set, attr string) override {
	return at(override{spec: spec, set: set, attr: attr, ptr: true})
}

// foreignNest holds the binary attribute attr of set behind a pointer to
// typ of the package pkg: a type generated from another spec, whose
// UnmarshalAttributes and AppendAttributes decode and encode the nest.
func foreignNest(spec, set, attr, pkg, typ string) override {
	return at(override{spec: spec, set: set, attr: attr, foreign: foreignType{pkg: pkg, name: typ}})
}

// foreignType is a Go type of another package: its import path and name.
type foreignType struct{ pkg, name string }

// at records the position of the row built by the caller's caller.
func at(o override) override {
	if _, file, line, ok := runtime.Caller(2); ok {
		o.file, o.line = filepath.Join("gen", filepath.Base(file)), line
	}
	return o
}

// nameTable is the override table resolved for one spec.
type nameTable struct {
	sets    map[string]string      // set name -> Go type name
	defs    map[string]string      // definition name -> Go name
	fields  map[string]string      // "set/attr" -> field name
	entries map[string]string      // "def/entry" -> constant name
	ops     map[string]string      // operation name -> MsgType constant name
	ptrs    map[string]bool        // "set/attr" -> pointer nest
	foreign map[string]foreignType // "set/attr" -> type of another package
}

// resolveOverrides checks the rows of rows that apply to s against it and
// returns them as a table, with one error for each row that names a set,
// attribute, definition, entry or operation s does not have.
func resolveOverrides(s *spec.Spec, rows []override) (*nameTable, []error) {
	t := &nameTable{
		sets:    map[string]string{},
		defs:    map[string]string{},
		fields:  map[string]string{},
		entries: map[string]string{},
		ops:     map[string]string{},
		ptrs:    map[string]bool{},
		foreign: map[string]foreignType{},
	}
	var errs []error
	for _, o := range rows {
		if o.spec != s.Name {
			continue
		}
		if err := o.check(s); err != nil {
			errs = append(errs, &spec.Error{File: o.file, Line: o.line, Msg: err.Error()})
			continue
		}
		key := o.set + "/" + o.attr
		switch {
		case o.op != "":
			t.ops[o.op] = o.goName
		case o.entry != "":
			t.entries[o.def+"/"+o.entry] = o.goName
		case o.def != "":
			t.defs[o.def] = o.goName
		case o.ptr:
			t.ptrs[key] = true
		case o.foreign.name != "":
			t.foreign[key] = o.foreign
		case o.attr != "":
			t.fields[key] = o.goName
		default:
			t.sets[o.set] = o.goName
		}
	}
	return t, errs
}

// check reports what the row names that s does not have.
func (o override) check(s *spec.Spec) error {
	if o.op != "" {
		return o.checkOp(s)
	}
	if o.def != "" {
		d := s.Definition(o.def)
		if d == nil {
			return fmt.Errorf("override of definition %s: %s has no such definition", o.def, s.File)
		}
		if o.entry != "" {
			return o.checkEntry(s, d)
		}
		return nil
	}
	set := s.Set(o.set)
	if set == nil {
		return fmt.Errorf("override of attribute set %s: %s has no such attribute set", o.set, s.File)
	}
	if o.attr == "" {
		return nil
	}
	a := set.Attr(o.attr)
	switch {
	case a == nil:
		return fmt.Errorf("override of %s/%s: attribute set %s (%s:%d) has no attribute %s", o.set, o.attr, o.set, s.File, set.Line, o.attr)
	case o.ptr && a.Type != "nest":
		return fmt.Errorf("override of %s/%s: a pointer nest, but %s:%d makes it a %s attribute", o.set, o.attr, s.File, a.Line, a.Type)
	case o.foreign.name != "" && (a.Type != "binary" || a.Struct != ""):
		return fmt.Errorf("override of %s/%s: a nest of another spec, but %s:%d makes it a %s attribute", o.set, o.attr, s.File, a.Line, attrKindName(a))
	}
	return nil
}

// checkEntry reports what the entryName row names that definition d of s
// does not have.
func (o override) checkEntry(s *spec.Spec, d *spec.Definition) error {
	if d.Type != "enum" && d.Type != "flags" {
		return fmt.Errorf("override of %s/%s: an entry, but %s:%d makes %s a %s definition", o.def, o.entry, s.File, d.Line, o.def, d.Type)
	}
	for _, e := range d.Entries {
		if e.Name == o.entry {
			return nil
		}
	}
	return fmt.Errorf("override of %s/%s: definition %s (%s:%d) has no entry %s", o.def, o.entry, o.def, s.File, d.Line, o.entry)
}

// checkOp reports what the opName row names that s does not have: the
// operation, or its MsgType constant, which a notification lacks.
func (o override) checkOp(s *spec.Spec) error {
	if s.Operations != nil {
		for _, op := range s.Operations.List {
			if op.Name != o.op {
				continue
			}
			if op.IsAsync() {
				return fmt.Errorf("override of operation %s: %s:%d makes it a notification, which has no MsgType constant", o.op, s.File, op.Line)
			}
			return nil
		}
	}
	return fmt.Errorf("override of operation %s: %s has no such operation", o.op, s.File)
}

// attrKindName describes the spec type of a in errors.
func attrKindName(a *spec.Attribute) string {
	if a.Struct != "" {
		return a.Type + " struct " + a.Struct
	}
	return a.Type
}
