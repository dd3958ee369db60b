package main

import (
	"github.com/dave/jennifer/jen"
)

// genCodec emits decode and encode for every attribute set, and the schema
// table that names attribute paths.
func genCodec(m *Model, f *jen.File) {
	for _, set := range m.Sets {
		genDecode(f, set)
		genEncode(f, set)
	}
	genSchema(m, f)
}

func genDecode(f *jen.File, set *Set) {
	nameFn := "name" + set.AttrType
	f.Func().Id(nameFn).Params(jen.Id("t").Uint16()).String().Block(jen.Return(jen.Id(set.AttrType).Call(jen.Id("t")).Dot("String").Call()))

	f.Comment("UnmarshalAttributes decodes the attributes in b into v, replacing its")
	f.Comment("contents. Attributes of unknown type are skipped and counted in Unknown.")
	f.Comment("It never retains b. A malformed attribute stops decoding with an error")
	f.Comment("naming its path, such as tuple-orig.tuple-ip.ip-v4-src.")
	f.Func().Params(jen.Id("v").Op("*").Id(set.GoName)).Id("UnmarshalAttributes").Params(jen.Id("b").Index().Byte()).Error().BlockFunc(func(g *jen.Group) {
		g.Op("*").Id("v").Op("=").Id(set.GoName).Values()
		g.Id("d").Op(":=").Qual(nlattrPkg, "NewDecoder").Call(jen.Id("b"))
		g.For(jen.Id("d").Dot("Next").Call()).Block(
			jen.Switch(jen.Id(set.AttrType).Call(jen.Id("d").Dot("Type").Call())).BlockFunc(func(s *jen.Group) {
				for _, a := range set.Attrs {
					if a.Alias != nil {
						continue
					}
					if !a.HasField() {
						s.Case(jen.Id(a.Const)).Comment(a.Kind.Doc())
						continue
					}
					s.Case(jen.Id(a.Const)).Block(
						jen.Id("v").Dot("present").Op("|=").Lit(1).Op("<<").Id(a.Const),
						a.Kind.Decode(fieldOf(a)),
					)
				}
				s.Default().Block(jen.Id("v").Dot("Unknown").Op("++"))
			}),
		)
		g.Return(jen.Id("d").Dot("Err").Call(jen.Id(nameFn)))
	})
}

func genEncode(f *jen.File, set *Set) {
	f.Comment("AppendAttributes appends the attributes of v to b and returns the result.")
	f.Comment("It writes every present attribute (see Has), nested attributes with")
	f.Comment("NLA_F_NESTED set, in the order the kernel itself uses.")
	f.Func().Params(jen.Id("v").Op("*").Id(set.GoName)).Id("AppendAttributes").Params(jen.Id("b").Index().Byte()).Index().Byte().Block(
		jen.Id("e").Op(":=").Qual(nlattrPkg, "NewEncoder").Call(jen.Id("b")),
		jen.Id("v").Dot("encode").Call(jen.Op("&").Id("e")),
		jen.Return(jen.Id("e").Dot("Bytes").Call()),
	)
	f.Func().Params(jen.Id("v").Op("*").Id(set.GoName)).Id("encode").Params(jen.Id("e").Op("*").Qual(nlattrPkg, "Encoder")).BlockFunc(func(g *jen.Group) {
		for _, a := range set.Encode {
			t := jen.Uint16().Call(jen.Id(a.Const))
			cond := jen.Id("v").Dot("present").Op("&").Parens(jen.Lit(1).Op("<<").Id(a.Const)).Op("!=").Lit(0)
			if nested(a) {
				cond = cond.Op("||").Add(a.Kind.NonZero(fieldOf(a)))
			}
			g.If(cond).Block(a.Kind.Encode(t, fieldOf(a))...)
		}
	})
}

// genSchema emits a table of every set with its attribute names and nested
// sets, for naming the attribute path of a kernel extended-ACK offset and for
// collecting fuzz seeds from nested payloads. Each attribute's kind writes its
// own entry.
func genSchema(m *Model, f *jen.File) {
	index := map[*Set]int{}
	for i, set := range m.Sets {
		index[set] = i
	}
	indexOf := func(s *Set) int { return index[s] }
	f.Comment("schemaSet describes an attribute set: its name and, indexed by attribute")
	f.Comment("type, each attribute's name, nested set (an index into schema, or -1),")
	f.Comment("payload size when fixed (else 0) and byte order (big-endian or not).")
	f.Type().Id("schemaSet").Struct(
		jen.Id("name").String(),
		jen.Id("attrs").Index().Id("schemaAttr"),
	)
	f.Type().Id("schemaAttr").Struct(
		jen.Id("name").String(),
		jen.Id("nested").Int(),
		jen.Id("size").Int(),
		jen.Id("bigEndian").Bool(),
	)
	for i, set := range m.Sets {
		f.Const().Id("schema" + set.GoName).Op("=").Lit(i)
	}
	f.Var().Id("schema").Op("=").Index().Id("schemaSet").ValuesFunc(func(g *jen.Group) {
		for _, set := range m.Sets {
			attrs := make([]jen.Code, set.MaxValue+1)
			for i := range attrs {
				attrs[i] = schemaEntry("", Wire{}, indexOf)
			}
			for _, a := range set.Attrs {
				if a.Alias == nil {
					attrs[a.Value] = schemaEntry(a.A.Name, a.Kind.Wire(), indexOf)
				}
			}
			g.Line().Values(jen.Lit(set.AS.Name), jen.Index().Id("schemaAttr").Values(attrs...))
		}
		g.Line()
	})
}
