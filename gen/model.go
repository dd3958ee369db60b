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

func buildModel(s *spec.Spec, pkg string) (*Model, error) {
	m := &Model{
		Spec:    s,
		Pkg:     pkg,
		enums:   map[string]*Enum{},
		structs: map[string]*Struct{},
		sets:    map[string]*Set{},
	}
	if v := kernelVersion.FindStringSubmatch(s.HeadComment); v != nil {
		m.Kernel = v[1]
	}
	// Width of each enum: the widest scalar that refers to it.
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
	for _, d := range s.Definitions {
		switch d.Type {
		case "enum", "flags":
			e := &Enum{Def: d, GoName: defGoName(d.Name), CName: d.CEnumName(), Flags: d.Type == "flags", Bits: widths[d.Name]}
			if e.Bits == 0 {
				e.Bits = 32
			}
			for _, en := range d.Entries {
				if e.Bits < 64 && en.Num >= 1<<uint(e.Bits) {
					return nil, &spec.Error{File: s.File, Line: en.Line, Msg: fmt.Sprintf("definition %s: entry %s: value %d does not fit in %d bits", d.Name, en.Name, en.Num, e.Bits)}
				}
				e.Entries = append(e.Entries, &EnumEntry{Entry: en, GoName: entryGoName(d.Name, e.GoName, en.Name), CName: d.CName(en), Value: en.Num})
			}
			m.Enums = append(m.Enums, e)
			m.enums[d.Name] = e
		case "const":
			m.Consts = append(m.Consts, &Const{Def: d, GoName: constGoName(d.Name), CName: d.CConstName(), Value: d.Value.(int)})
		}
	}
	for _, d := range s.Definitions {
		if d.Type != "struct" || !structUsed(s, d.Name) {
			continue
		}
		st := &Struct{Def: d, GoName: defGoName(d.Name)}
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
	for _, as := range s.AttributeSets {
		set := &Set{AS: as, GoName: setGoName(as.Name), CEnum: as.CEnumName()}
		set.AttrType = set.GoName + "Attr"
		m.Sets = append(m.Sets, set)
		m.sets[as.Name] = set
	}
	for _, set := range m.Sets {
		var names []string
		for _, a := range set.AS.Attributes {
			if a.Type != "pad" && a.Type != "unused" && set.AS.AliasOf(a) == nil {
				names = append(names, a.Name)
			}
		}
		drop := commonWord(names)
		byAttr := map[*spec.Attribute]*Attr{}
		for _, a := range set.AS.Attributes {
			byAttr[a] = &Attr{A: a, Set: set, Value: a.Num, CName: set.AS.CName(a)}
		}
		for _, a := range set.AS.Attributes {
			at := byAttr[a]
			at.Field = fieldGoName(set.AS.Name, a.Name, drop)
			at.Const = set.AttrType + goName(strings.TrimPrefix(a.Name, drop+"-"))
			if drop == "" {
				at.Const = set.AttrType + goName(a.Name)
			}
			if t := set.AS.AliasOf(a); t != nil {
				at.Alias = byAttr[t]
			}
			k, err := m.kindOf(set, a)
			if err != nil {
				return nil, &spec.Error{File: s.File, Line: a.Line, Msg: fmt.Sprintf("attribute set %s: attribute %s: %v", set.AS.Name, a.Name, err)}
			}
			if nk, ok := k.(nestKind); ok && pointerNests[set.AS.Name+"/"+a.Name] {
				k = ptrNestKind(nk)
			}
			at.Kind = k
			set.Attrs = append(set.Attrs, at)
			set.MaxValue = max(set.MaxValue, a.Num)
		}
		set.Bits = 32
		if set.MaxValue >= 32 {
			set.Bits = 64
		}
		set.Encode = encodeOrder(s, set)
	}
	if s.Operations != nil {
		for _, op := range s.Operations.List {
			if op.IsAsync() {
				// A notification reuses the message type of a reply.
				continue
			}
			m.Ops = append(m.Ops, &Op{O: op, GoName: opGoName(op.Name), CName: s.Operations.CName(op), Value: op.MsgType()})
		}
	}
	if s.McastGroups != nil {
		for _, g := range s.McastGroups.List {
			m.Groups = append(m.Groups, &Group{G: g, GoName: "Group" + goName(strings.TrimPrefix(g.Name, s.Name+"-")), CName: g.CName(), Value: *g.Value})
		}
	}
	return m, checkNames(m)
}

func constGoName(name string) string {
	if n, ok := goNameOverrides["const:"+name]; ok {
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
			dups = append(dups, fmt.Sprintf("Go name %s is used by both %s and %s (add an entry to goNameOverrides in gen/names.go)", name, prev, what))
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
					dups = append(dups, fmt.Sprintf("field %s.%s of attribute %s collides with a method name (add an entry to goNameOverrides in gen/names.go)", set.GoName, a.Field, a.A.Name))
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
