package main

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/ctspec/ctspec/internal/spec"
)

const nlattrPkg = "github.com/ctspec/ctspec/internal/nlattr"

// Kind is one kind of attribute. It answers every question the emitters ask
// about an attribute: its Go type, how it decodes, encodes and tests for
// zero, what it looks like on the wire, and its entry in the schema table,
// which names attribute paths in errors and leads the fuzz seed collector
// into nests. Each kind is a small type that implements all of it, with no
// default to inherit, so adding a kind cannot leave a table behind.
//
// Generated code decodes from an nlattr.Decoder named d and encodes to an
// nlattr.Encoder named e.
type Kind interface {
	// GoType is the field type, or nil when the attribute has no field.
	GoType() jen.Code
	// Decode returns statements that store the current attribute in dst.
	Decode(dst func() *jen.Statement) jen.Code
	// Encode returns statements that append attribute type t with value src.
	Encode(t jen.Code, src func() *jen.Statement) []jen.Code
	// Zero is a boolean expression, true when src holds the zero value.
	Zero(src func() *jen.Statement) jen.Code
	// NonZero is the negation of Zero.
	NonZero(src func() *jen.Statement) jen.Code
	// Wire is the attribute's wire format.
	Wire() Wire
	// Doc describes the wire format in a phrase for documentation.
	Doc() string
}

// Wire is an attribute's wire format.
type Wire struct {
	// Type is the spec type: u8 to s64, string, binary, flag, nest or pad.
	Type string
	// Min and Max bound the payload length in bytes; Max is -1 when unbounded.
	Min, Max int
	// BigEndian is set for a scalar in network byte order.
	BigEndian bool
	// Nested is the set a nest holds, nil for every other kind.
	Nested *Set
}

// schemaEntry is an attribute's entry in the schema table, read from its
// wire format: its spec name, the schema index of the set it nests (or
// -1), its payload size when fixed (else 0) and whether that payload is
// big-endian. The BPF event filter reads the last two.
func schemaEntry(name string, w Wire, index func(*Set) int) jen.Code {
	nested, size := -1, 0
	if w.Nested != nil {
		nested = index(w.Nested)
	}
	if w.Min == w.Max && w.Min > 0 {
		size = w.Min
	}
	return jen.Values(jen.Lit(name), jen.Lit(nested), jen.Lit(size), jen.Lit(w.BigEndian))
}

// kindOf returns the kind of attribute a; ptr asks for a nest held behind a
// pointer.
func (m *Model) kindOf(a *spec.Attribute, ptr bool) (Kind, error) {
	switch a.Type {
	case "pad", "unused":
		return padKind{}, nil
	case "flag":
		return flagKind{}, nil
	case "string":
		return stringKind{}, nil
	case "nest":
		ns := m.sets[a.NestedAttributes]
		if ns == nil {
			return nil, fmt.Errorf("unknown nested set %q", a.NestedAttributes)
		}
		if ptr {
			return ptrNestKind{set: ns}, nil
		}
		return nestKind{set: ns}, nil
	case "binary":
		return m.binaryKindOf(a)
	}
	if ptr {
		return nil, fmt.Errorf("a %s attribute cannot be a pointer nest", a.Type)
	}
	bits := scalarBits(a.Type)
	if bits == 0 {
		return nil, fmt.Errorf("unsupported type %q", a.Type)
	}
	if a.DisplayHint == "ipv4" {
		return addrKind{size: 4, typ: a.Type}, nil
	}
	k := scalarKind{bits: bits, be: a.ByteOrder == "big-endian" && bits > 8, signed: a.Type[0] == 's'}
	if a.Enum != "" {
		k.enum = m.enums[a.Enum]
	}
	return k, nil
}

// binaryKindOf returns the kind of a binary attribute: a struct, an address
// or bytes with length checks.
func (m *Model) binaryKindOf(a *spec.Attribute) (Kind, error) {
	if a.Struct != "" {
		st := m.structs[a.Struct]
		if st == nil {
			return nil, fmt.Errorf("unknown struct %q", a.Struct)
		}
		return structKind{st: st}, nil
	}
	switch a.DisplayHint {
	case "ipv6":
		return addrKind{size: 16, typ: "binary"}, nil
	case "ipv4":
		return addrKind{size: 4, typ: "binary"}, nil
	}
	min, max := 0, -1
	if n := lenCheck(a, "exact"); n >= 0 {
		min, max = n, n
	} else {
		if n := lenCheck(a, "min"); n >= 0 {
			min = n
		}
		if n := lenCheck(a, "max"); n >= 0 {
			max = n
		}
	}
	return binaryKind{min: min, max: max}, nil
}

// scalarKind is a fixed-size integer, possibly typed by an enum or flags.
type scalarKind struct {
	bits   int
	be     bool
	signed bool
	enum   *Enum
}

func (k scalarKind) raw() string { return fmt.Sprintf("uint%d", k.bits) }

func (k scalarKind) GoType() jen.Code {
	if k.enum != nil {
		return jen.Id(k.enum.GoName)
	}
	if k.signed {
		return jen.Id(fmt.Sprintf("int%d", k.bits))
	}
	return jen.Id(k.raw())
}

func (k scalarKind) getter() string {
	g := fmt.Sprintf("Uint%d", k.bits)
	if k.be {
		g += "BE"
	}
	return g
}

func (k scalarKind) Decode(dst func() *jen.Statement) jen.Code {
	v := jen.Id("d").Dot(k.getter()).Call()
	if k.enum != nil || k.signed {
		v = jen.Add(k.GoType()).Call(v)
	}
	return dst().Op("=").Add(v)
}

func (k scalarKind) Encode(t jen.Code, src func() *jen.Statement) []jen.Code {
	v := src()
	if k.enum != nil || k.signed {
		v = jen.Id(k.raw()).Call(v)
	}
	return []jen.Code{jen.Id("e").Dot(k.getter()).Call(t, v)}
}

func (k scalarKind) Zero(src func() *jen.Statement) jen.Code    { return src().Op("==").Lit(0) }
func (k scalarKind) NonZero(src func() *jen.Statement) jen.Code { return src().Op("!=").Lit(0) }

func (k scalarKind) Wire() Wire {
	t := fmt.Sprintf("u%d", k.bits)
	if k.signed {
		t = fmt.Sprintf("s%d", k.bits)
	}
	return Wire{Type: t, Min: k.bits / 8, Max: k.bits / 8, BigEndian: k.be}
}

func (k scalarKind) Doc() string {
	s := k.Wire().Type
	if k.be {
		s += ", big-endian"
	} else if k.bits > 8 {
		s += ", host byte order"
	}
	if k.enum != nil {
		if k.enum.Flags {
			s += ", flags " + k.enum.GoName
		} else {
			s += ", enum " + k.enum.GoName
		}
	}
	return s
}

// addrKind is an IPv4 or IPv6 address in network byte order, from a binary
// attribute or a big-endian u32; typ is its spec type.
type addrKind struct {
	size int
	typ  string
}

func (k addrKind) GoType() jen.Code { return jen.Qual("net/netip", "Addr") }

func (k addrKind) Decode(dst func() *jen.Statement) jen.Code {
	return dst().Op("=").Id("d").Dot(fmt.Sprintf("Addr%d", k.size)).Call()
}

func (k addrKind) Encode(t jen.Code, src func() *jen.Statement) []jen.Code {
	return []jen.Code{jen.Id("e").Dot(fmt.Sprintf("Addr%d", k.size)).Call(t, src())}
}

func (k addrKind) Zero(src func() *jen.Statement) jen.Code {
	return jen.Op("!").Add(src()).Dot("IsValid").Call()
}

func (k addrKind) NonZero(src func() *jen.Statement) jen.Code { return src().Dot("IsValid").Call() }

func (k addrKind) Wire() Wire { return Wire{Type: k.typ, Min: k.size, Max: k.size, BigEndian: true} }

func (k addrKind) Doc() string {
	if k.size == 4 {
		return "IPv4 address, 4 bytes in network order"
	}
	return "IPv6 address, 16 bytes in network order"
}

// stringKind is a NUL-terminated string.
type stringKind struct{}

func (stringKind) GoType() jen.Code { return jen.String() }

func (stringKind) Decode(dst func() *jen.Statement) jen.Code {
	return dst().Op("=").Id("d").Dot("String").Call()
}

func (stringKind) Encode(t jen.Code, src func() *jen.Statement) []jen.Code {
	return []jen.Code{jen.Id("e").Dot("String").Call(t, src())}
}

func (stringKind) Zero(src func() *jen.Statement) jen.Code    { return src().Op("==").Lit("") }
func (stringKind) NonZero(src func() *jen.Statement) jen.Code { return src().Op("!=").Lit("") }
func (stringKind) Wire() Wire                                 { return Wire{Type: "string", Max: -1} }
func (stringKind) Doc() string                                { return "NUL-terminated string" }

// binaryKind is a byte string with length bounds; max is -1 when unbounded.
type binaryKind struct{ min, max int }

func (binaryKind) GoType() jen.Code { return jen.Index().Byte() }

func (k binaryKind) Decode(dst func() *jen.Statement) jen.Code {
	return dst().Op("=").Id("d").Dot("BytesCopy").Call(jen.Lit(k.min), jen.Lit(k.max))
}

func (binaryKind) Encode(t jen.Code, src func() *jen.Statement) []jen.Code {
	return []jen.Code{jen.Id("e").Dot("BytesAttr").Call(t, src())}
}

func (binaryKind) Zero(src func() *jen.Statement) jen.Code { return jen.Len(src()).Op("==").Lit(0) }

func (binaryKind) NonZero(src func() *jen.Statement) jen.Code {
	return jen.Len(src()).Op("!=").Lit(0)
}

func (k binaryKind) Wire() Wire { return Wire{Type: "binary", Min: k.min, Max: k.max} }

func (k binaryKind) Doc() string {
	switch {
	case k.min == k.max:
		return fmt.Sprintf("binary, %d bytes", k.min)
	case k.max >= 0:
		return fmt.Sprintf("binary, at most %d bytes", k.max)
	case k.min > 0:
		return fmt.Sprintf("binary, at least %d bytes", k.min)
	}
	return "binary"
}

// flagKind is an attribute without payload, true when present.
type flagKind struct{}

func (flagKind) GoType() jen.Code { return jen.Bool() }

func (flagKind) Decode(dst func() *jen.Statement) jen.Code {
	return dst().Op("=").Id("d").Dot("Flag").Call()
}

func (flagKind) Encode(t jen.Code, _ func() *jen.Statement) []jen.Code {
	return []jen.Code{jen.Id("e").Dot("Flag").Call(t)}
}

func (flagKind) Zero(src func() *jen.Statement) jen.Code    { return jen.Op("!").Add(src()) }
func (flagKind) NonZero(src func() *jen.Statement) jen.Code { return src() }
func (flagKind) Wire() Wire                                 { return Wire{Type: "flag"} }
func (flagKind) Doc() string                                { return "flag, no payload" }

// nestKind is a nest held by value.
type nestKind struct{ set *Set }

func (k nestKind) GoType() jen.Code { return jen.Id(k.set.GoName) }

func (k nestKind) Decode(dst func() *jen.Statement) jen.Code {
	return jen.If(
		jen.Err().Op(":=").Add(dst()).Dot("UnmarshalAttributes").Call(jen.Id("d").Dot("Bytes").Call()),
		jen.Err().Op("!=").Nil(),
	).Block(jen.Id("d").Dot("Fail").Call(jen.Err()))
}

func (k nestKind) Encode(t jen.Code, src func() *jen.Statement) []jen.Code {
	return []jen.Code{
		jen.Id("off").Op(":=").Id("e").Dot("Begin").Call(t),
		src().Dot("encode").Call(jen.Id("e")),
		jen.Id("e").Dot("End").Call(jen.Id("off")),
	}
}

func (k nestKind) Zero(src func() *jen.Statement) jen.Code { return src().Dot("empty").Call() }

func (k nestKind) NonZero(src func() *jen.Statement) jen.Code {
	return jen.Op("!").Add(src()).Dot("empty").Call()
}

func (k nestKind) Wire() Wire  { return Wire{Type: "nest", Max: -1, Nested: k.set} }
func (k nestKind) Doc() string { return "nest of " + k.set.AS.Name }

// ptrNestKind is a nest held behind a pointer: nil when absent. It is used
// for the nests the override table marks as pointers. Decoding always
// allocates a new value, so a copy of the enclosing struct never shares it
// with the next decode.
type ptrNestKind struct{ set *Set }

func (k ptrNestKind) GoType() jen.Code { return jen.Op("*").Id(k.set.GoName) }

func (k ptrNestKind) Decode(dst func() *jen.Statement) jen.Code {
	return jen.Block(
		jen.Id("x").Op(":=").New(jen.Id(k.set.GoName)),
		jen.If(
			jen.Err().Op(":=").Id("x").Dot("UnmarshalAttributes").Call(jen.Id("d").Dot("Bytes").Call()),
			jen.Err().Op("!=").Nil(),
		).Block(jen.Id("d").Dot("Fail").Call(jen.Err())),
		dst().Op("=").Id("x"),
	)
}

func (k ptrNestKind) Encode(t jen.Code, src func() *jen.Statement) []jen.Code {
	return []jen.Code{
		jen.Id("off").Op(":=").Id("e").Dot("Begin").Call(t),
		jen.If(src().Op("!=").Nil()).Block(src().Dot("encode").Call(jen.Id("e"))),
		jen.Id("e").Dot("End").Call(jen.Id("off")),
	}
}

// Zero is parenthesised: emitters join Zero expressions with &&.
func (k ptrNestKind) Zero(src func() *jen.Statement) jen.Code {
	return jen.Parens(src().Op("==").Nil().Op("||").Add(src()).Dot("empty").Call())
}

func (k ptrNestKind) NonZero(src func() *jen.Statement) jen.Code {
	return src().Op("!=").Nil().Op("&&").Op("!").Add(src()).Dot("empty").Call()
}

func (k ptrNestKind) Wire() Wire  { return Wire{Type: "nest", Max: -1, Nested: k.set} }
func (k ptrNestKind) Doc() string { return "nest of " + k.set.AS.Name }

// structKind is a binary attribute with a fixed-layout struct payload.
type structKind struct{ st *Struct }

func (k structKind) GoType() jen.Code { return jen.Id(k.st.GoName) }

func (k structKind) Decode(dst func() *jen.Statement) jen.Code {
	return jen.If(
		jen.Id("b").Op(":=").Id("d").Dot("Fixed").Call(jen.Lit(k.st.Size)),
		jen.Id("b").Op("!=").Nil(),
	).Block(dst().Dot("unpack").Call(jen.Id("b")))
}

func (k structKind) Encode(t jen.Code, src func() *jen.Statement) []jen.Code {
	return []jen.Code{
		jen.Id("p").Op(":=").Add(src()).Dot("pack").Call(),
		jen.Id("e").Dot("BytesAttr").Call(t, jen.Id("p").Index(jen.Op(":"))),
	}
}

func (k structKind) Zero(src func() *jen.Statement) jen.Code {
	return src().Op("==").Parens(jen.Id(k.st.GoName).Values())
}

func (k structKind) NonZero(src func() *jen.Statement) jen.Code {
	return src().Op("!=").Parens(jen.Id(k.st.GoName).Values())
}

func (k structKind) Wire() Wire { return Wire{Type: "binary", Min: k.st.Size, Max: k.st.Size} }

func (k structKind) Doc() string {
	return fmt.Sprintf("struct %s, %d bytes", k.st.Def.Name, k.st.Size)
}

// padKind is padding or an unused attribute type: no field, skipped on decode.
type padKind struct{}

func (padKind) GoType() jen.Code                                  { return nil }
func (padKind) Decode(func() *jen.Statement) jen.Code             { return jen.Null() }
func (padKind) Encode(jen.Code, func() *jen.Statement) []jen.Code { return nil }
func (padKind) Zero(func() *jen.Statement) jen.Code               { return jen.True() }
func (padKind) NonZero(func() *jen.Statement) jen.Code            { return jen.False() }
func (padKind) Wire() Wire                                        { return Wire{Type: "pad", Max: -1} }
func (padKind) Doc() string                                       { return "padding, ignored" }

// foreignKind is a binary attribute that holds a nest of another spec's
// set, decoded into and encoded from a pointer to the Go type generated
// from that spec (name in package pkg): nil when absent. The override table
// names it, because a netlink-raw spec cannot refer to another family's
// sets. It is encoded with NLA_F_NESTED, as the kernel sends it.
type foreignKind struct{ pkg, name string }

func (k foreignKind) GoType() jen.Code { return jen.Op("*").Qual(k.pkg, k.name) }

func (k foreignKind) Decode(dst func() *jen.Statement) jen.Code {
	return jen.Block(
		jen.Id("x").Op(":=").New(jen.Qual(k.pkg, k.name)),
		jen.If(
			jen.Err().Op(":=").Id("x").Dot("UnmarshalAttributes").Call(jen.Id("d").Dot("Bytes").Call()),
			jen.Err().Op("!=").Nil(),
		).Block(jen.Id("d").Dot("Fail").Call(jen.Err())),
		dst().Op("=").Id("x"),
	)
}

func (k foreignKind) Encode(t jen.Code, src func() *jen.Statement) []jen.Code {
	return []jen.Code{
		jen.If(src().Op("!=").Nil()).Block(
			jen.Id("e").Dot("BytesAttr").Call(jen.Add(t).Op("|").Qual(nlattrPkg, "Nested"), src().Dot("AppendAttributes").Call(jen.Nil())),
		),
	}
}

func (k foreignKind) Zero(src func() *jen.Statement) jen.Code    { return src().Op("==").Nil() }
func (k foreignKind) NonZero(src func() *jen.Statement) jen.Code { return src().Op("!=").Nil() }
func (k foreignKind) Wire() Wire                                 { return Wire{Type: "binary", Max: -1} }

func (k foreignKind) Doc() string {
	return "nest of another spec's set, decoded by " + k.name + " of " + k.pkg
}
