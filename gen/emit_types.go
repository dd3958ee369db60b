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
}

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
	f.Comment("Absent and zero are distinct: an attribute is present when it was decoded,")
	f.Comment("set with a Set method or marked with SetPresent. Encoding writes every attribute")
	f.Comment("that is present or whose field is not zero; Has reports the same. A value")
	f.Comment("is safe for concurrent reads; writes need the caller's synchronisation.")
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

// genHas emits Has, true for an attribute present or not zero.
func genHas(f *jen.File, set *Set) {
	f.Comment("Has reports whether attribute a is present in v or has a non-zero value.")
	f.Comment("A nil v has no attribute.")
	f.Func().Params(recvOf(set)).Id("Has").Params(jen.Id("a").Id(set.AttrType)).Bool().BlockFunc(func(g *jen.Group) {
		g.If(jen.Id("v").Op("==").Nil()).Block(jen.Return(jen.False()))
		g.If(jen.Id("a").Op("<").Lit(set.Bits).Op("&&").Id("v").Dot("present").Op("&").Parens(jen.Lit(1).Op("<<").Id("a")).Op("!=").Lit(0)).Block(jen.Return(jen.True()))
		g.Switch(jen.Id("a")).BlockFunc(func(s *jen.Group) {
			for _, a := range set.Attrs {
				if a.HasField() {
					s.Case(jen.Id(a.Const)).Block(jen.Return(a.Kind.NonZero(fieldOf(a))))
				}
			}
		})
		g.Return(jen.False())
	})
}

// genPresence emits SetPresent and Clear.
func genPresence(f *jen.File, set *Set) {
	f.Comment("SetPresent marks attribute a as present, so that it is encoded even when zero.")
	f.Func().Params(recvOf(set)).Id("SetPresent").Params(jen.Id("a").Id(set.AttrType)).Block(
		jen.If(jen.Id("a").Op("<").Lit(set.Bits)).Block(jen.Id("v").Dot("present").Op("|=").Lit(1).Op("<<").Id("a")),
	)
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
		f.Comment(fmt.Sprintf("Set%s sets %s and marks it present.", a.Field, a.A.Name))
		f.Func().Params(recvOf(set)).Id("Set"+a.Field).Params(jen.Id("x").Add(a.Kind.GoType())).Block(
			jen.Id("v").Dot(a.Field).Op("=").Id("x"),
			jen.Id("v").Dot("present").Op("|=").Lit(1).Op("<<").Id(a.Const),
		)
	}
}

// genEmpty emits empty, which encoding a nest asks.
func genEmpty(f *jen.File, set *Set) {
	f.Comment("empty reports whether no attribute of v is present or non-zero.")
	f.Func().Params(recvOf(set)).Id("empty").Params().Bool().BlockFunc(func(g *jen.Group) {
		cond := jen.Id("v").Dot("present").Op("==").Lit(0)
		for _, a := range set.Attrs {
			if a.HasField() {
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
