package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ctspec/ctspec/internal/spec"
)

// Model is the spec resolved into what the emitters need: Go names, kinds,
// sizes, presence bits and order. Building it never touches jennifer.
type Model struct {
	Spec    *spec.Spec
	Pkg     string
	Kernel  string
	Enums   []*Enum
	Structs []*Struct
	Consts  []*Const
	Sets    []*Set
	Ops     []*Op
	Groups  []*Group

	names   *nameTable
	enums   map[string]*Enum
	structs map[string]*Struct
	sets    map[string]*Set
}

// Enum is an enum or flags definition.
type Enum struct {
	Def     *spec.Definition
	GoName  string
	CName   string
	Flags   bool
	Bits    int
	Entries []*EnumEntry
}

// EnumEntry is one named value.
type EnumEntry struct {
	Entry  *spec.Entry
	GoName string
	CName  string
	Value  uint64
}

// Struct is a fixed-layout binary attribute payload.
type Struct struct {
	Def     *spec.Definition
	GoName  string
	Members []*Member
	Size    int
}

// Member is one member of a Struct.
type Member struct {
	M      *spec.Member
	GoName string
	Offset int
	Size   int
	BE     bool
	Enum   *Enum
}

// Const is a const definition.
type Const struct {
	Def    *spec.Definition
	GoName string
	CName  string
	Value  int
}

// Set is an attribute set: a Go struct and an attribute-type enum.
type Set struct {
	AS       *spec.AttrSet
	GoName   string
	AttrType string
	CEnum    string
	Attrs    []*Attr // every attribute, aliases included, in spec order
	Encode   []*Attr // attributes with fields, in encoding order
	MaxValue int
	Bits     int // width of the presence bit set
}

// Attr is one attribute of a set.
type Attr struct {
	A     *spec.Attribute
	Set   *Set
	Value int
	CName string
	Const string
	Field string
	Alias *Attr
	Kind  Kind
}

// HasField reports whether the attribute is stored in the Go struct.
func (a *Attr) HasField() bool { return a.Alias == nil && a.Kind.GoType() != nil }

// Op is one message type.
type Op struct {
	O      *spec.Operation
	GoName string
	CName  string
	Value  int
}

// Group is one multicast group.
type Group struct {
	G      *spec.McastGroup
	GoName string
	CName  string
	Value  int
}

// buildModel resolves s, with the override table names, into a Model.
func buildModel(s *spec.Spec, pkg string, names *nameTable) (*Model, error) {
	m := &Model{
		Spec:    s,
		Pkg:     pkg,
		names:   names,
		enums:   map[string]*Enum{},
		structs: map[string]*Struct{},
		sets:    map[string]*Set{},
	}
	if v := kernelVersion.FindStringSubmatch(s.HeadComment); v != nil {
		m.Kernel = v[1]
	}
	if err := m.addEnums(); err != nil {
		return nil, err
	}
	m.addConsts()
	m.addStructs()
	if err := m.addSets(); err != nil {
		return nil, err
	}
	m.addOps()
	m.addGroups()
	return m, checkNames(m)
}

// enumWidths returns the width of each enum: the widest scalar attribute or
// struct member that refers to it.
func enumWidths(s *spec.Spec) map[string]int {
	widths := map[string]int{}
	for _, set := range s.AttributeSets {
		for _, a := range set.Attributes {
			if a.Enum != "" {
				widths[a.Enum] = max(widths[a.Enum], scalarBits(a.Type))
			}
		}
	}
	for _, d := range s.Definitions {
		for _, mem := range d.Members {
			if mem.Enum != "" {
				widths[mem.Enum] = max(widths[mem.Enum], scalarBits(mem.Type))
			}
		}
	}
	return widths
}

// addEnums adds the enum and flags definitions, 32 bits wide unless an
// attribute or member makes them narrower or wider.
func (m *Model) addEnums() error {
	s := m.Spec
	widths := enumWidths(s)
	for _, d := range s.Definitions {
		if d.Type != "enum" && d.Type != "flags" {
			continue
		}
		e := &Enum{Def: d, GoName: m.names.defGoName(d.Name), CName: d.CEnumName(), Flags: d.Type == "flags", Bits: widths[d.Name]}
		if e.Bits == 0 {
			e.Bits = 32
		}
		for _, en := range d.Entries {
			if e.Bits < 64 && en.Num >= 1<<uint(e.Bits) {
				return &spec.Error{File: s.File, Line: en.Line, Msg: fmt.Sprintf("definition %s: entry %s: value %d does not fit in %d bits", d.Name, en.Name, en.Num, e.Bits)}
			}
			e.Entries = append(e.Entries, &EnumEntry{Entry: en, GoName: m.names.entryGoName(d.Name, e.GoName, en.Name), CName: d.CName(en), Value: en.Num})
		}
		m.Enums = append(m.Enums, e)
		m.enums[d.Name] = e
	}
	return nil
}

// addConsts adds the const definitions.
func (m *Model) addConsts() {
	for _, d := range m.Spec.Definitions {
		if d.Type == "const" {
			m.Consts = append(m.Consts, &Const{Def: d, GoName: m.constGoName(d.Name), CName: d.CConstName(), Value: d.Value.(int)})
		}
	}
}

// addStructs adds the struct definitions that some attribute uses, laying
// out their members.
func (m *Model) addStructs() {
	for _, d := range m.Spec.Definitions {
		if d.Type != "struct" || !structUsed(m.Spec, d.Name) {
			continue
		}
		st := &Struct{Def: d, GoName: m.names.defGoName(d.Name)}
		for _, mem := range d.Members {
			size := scalarBits(mem.Type) / 8
			if n, ok := mem.Len.(int); ok && (mem.Type == "binary" || mem.Type == "pad") {
				size = n
			}
			mm := &Member{M: mem, GoName: goName(mem.Name), Offset: st.Size, Size: size, BE: mem.ByteOrder == "big-endian"}
			if mem.Enum != "" {
				mm.Enum = m.enums[mem.Enum]
			}
			st.Members = append(st.Members, mm)
			st.Size += size
		}
		m.Structs = append(m.Structs, st)
		m.structs[d.Name] = st
	}
}

// addSets adds every attribute set, then resolves their attributes, which
// may nest any set.
func (m *Model) addSets() error {
	for _, as := range m.Spec.AttributeSets {
		set := &Set{AS: as, GoName: m.names.setGoName(as.Name), CEnum: as.CEnumName()}
		set.AttrType = set.GoName + "Attr"
		m.Sets = append(m.Sets, set)
		m.sets[as.Name] = set
	}
	for _, set := range m.Sets {
		if err := m.addAttrs(set); err != nil {
			return err
		}
		set.Bits = 32
		if set.MaxValue >= 32 {
			set.Bits = 64
		}
		set.Encode = encodeOrder(m.Spec, set)
	}
	return nil
}

// addAttrs resolves the attributes of set: names, aliases and kinds.
func (m *Model) addAttrs(set *Set) error {
	drop := commonWord(fieldNames(set.AS))
	byAttr := map[*spec.Attribute]*Attr{}
	for _, a := range set.AS.Attributes {
		byAttr[a] = &Attr{A: a, Set: set, Value: a.Num, CName: set.AS.CName(a)}
	}
	for _, a := range set.AS.Attributes {
		at := byAttr[a]
		at.Field = m.names.fieldGoName(set.AS.Name, a.Name, drop)
		at.Const = set.AttrType + goName(strings.TrimPrefix(a.Name, drop+"-"))
		if drop == "" {
			at.Const = set.AttrType + goName(a.Name)
		}
		if t := set.AS.AliasOf(a); t != nil {
			// Of two names of one value the last listed is the current one.
			at.Alias = byAttr[t]
		}
		var k Kind
		var err error
		if ft, ok := m.names.foreign[set.AS.Name+"/"+a.Name]; ok {
			k = foreignKind{pkg: ft.pkg, name: ft.name}
		} else {
			k, err = m.kindOf(a, m.names.ptrs[set.AS.Name+"/"+a.Name])
		}
		if err != nil {
			return &spec.Error{File: m.Spec.File, Line: a.Line, Msg: fmt.Sprintf("attribute set %s: attribute %s: %v", set.AS.Name, a.Name, err)}
		}
		at.Kind = k
		set.Attrs = append(set.Attrs, at)
		set.MaxValue = max(set.MaxValue, a.Num)
	}
	return nil
}

// fieldNames returns the names of the attributes of as that become fields.
func fieldNames(as *spec.AttrSet) []string {
	var names []string
	for _, a := range as.Attributes {
		if a.Type != "pad" && a.Type != "unused" && as.AliasOf(a) == nil {
			names = append(names, a.Name)
		}
	}
	return names
}

// addOps adds the message types of the requests. A notification reuses the
// message type of a reply, so it gets no constant of its own: a second
// constant of the same value would break the String switch.
func (m *Model) addOps() {
	s := m.Spec
	if s.Operations == nil {
		return
	}
	for _, op := range s.Operations.List {
		if op.IsAsync() {
			continue
		}
		m.Ops = append(m.Ops, &Op{O: op, GoName: m.names.opGoName(op.Name), CName: s.Operations.CName(op), Value: op.MsgType()})
	}
}

// addGroups adds the multicast groups, named without the spec's name.
func (m *Model) addGroups() {
	s := m.Spec
	if s.McastGroups == nil {
		return
	}
	for _, g := range s.McastGroups.List {
		m.Groups = append(m.Groups, &Group{G: g, GoName: "Group" + goName(strings.TrimPrefix(g.Name, s.Name+"-")), CName: g.CName(), Value: *g.Value})
	}
}

// constGoName is the Go name of a const definition: its override, or its
// name by the rule.
func (m *Model) constGoName(name string) string {
	if n, ok := m.names.defs[name]; ok {
		return n
	}
	return goName(name)
}

func structUsed(s *spec.Spec, name string) bool {
	for _, set := range s.AttributeSets {
		for _, a := range set.Attributes {
			if a.Struct == name {
				return true
			}
		}
	}
	return false
}

// encodeOrder is the order in which a set's attributes are encoded. For a
// set that is the attribute set of an operation, it follows the first reply
// attribute list (the order the kernel emits); the rest follow in spec order.
func encodeOrder(s *spec.Spec, set *Set) []*Attr {
	var out []*Attr
	done := map[*Attr]bool{}
	add := func(a *Attr) {
		if a != nil && a.HasField() && !done[a] {
			done[a] = true
			out = append(out, a)
		}
	}
	if s.Operations != nil {
	ops:
		for _, op := range s.Operations.List {
			if op.AttributeSet != set.AS.Name {
				continue
			}
			for _, sub := range []*spec.SubOp{op.Dump, op.Do} {
				if sub != nil && sub.Reply != nil && len(sub.Reply.Attributes) > 0 {
					for _, name := range sub.Reply.Attributes {
						for _, a := range set.Attrs {
							if a.A.Name == name {
								if a.Alias != nil {
									a = a.Alias
								}
								add(a)
							}
						}
					}
					break ops
				}
			}
		}
	}
	for _, a := range set.Attrs {
		add(a)
	}
	return out
}

// checkNames rejects two declarations with the same Go name.
func checkNames(m *Model) error {
	seen := map[string]string{}
	var dups []string
	decl := func(name, what string) {
		if prev, ok := seen[name]; ok {
			dups = append(dups, fmt.Sprintf("Go name %s is used by both %s and %s (add a row to the override table in gen/overrides.go)", name, prev, what))
			return
		}
		seen[name] = what
	}
	for _, e := range m.Enums {
		decl(e.GoName, "definition "+e.Def.Name)
		for _, en := range e.Entries {
			decl(en.GoName, "entry "+e.Def.Name+"/"+en.Entry.Name)
		}
	}
	for _, st := range m.Structs {
		decl(st.GoName, "definition "+st.Def.Name)
	}
	for _, c := range m.Consts {
		decl(c.GoName, "definition "+c.Def.Name)
	}
	for _, set := range m.Sets {
		decl(set.GoName, "attribute set "+set.AS.Name)
		decl(set.AttrType, "attribute set "+set.AS.Name+" (attribute type)")
		fields := map[string]string{}
		methods := map[string]bool{"Has": true, "SetPresent": true, "Clear": true, "Unknown": true, "UnmarshalAttributes": true, "AppendAttributes": true}
		for _, a := range set.Attrs {
			decl(a.Const, "attribute "+set.AS.Name+"/"+a.A.Name)
			if a.HasField() {
				if prev, ok := fields[a.Field]; ok {
					dups = append(dups, fmt.Sprintf("field %s.%s is used by both %s and %s", set.GoName, a.Field, prev, a.A.Name))
				}
				fields[a.Field] = a.A.Name
				if methods[a.Field] || methods["Set"+a.Field] {
					dups = append(dups, fmt.Sprintf("field %s.%s of attribute %s collides with a method name (add a row to the override table in gen/overrides.go)", set.GoName, a.Field, a.A.Name))
				}
			}
		}
	}
	for _, op := range m.Ops {
		decl(op.GoName, "operation "+op.O.Name)
	}
	for _, g := range m.Groups {
		decl(g.GoName, "multicast group "+g.G.Name)
	}
	if len(dups) > 0 {
		sort.Strings(dups)
		return fmt.Errorf("%s: %s", m.Spec.File, strings.Join(dups, "\n"))
	}
	return nil
}

func scalarBits(t string) int {
	switch t {
	case "u8", "s8":
		return 8
	case "u16", "s16":
		return 16
	case "u32", "s32":
		return 32
	case "u64", "s64":
		return 64
	}
	return 0
}
