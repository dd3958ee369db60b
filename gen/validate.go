package main

import (
	"fmt"
	"regexp"

	"github.com/ctspec/ctspec/internal/spec"
)

var (
	attrTypes = map[string]bool{
		"unused": true, "pad": true, "flag": true, "binary": true, "string": true, "nest": true,
		"u8": true, "u16": true, "u32": true, "u64": true, "s8": true, "s16": true, "s32": true, "s64": true,
	}
	// Types the schema knows but this generator does not emit yet.
	unsupportedTypes = map[string]bool{
		"bitfield32": true, "uint": true, "sint": true, "indexed-array": true,
		"nest-type-value": true, "sub-message": true,
	}
	kebab         = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	kernelVersion = regexp.MustCompile(`Linux (\d+\.\d+)`)
)

// validate checks everything the model relies on and returns every problem
// found, each naming the file, line, set and attribute.
func validate(s *spec.Spec) []error {
	c := &checker{s: s, defs: map[string]*spec.Definition{}, sets: map[string]*spec.AttrSet{}}
	c.header()
	for _, d := range s.Definitions {
		c.definition(d)
	}
	c.attributeSets()
	c.operations()
	if s.McastGroups != nil {
		for _, g := range s.McastGroups.List {
			if g.Value == nil {
				c.bad(g.Line, "multicast group %s: value is missing", g.Name)
			}
		}
	}
	return c.errs
}

// checker collects the problems of one spec.
type checker struct {
	s    *spec.Spec
	errs []error
	defs map[string]*spec.Definition
	sets map[string]*spec.AttrSet
}

// bad records a problem at line of the spec.
func (c *checker) bad(line int, format string, args ...any) {
	c.errs = append(c.errs, &spec.Error{File: c.s.File, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// header checks the top-level keys and the head comment.
func (c *checker) header() {
	if c.s.Protocol != "netlink-raw" {
		c.bad(0, "protocol is %q, want netlink-raw", c.s.Protocol)
	}
	if c.s.Name == "" {
		c.bad(0, "name is missing")
	}
	if !kernelVersion.MatchString(c.s.HeadComment) {
		c.bad(1, `head comment must name the kernel the spec was synced to, as "Linux X.Y"`)
	}
}

// definition checks one definition and records it by name.
func (c *checker) definition(d *spec.Definition) {
	if !kebab.MatchString(d.Name) {
		c.bad(d.Line, "definition %q: name is not kebab-case", d.Name)
	}
	if c.defs[d.Name] != nil {
		c.bad(d.Line, "definition %s: defined twice (first at line %d)", d.Name, c.defs[d.Name].Line)
	}
	c.defs[d.Name] = d
	switch d.Type {
	case "enum", "flags":
		c.enumEntries(d)
	case "struct":
		for _, m := range d.Members {
			c.structMember(d, m)
		}
	case "const":
		if _, ok := d.Value.(int); !ok {
			c.bad(d.Line, "definition %s: const needs an integer value", d.Name)
		}
	default:
		c.bad(d.Line, "definition %s: unknown type %q", d.Name, d.Type)
	}
}

// enumEntries checks the entries of an enum or flags definition: present,
// kebab-case, unique in name and value.
func (c *checker) enumEntries(d *spec.Definition) {
	if len(d.Entries) == 0 {
		c.bad(d.Line, "definition %s: no entries", d.Name)
	}
	names := map[string]bool{}
	vals := map[uint64]string{}
	for _, e := range d.Entries {
		if !kebab.MatchString(e.Name) {
			c.bad(e.Line, "definition %s: entry %q is not kebab-case", d.Name, e.Name)
		}
		if names[e.Name] {
			c.bad(e.Line, "definition %s: entry %s listed twice", d.Name, e.Name)
		}
		names[e.Name] = true
		if other, ok := vals[e.Num]; ok {
			c.bad(e.Line, "definition %s: entry %s has the same value %d as %s", d.Name, e.Name, e.Num, other)
		}
		vals[e.Num] = e.Name
	}
}

// structMember checks one member of a struct definition.
func (c *checker) structMember(d *spec.Definition, m *spec.Member) {
	switch m.Type {
	case "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64":
	case "pad", "binary":
		if _, ok := m.Len.(int); !ok {
			c.bad(m.Line, "definition %s: member %s: %s needs an integer len", d.Name, m.Name, m.Type)
		}
	default:
		c.bad(m.Line, "definition %s: member %s: type %q is not supported in structs", d.Name, m.Name, m.Type)
	}
	if m.Enum != "" && c.defs[m.Enum] == nil && c.s.Definition(m.Enum) == nil {
		c.bad(m.Line, "definition %s: member %s: enum %q is not defined", d.Name, m.Name, m.Enum)
	}
}

// attributeSets checks every attribute set and its attributes, then that no
// set nests itself.
func (c *checker) attributeSets() {
	for _, set := range c.s.AttributeSets {
		if c.sets[set.Name] != nil {
			c.bad(set.Line, "attribute set %s: defined twice (first at line %d)", set.Name, c.sets[set.Name].Line)
		}
		c.sets[set.Name] = set
	}
	for _, set := range c.s.AttributeSets {
		c.attributeSet(set)
	}
	// Nested sets become value-typed Go structs, so they cannot contain themselves.
	for _, set := range c.s.AttributeSets {
		if cyc := findCycle(c.s, set.Name, nil); cyc != nil {
			c.bad(set.Line, "attribute set %s: nests itself through %v", set.Name, cyc)
		}
	}
}

// attributeSet checks one set: its name, and each attribute's name, value
// and, unless it is an alias, its type and references.
func (c *checker) attributeSet(set *spec.AttrSet) {
	if !kebab.MatchString(set.Name) {
		c.bad(set.Line, "attribute set %q: name is not kebab-case", set.Name)
	}
	if set.SubsetOf != "" {
		c.bad(set.Line, "attribute set %s: subset-of is not supported", set.Name)
	}
	names := map[string]bool{}
	byNum := map[int]*spec.Attribute{}
	for _, a := range set.Attributes {
		where := fmt.Sprintf("attribute set %s: attribute %s", set.Name, a.Name)
		if !kebab.MatchString(a.Name) {
			c.bad(a.Line, "%s: name is not kebab-case", where)
		}
		if names[a.Name] {
			c.bad(a.Line, "%s: listed twice", where)
		}
		names[a.Name] = true
		if a.Num < 1 || a.Num > 63 {
			c.bad(a.Line, "%s: value %d out of range 1..63", where, a.Num)
		}
		if prev := byNum[a.Num]; prev != nil {
			c.alias(where, a, prev)
			continue
		}
		byNum[a.Num] = a
		c.attribute(where, a)
	}
}

// alias checks attribute a, which has the same value as the earlier prev:
// two names of one value, the last listed being the current one and the
// others its aliases. They must agree, and the later name must give the
// value explicitly.
func (c *checker) alias(where string, a, prev *spec.Attribute) {
	switch {
	case a.Value == nil:
		c.bad(a.Line, "%s: duplicate value %d (same as %s); a second name of a value needs an explicit value", where, a.Num, prev.Name)
	case a.Type != prev.Type || a.NestedAttributes != prev.NestedAttributes || a.ByteOrder != prev.ByteOrder || a.Enum != prev.Enum || a.Struct != prev.Struct:
		c.bad(a.Line, "%s: duplicate value %d (same as %s) with a different type; an alias must match its target", where, a.Num, prev.Name)
	}
}

// attribute checks the type, byte order, nest, enum, struct, display hint
// and doc of attribute a.
func (c *checker) attribute(where string, a *spec.Attribute) {
	switch {
	case unsupportedTypes[a.Type]:
		c.bad(a.Line, "%s: type %q is not supported by this generator", where, a.Type)
	case !attrTypes[a.Type]:
		c.bad(a.Line, "%s: unknown type %q", where, a.Type)
	}
	if a.ByteOrder != "" && a.ByteOrder != "big-endian" && a.ByteOrder != "little-endian" {
		c.bad(a.Line, "%s: unknown byte-order %q", where, a.ByteOrder)
	}
	c.nest(where, a)
	c.enumRef(where, a)
	c.structRef(where, a)
	c.displayHint(where, a)
	if a.MultiAttr {
		c.bad(a.Line, "%s: multi-attr is not supported", where)
	}
	if a.Doc == "" {
		c.bad(a.Line, "%s: doc is missing", where)
	}
}

// nest checks that a nest names a set and that nothing else does.
func (c *checker) nest(where string, a *spec.Attribute) {
	switch {
	case a.Type != "nest" && a.NestedAttributes != "":
		c.bad(a.Line, "%s: nested-attributes on a %s attribute", where, a.Type)
	case a.Type != "nest":
	case a.NestedAttributes == "":
		c.bad(a.Line, "%s: nest without nested-attributes", where)
	case c.sets[a.NestedAttributes] == nil:
		c.bad(a.Line, "%s: nested-attributes %q is not an attribute set", where, a.NestedAttributes)
	}
}

// enumRef checks that an enum is a defined enum or flags on a scalar.
func (c *checker) enumRef(where string, a *spec.Attribute) {
	if a.Enum == "" {
		return
	}
	d := c.defs[a.Enum]
	switch {
	case d == nil:
		c.bad(a.Line, "%s: enum %q is not defined", where, a.Enum)
	case d.Type != "enum" && d.Type != "flags":
		c.bad(a.Line, "%s: enum %q is a %s", where, a.Enum, d.Type)
	}
	if !isScalar(a.Type) {
		c.bad(a.Line, "%s: enum on a %s attribute", where, a.Type)
	}
}

// structRef checks that a struct is a defined struct on a binary.
func (c *checker) structRef(where string, a *spec.Attribute) {
	if a.Struct == "" {
		return
	}
	d := c.defs[a.Struct]
	switch {
	case d == nil:
		c.bad(a.Line, "%s: struct %q is not defined", where, a.Struct)
	case d.Type != "struct":
		c.bad(a.Line, "%s: struct %q is a %s", where, a.Struct, d.Type)
	}
	if a.Type != "binary" {
		c.bad(a.Line, "%s: struct on a %s attribute", where, a.Type)
	}
}

// displayHint checks that an address hint sits on an attribute of the
// address's size.
func (c *checker) displayHint(where string, a *spec.Attribute) {
	switch a.DisplayHint {
	case "", "hex", "mac":
	case "ipv4":
		if a.Type != "u32" && !(a.Type == "binary" && lenCheck(a, "exact") == 4) {
			c.bad(a.Line, "%s: display-hint ipv4 needs a u32 or a 4-byte binary", where)
		}
	case "ipv6":
		if a.Type != "binary" || (lenCheck(a, "exact") != 16 && lenCheck(a, "min") != 16) {
			c.bad(a.Line, "%s: display-hint ipv6 needs a binary with exact-len 16", where)
		}
	default:
		c.bad(a.Line, "%s: display-hint %q is not supported", where, a.DisplayHint)
	}
}

// operations checks the operations: unique names, a defined attribute set
// holding every attribute they list, a message type, and for notifications
// what notification checks.
func (c *checker) operations() {
	if c.s.Operations == nil {
		return
	}
	names := map[string]bool{}
	for _, op := range c.s.Operations.List {
		if names[op.Name] {
			c.bad(op.Line, "operation %s: listed twice", op.Name)
		}
		names[op.Name] = true
		set := c.sets[op.AttributeSet]
		if op.AttributeSet != "" && set == nil {
			c.bad(op.Line, "operation %s: attribute-set %q is not defined", op.Name, op.AttributeSet)
		}
		if op.MsgType() < 0 {
			c.bad(op.Line, "operation %s: no value (give value, or do/dump request value)", op.Name)
		}
		if op.IsAsync() {
			c.notification(op, names)
		}
		if set == nil {
			continue
		}
		for _, m := range opMessages(op) {
			for _, an := range m.Attributes {
				if set.Attr(an) == nil {
					c.bad(op.Line, "operation %s: attribute %q is not in set %s", op.Name, an, op.AttributeSet)
				}
			}
		}
	}
}

// notification checks operation op, a notification: it has a value of its
// own and no do or dump, it notifies about an earlier operation (one of
// names) or is an event of an attribute set, and its multicast group exists.
func (c *checker) notification(op *spec.Operation, names map[string]bool) {
	switch {
	case op.Value == nil:
		c.bad(op.Line, "operation %s: a notification needs a value", op.Name)
	case op.Do != nil || op.Dump != nil:
		c.bad(op.Line, "operation %s: a notification has no do or dump", op.Name)
	case op.Notify != "" && !names[op.Notify]:
		c.bad(op.Line, "operation %s: notify %q is not an earlier operation", op.Name, op.Notify)
	case op.Notify == "" && op.AttributeSet == "":
		c.bad(op.Line, "operation %s: an event needs an attribute-set", op.Name)
	case op.Mcgrp != "" && !c.group(op.Mcgrp):
		c.bad(op.Line, "operation %s: mcgrp %q is not a multicast group", op.Name, op.Mcgrp)
	}
}

// group reports whether the spec has a multicast group called name.
func (c *checker) group(name string) bool {
	if c.s.McastGroups == nil {
		return false
	}
	for _, g := range c.s.McastGroups.List {
		if g.Name == name {
			return true
		}
	}
	return false
}

// opMessages returns the event message of op and the requests and replies
// of its do and dump forms.
func opMessages(op *spec.Operation) []*spec.Message {
	var out []*spec.Message
	if op.Event != nil {
		out = append(out, op.Event)
	}
	for _, sub := range []*spec.SubOp{op.Do, op.Dump} {
		if sub == nil {
			continue
		}
		for _, m := range []*spec.Message{sub.Request, sub.Reply} {
			if m != nil {
				out = append(out, m)
			}
		}
	}
	return out
}

func isScalar(t string) bool {
	switch t {
	case "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64":
		return true
	}
	return false
}

// lenCheck returns the exact-len, min-len or max-len check of a as an
// integer, or -1 when absent or not a literal.
func lenCheck(a *spec.Attribute, which string) int {
	if a.Checks == nil {
		return -1
	}
	var v any
	switch which {
	case "exact":
		v = a.Checks.ExactLen
	case "min":
		v = a.Checks.MinLen
	case "max":
		v = a.Checks.MaxLen
	}
	if n, ok := v.(int); ok {
		return n
	}
	return -1
}

func findCycle(s *spec.Spec, name string, path []string) []string {
	for _, p := range path {
		if p == name {
			return append(path, name)
		}
	}
	set := s.Set(name)
	if set == nil {
		return nil
	}
	for _, a := range set.Attributes {
		if a.Type == "nest" && a.NestedAttributes != "" {
			if c := findCycle(s, a.NestedAttributes, append(path, name)); c != nil {
				return c
			}
		}
	}
	return nil
}
