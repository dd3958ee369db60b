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
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, &spec.Error{File: s.File, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	if s.Protocol != "netlink-raw" {
		bad(0, "protocol is %q, want netlink-raw", s.Protocol)
	}
	if s.Name == "" {
		bad(0, "name is missing")
	}
	if !kernelVersion.MatchString(s.HeadComment) {
		bad(1, `head comment must name the kernel the spec was synced to, as "Linux X.Y"`)
	}

	defs := map[string]*spec.Definition{}
	for _, d := range s.Definitions {
		if !kebab.MatchString(d.Name) {
			bad(d.Line, "definition %q: name is not kebab-case", d.Name)
		}
		if defs[d.Name] != nil {
			bad(d.Line, "definition %s: defined twice (first at line %d)", d.Name, defs[d.Name].Line)
		}
		defs[d.Name] = d
		switch d.Type {
		case "enum", "flags":
			if len(d.Entries) == 0 {
				bad(d.Line, "definition %s: no entries", d.Name)
			}
			names := map[string]bool{}
			vals := map[uint64]string{}
			for _, e := range d.Entries {
				if !kebab.MatchString(e.Name) {
					bad(e.Line, "definition %s: entry %q is not kebab-case", d.Name, e.Name)
				}
				if names[e.Name] {
					bad(e.Line, "definition %s: entry %s listed twice", d.Name, e.Name)
				}
				names[e.Name] = true
				if other, ok := vals[e.Num]; ok {
					bad(e.Line, "definition %s: entry %s has the same value %d as %s", d.Name, e.Name, e.Num, other)
				}
				vals[e.Num] = e.Name
			}
		case "struct":
			for _, m := range d.Members {
				switch m.Type {
				case "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64":
				case "pad", "binary":
					if _, ok := m.Len.(int); !ok {
						bad(m.Line, "definition %s: member %s: %s needs an integer len", d.Name, m.Name, m.Type)
					}
				default:
					bad(m.Line, "definition %s: member %s: type %q is not supported in structs", d.Name, m.Name, m.Type)
				}
				if m.Enum != "" && defs[m.Enum] == nil && s.Definition(m.Enum) == nil {
					bad(m.Line, "definition %s: member %s: enum %q is not defined", d.Name, m.Name, m.Enum)
				}
			}
		case "const":
			if _, ok := d.Value.(int); !ok {
				bad(d.Line, "definition %s: const needs an integer value", d.Name)
			}
		default:
			bad(d.Line, "definition %s: unknown type %q", d.Name, d.Type)
		}
	}

	sets := map[string]*spec.AttrSet{}
	for _, set := range s.AttributeSets {
		if sets[set.Name] != nil {
			bad(set.Line, "attribute set %s: defined twice (first at line %d)", set.Name, sets[set.Name].Line)
		}
		sets[set.Name] = set
	}
	for _, set := range s.AttributeSets {
		if !kebab.MatchString(set.Name) {
			bad(set.Line, "attribute set %q: name is not kebab-case", set.Name)
		}
		if set.SubsetOf != "" {
			bad(set.Line, "attribute set %s: subset-of is not supported", set.Name)
		}
		names := map[string]bool{}
		byNum := map[int]*spec.Attribute{}
		for _, a := range set.Attributes {
			where := fmt.Sprintf("attribute set %s: attribute %s", set.Name, a.Name)
			if !kebab.MatchString(a.Name) {
				bad(a.Line, "%s: name is not kebab-case", where)
			}
			if names[a.Name] {
				bad(a.Line, "%s: listed twice", where)
			}
			names[a.Name] = true
			if a.Num < 1 || a.Num > 63 {
				bad(a.Line, "%s: value %d out of range 1..63", where, a.Num)
			}
			if prev := byNum[a.Num]; prev != nil {
				// Same value as an earlier attribute: two names of one
				// value, the last listed being the current one and the
				// others its aliases. They must agree, and the later name
				// must give the value explicitly.
				switch {
				case a.Value == nil:
					bad(a.Line, "%s: duplicate value %d (same as %s); a second name of a value needs an explicit value", where, a.Num, prev.Name)
				case a.Type != prev.Type || a.NestedAttributes != prev.NestedAttributes || a.ByteOrder != prev.ByteOrder || a.Enum != prev.Enum || a.Struct != prev.Struct:
					bad(a.Line, "%s: duplicate value %d (same as %s) with a different type; an alias must match its target", where, a.Num, prev.Name)
				}
				continue
			}
			byNum[a.Num] = a
			switch {
			case unsupportedTypes[a.Type]:
				bad(a.Line, "%s: type %q is not supported by this generator", where, a.Type)
			case !attrTypes[a.Type]:
				bad(a.Line, "%s: unknown type %q", where, a.Type)
			}
			if a.ByteOrder != "" && a.ByteOrder != "big-endian" && a.ByteOrder != "little-endian" {
				bad(a.Line, "%s: unknown byte-order %q", where, a.ByteOrder)
			}
			if a.Type == "nest" {
				if a.NestedAttributes == "" {
					bad(a.Line, "%s: nest without nested-attributes", where)
				} else if sets[a.NestedAttributes] == nil {
					bad(a.Line, "%s: nested-attributes %q is not an attribute set", where, a.NestedAttributes)
				}
			} else if a.NestedAttributes != "" {
				bad(a.Line, "%s: nested-attributes on a %s attribute", where, a.Type)
			}
			if a.Enum != "" {
				d := defs[a.Enum]
				switch {
				case d == nil:
					bad(a.Line, "%s: enum %q is not defined", where, a.Enum)
				case d.Type != "enum" && d.Type != "flags":
					bad(a.Line, "%s: enum %q is a %s", where, a.Enum, d.Type)
				}
				if !isScalar(a.Type) {
					bad(a.Line, "%s: enum on a %s attribute", where, a.Type)
				}
			}
			if a.Struct != "" {
				d := defs[a.Struct]
				switch {
				case d == nil:
					bad(a.Line, "%s: struct %q is not defined", where, a.Struct)
				case d.Type != "struct":
					bad(a.Line, "%s: struct %q is a %s", where, a.Struct, d.Type)
				}
				if a.Type != "binary" {
					bad(a.Line, "%s: struct on a %s attribute", where, a.Type)
				}
			}
			switch a.DisplayHint {
			case "", "hex", "mac":
			case "ipv4":
				if a.Type != "u32" && !(a.Type == "binary" && lenCheck(a, "exact") == 4) {
					bad(a.Line, "%s: display-hint ipv4 needs a u32 or a 4-byte binary", where)
				}
			case "ipv6":
				if a.Type != "binary" || (lenCheck(a, "exact") != 16 && lenCheck(a, "min") != 16) {
					bad(a.Line, "%s: display-hint ipv6 needs a binary with exact-len 16", where)
				}
			default:
				bad(a.Line, "%s: display-hint %q is not supported", where, a.DisplayHint)
			}
			if a.MultiAttr {
				bad(a.Line, "%s: multi-attr is not supported", where)
			}
			if a.Doc == "" {
				bad(a.Line, "%s: doc is missing", where)
			}
		}
	}
	// Nested sets become value-typed Go structs, so they cannot contain themselves.
	for _, set := range s.AttributeSets {
		if cyc := findCycle(s, set.Name, nil); cyc != nil {
			bad(set.Line, "attribute set %s: nests itself through %v", set.Name, cyc)
		}
	}

	groups := map[string]bool{}
	if s.McastGroups != nil {
		for _, g := range s.McastGroups.List {
			groups[g.Name] = true
		}
	}
	if s.Operations != nil {
		names := map[string]bool{}
		for _, op := range s.Operations.List {
			if names[op.Name] {
				bad(op.Line, "operation %s: listed twice", op.Name)
			}
			names[op.Name] = true
			if op.AttributeSet != "" && sets[op.AttributeSet] == nil {
				bad(op.Line, "operation %s: attribute-set %q is not defined", op.Name, op.AttributeSet)
			}
			if op.MsgType() < 0 {
				bad(op.Line, "operation %s: no value (give value, or do/dump request value)", op.Name)
			}
			if op.IsAsync() {
				switch {
				case op.Value == nil:
					bad(op.Line, "operation %s: a notification needs a value", op.Name)
				case op.Do != nil || op.Dump != nil:
					bad(op.Line, "operation %s: a notification has no do or dump", op.Name)
				case op.Notify != "" && !names[op.Notify]:
					bad(op.Line, "operation %s: notify %q is not an earlier operation", op.Name, op.Notify)
				case op.Notify == "" && op.AttributeSet == "":
					bad(op.Line, "operation %s: an event needs an attribute-set", op.Name)
				case op.Mcgrp != "" && !groups[op.Mcgrp]:
					bad(op.Line, "operation %s: mcgrp %q is not a multicast group", op.Name, op.Mcgrp)
				}
				if op.Event != nil && sets[op.AttributeSet] != nil {
					for _, an := range op.Event.Attributes {
						if sets[op.AttributeSet].Attr(an) == nil {
							bad(op.Line, "operation %s: attribute %q is not in set %s", op.Name, an, op.AttributeSet)
						}
					}
				}
			}
			for _, sub := range []*spec.SubOp{op.Do, op.Dump} {
				if sub == nil {
					continue
				}
				for _, m := range []*spec.Message{sub.Request, sub.Reply} {
					if m == nil || sets[op.AttributeSet] == nil {
						continue
					}
					for _, an := range m.Attributes {
						if sets[op.AttributeSet].Attr(an) == nil {
							bad(op.Line, "operation %s: attribute %q is not in set %s", op.Name, an, op.AttributeSet)
						}
					}
				}
			}
		}
	}
	if s.McastGroups != nil {
		for _, g := range s.McastGroups.List {
			if g.Value == nil {
				bad(g.Line, "multicast group %s: value is missing", g.Name)
			}
		}
	}
	return errs
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
