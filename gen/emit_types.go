package main

import (
	"fmt"

	"github.com/dave/jennifer/jen"
)

// genAttrTypes emits, per attribute set, its attribute-type enum.
func genAttrTypes(m *Model, f *jen.File) {
	for _, set := range m.Sets {
		f.Comment(fmt.Sprintf("%s is an attribute type of %s.", set.AttrType, set.GoName))
		if set.CEnum != "" {
			f.Comment(fmt.Sprintf("Kernel: enum %s.", set.CEnum))
		}
		f.Type().Id(set.AttrType).Uint16()
		var defs []jen.Code
		for _, a := range set.Attrs {
			if a.Alias != nil {
				defs = append(defs,
					jen.Comment(fmt.Sprintf("%s is the kernel's older name for %s.", a.Const, a.Alias.Const)),
					jen.Comment(""),
					jen.Comment(fmt.Sprintf("Deprecated: Use %s.", a.Alias.Const)),
				)
			} else {
				defs = append(defs, jen.Comment(docLine(a.Const+" is "+a.A.Name, a.A.Doc)))
			}
			defs = append(defs, jen.Id(a.Const).Id(set.AttrType).Op("=").Lit(a.Value).Comment(a.CName))
		}
		f.Const().Defs(defs...)
		genStringer(f, set.AttrType, func() (cases []jen.Code) {
			for _, a := range set.Attrs {
				if a.Alias == nil {
					cases = append(cases, jen.Case(jen.Id(a.Const)).Block(jen.Return(jen.Lit(a.A.Name))))
				}
			}
			return
		})
	}
}

// genStructs emits the fixed-layout struct payloads.
func genStructs(m *Model, f *jen.File) {
	for _, st := range m.Structs {
		f.Comment(fmt.Sprintf("%s is the %d-byte binary payload %s.", st.GoName, st.Size, st.Def.Name))
		if st.Def.Doc != "" {
			f.Comment(sentence(st.Def.Doc))
		}
		f.Type().Id(st.GoName).StructFunc(func(g *jen.Group) {
			for _, mem := range st.Members {
				if mem.M.Type == "pad" {
					continue
				}
				g.Comment(docLine(mem.GoName+" is "+mem.M.Name, mem.M.Doc))
				g.Id(mem.GoName).Add(memberType(mem))
			}
		})
		f.Func().Params(jen.Id("v").Op("*").Id(st.GoName)).Id("unpack").Params(jen.Id("b").Index().Byte()).BlockFunc(func(g *jen.Group) {
			g.Id("_").Op("=").Id("b").Index(jen.Lit(st.Size - 1))
			for _, mem := range st.Members {
				if mem.M.Type == "pad" {
					continue
				}
				g.Id("v").Dot(mem.GoName).Op("=").Add(memberRead(mem))
			}
		})
		f.Func().Params(jen.Id("v").Id(st.GoName)).Id("pack").Params().Params(jen.Id("b").Index(jen.Lit(st.Size)).Byte()).BlockFunc(func(g *jen.Group) {
			for _, mem := range st.Members {
				if mem.M.Type == "pad" {
					continue
				}
				g.Add(memberWrite(mem))
			}
			g.Return()
		})
	}
}

func memberType(mem *Member) jen.Code {
	if mem.M.Type == "binary" {
		return jen.Index(jen.Lit(mem.Size)).Byte()
	}
	if mem.Enum != nil {
		return jen.Id(mem.Enum.GoName)
	}
	return jen.Id(fmt.Sprintf("uint%d", mem.Size*8))
}

func memberRead(mem *Member) jen.Code {
	lo, hi := mem.Offset, mem.Offset+mem.Size
	var v *jen.Statement
	switch {
	case mem.M.Type == "binary":
		return jen.Index(jen.Lit(mem.Size)).Byte().Call(jen.Id("b").Index(jen.Lit(lo).Op(":").Lit(hi)))
	case mem.Size == 1:
		v = jen.Id("b").Index(jen.Lit(lo))
	default:
		order := "NativeEndian"
		if mem.BE {
			order = "BigEndian"
		}
		v = jen.Qual("encoding/binary", order).Dot(fmt.Sprintf("Uint%d", mem.Size*8)).Call(jen.Id("b").Index(jen.Lit(lo).Op(":").Lit(hi)))
	}
	if mem.Enum != nil {
		return jen.Id(mem.Enum.GoName).Call(v)
	}
	return v
}

func memberWrite(mem *Member) jen.Code {
	lo, hi := mem.Offset, mem.Offset+mem.Size
	src := jen.Id("v").Dot(mem.GoName)
	switch {
	case mem.M.Type == "binary":
		return jen.Copy(jen.Id("b").Index(jen.Lit(lo).Op(":").Lit(hi)), src.Index(jen.Op(":")))
	case mem.Size == 1:
		return jen.Id("b").Index(jen.Lit(lo)).Op("=").Byte().Call(src)
	}
	order := "NativeEndian"
	if mem.BE {
		order = "BigEndian"
	}
	return jen.Qual("encoding/binary", order).Dot(fmt.Sprintf("PutUint%d", mem.Size*8)).Call(
		jen.Id("b").Index(jen.Lit(lo).Op(":").Lit(hi)), jen.Id(fmt.Sprintf("uint%d", mem.Size*8)).Call(src))
}

// genSets emits one Go struct per attribute set with its accessors.
func genSets(m *Model, f *jen.File) {
	for _, set := range m.Sets {
		genSet(f, set)
	}
}

// genSet emits the Go struct of set and its methods.
func genSet(f *jen.File, set *Set) {
	genSetStruct(f, set)
	genHas(f, set)
	genPresence(f, set)
	genSetters(f, set)
	genEmpty(f, set)
	genStray(f, set)
}

// nested reports whether a is a nest, whose presence is also that of any
// attribute inside it.
func nested(a *Attr) bool { return a.Kind.Wire().Nested != nil }

// recvOf is the receiver of a method of set.
func recvOf(set *Set) *jen.Statement { return jen.Id("v").Op("*").Id(set.GoName) }

// genSetStruct emits the struct of set: one field per attribute, Unknown
// and the presence bits.
func genSetStruct(f *jen.File, set *Set) {
	f.Comment(fmt.Sprintf("%s holds the attributes of the set %s.", set.GoName, set.AS.Name))
	if set.AS.Doc != "" {
		f.Comment(sentence(set.AS.Doc))
	}
	f.Comment("")
	f.Comment("Absent and zero are distinct. An attribute is present when it was decoded or")
	f.Comment("set with its Set method, and a nest also when an attribute inside it is; Has")
	f.Comment("reports exactly that, and encoding writes exactly the present attributes. The")
	f.Comment("Set methods are the one way to set a value: a field written directly is not")
	f.Comment("present, and the clients refuse to send a value holding one. A value is safe")
	f.Comment("for concurrent reads; writes need the caller's synchronisation.")
	presType := jen.Id(fmt.Sprintf("uint%d", set.Bits))
	f.Type().Id(set.GoName).StructFunc(func(g *jen.Group) {
		for _, a := range set.Attrs {
			if !a.HasField() {
				continue
			}
			g.Comment(docLine(fmt.Sprintf("%s is %s (%s, %s)", a.Field, a.A.Name, a.CName, a.Kind.Doc()), a.A.Doc))
			g.Id(a.Field).Add(a.Kind.GoType())
		}
		g.Line()
		g.Comment("Unknown counts the attributes of unknown type that the last decode skipped.")
		g.Id("Unknown").Uint16()
		g.Id("present").Add(presType)
	})
}

// genHas emits Has, true for a present attribute: decoded or set, or a
// nest holding a present attribute.
func genHas(f *jen.File, set *Set) {
	f.Comment("Has reports whether attribute a is present in v: decoded or set with its Set")
	f.Comment("method, or, for a nest, holding a present attribute. A nil v has no attribute.")
	f.Func().Params(recvOf(set)).Id("Has").Params(jen.Id("a").Id(set.AttrType)).Bool().BlockFunc(func(g *jen.Group) {
		g.If(jen.Id("v").Op("==").Nil()).Block(jen.Return(jen.False()))
		g.If(jen.Id("a").Op("<").Lit(set.Bits).Op("&&").Id("v").Dot("present").Op("&").Parens(jen.Lit(1).Op("<<").Id("a")).Op("!=").Lit(0)).Block(jen.Return(jen.True()))
		g.Switch(jen.Id("a")).BlockFunc(func(s *jen.Group) {
			for _, a := range set.Attrs {
				if a.HasField() && nested(a) {
					s.Case(jen.Id(a.Const)).Block(jen.Return(a.Kind.NonZero(fieldOf(a))))
				}
			}
		})
		g.Return(jen.False())
	})
}

// genPresence emits Clear.
func genPresence(f *jen.File, set *Set) {
	f.Comment("Clear removes attribute a: it is no longer present and its field is zero.")
	f.Func().Params(recvOf(set)).Id("Clear").Params(jen.Id("a").Id(set.AttrType)).BlockFunc(func(g *jen.Group) {
		g.If(jen.Id("a").Op("<").Lit(set.Bits)).Block(jen.Id("v").Dot("present").Op("&^=").Lit(1).Op("<<").Id("a"))
		g.Switch(jen.Id("a")).BlockFunc(func(s *jen.Group) {
			for _, a := range set.Attrs {
				if a.HasField() {
					s.Case(jen.Id(a.Const)).Block(jen.Var().Id("zero").Add(a.Kind.GoType()), jen.Id("v").Dot(a.Field).Op("=").Id("zero"))
				}
			}
		})
	})
}

// genSetters emits one Set method per field.
func genSetters(f *jen.File, set *Set) {
	for _, a := range set.Attrs {
		if !a.HasField() {
			continue
		}
		f.Comment(fmt.Sprintf("Set%s sets %s and marks it present, zero included.", a.Field, a.A.Name))
		f.Func().Params(recvOf(set)).Id("Set"+a.Field).Params(jen.Id("x").Add(a.Kind.GoType())).Block(
			jen.Id("v").Dot(a.Field).Op("=").Id("x"),
			jen.Id("v").Dot("present").Op("|=").Lit(1).Op("<<").Id(a.Const),
		)
	}
}

// genEmpty emits empty, which encoding a nest asks.
func genEmpty(f *jen.File, set *Set) {
	f.Comment("empty reports whether no attribute of v is present.")
	f.Func().Params(recvOf(set)).Id("empty").Params().Bool().BlockFunc(func(g *jen.Group) {
		cond := jen.Id("v").Dot("present").Op("==").Lit(0)
		for _, a := range set.Attrs {
			if a.HasField() && nested(a) {
				cond = cond.Op("&&").Add(a.Kind.Zero(fieldOf(a)))
			}
		}
		g.Return(cond)
	})
}

// fieldOf returns a function giving a fresh v.Field expression for a.
func fieldOf(a *Attr) func() *jen.Statement {
	return func() *jen.Statement { return jen.Id("v").Dot(a.Field) }
}

// genStray emits strayField, which the clients call before sending: the
// path of the first field that holds a value although it is not present,
// a value written directly instead of with its Set method.
func genStray(f *jen.File, set *Set) {
	f.Comment("strayField returns the path of the first field of v that holds a value")
	f.Comment("although its attribute is not present (written directly, not with its Set")
	f.Comment("method), or \"\".")
	f.Func().Params(recvOf(set)).Id("strayField").Params().String().BlockFunc(func(g *jen.Group) {
		for _, a := range set.Attrs {
			if !a.HasField() {
				continue
			}
			bit := jen.Id("v").Dot("present").Op("&").Parens(jen.Lit(1).Op("<<").Id(a.Const)).Op("==").Lit(0)
			if !nested(a) {
				g.If(bit.Op("&&").Add(a.Kind.NonZero(fieldOf(a)))).Block(jen.Return(jen.Lit(a.Field)))
				continue
			}
			inner := jen.If(jen.Id("p").Op(":=").Id("v").Dot(a.Field).Dot("strayField").Call(), jen.Id("p").Op("!=").Lit("")).Block(
				jen.Return(jen.Lit(a.Field + ".").Op("+").Id("p")),
			)
			if _, ptr := a.Kind.(ptrNestKind); ptr {
				g.If(jen.Id("v").Dot(a.Field).Op("!=").Nil()).Block(inner)
			} else {
				g.Add(inner)
			}
		}
		g.Return(jen.Lit(""))
	})
}
