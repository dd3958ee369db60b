package main

import (
	"fmt"
	"strings"

	"github.com/dave/jennifer/jen"
)

// genEnums emits the enum and flags definitions, the const definitions, the
// message types and the multicast groups.
func genEnums(m *Model, f *jen.File) {
	for _, e := range m.Enums {
		genEnum(f, e)
	}
	if len(m.Consts) > 0 {
		var defs []jen.Code
		for _, c := range m.Consts {
			defs = append(defs, jen.Comment(docLine(c.GoName+" is "+c.Def.Name, c.Def.Doc)))
			defs = append(defs, jen.Id(c.GoName).Op("=").Lit(c.Value).Comment(c.CName))
		}
		f.Const().Defs(defs...)
	}
	if len(m.Ops) > 0 {
		f.Comment("MsgType is a netlink message type of this protocol: the nfnetlink")
		f.Comment("subsystem in the high byte and the message in the low byte.")
		f.Type().Id("MsgType").Uint16()
		var defs []jen.Code
		for _, op := range m.Ops {
			defs = append(defs, jen.Comment(docLine(op.GoName+" is "+op.O.Name, op.O.Doc)))
			defs = append(defs, jen.Id(op.GoName).Id("MsgType").Op("=").Add(hexLit(uint64(op.Value), 4)).Comment(op.CName))
		}
		f.Const().Defs(defs...)
		genStringer(f, "MsgType", func() (cases []jen.Code) {
			for _, op := range m.Ops {
				cases = append(cases, jen.Case(jen.Id(op.GoName)).Block(jen.Return(jen.Lit(op.O.Name))))
			}
			return
		})
	}
	if len(m.Groups) > 0 {
		f.Comment("Group is a netlink multicast group of this protocol.")
		f.Type().Id("Group").Uint32()
		var defs []jen.Code
		for _, g := range m.Groups {
			defs = append(defs, jen.Comment(fmt.Sprintf("%s is the multicast group %s.", g.GoName, g.G.Name)))
			defs = append(defs, jen.Id(g.GoName).Id("Group").Op("=").Lit(g.Value).Comment(g.CName))
		}
		f.Const().Defs(defs...)
		genStringer(f, "Group", func() (cases []jen.Code) {
			for _, g := range m.Groups {
				cases = append(cases, jen.Case(jen.Id(g.GoName)).Block(jen.Return(jen.Lit(g.G.Name))))
			}
			return
		})
	}
}

func genEnum(f *jen.File, e *Enum) {
	kind := "an enum"
	if e.Flags {
		kind = "a set of flags"
	}
	f.Comment(fmt.Sprintf("%s is %s: the spec's %s.", e.GoName, kind, e.Def.Name))
	if e.Def.Doc != "" {
		f.Comment(sentence(e.Def.Doc))
	}
	if e.CName != "" || e.Def.Header != "" {
		k := "Kernel:"
		if e.CName != "" {
			k += " enum " + e.CName
		}
		if e.Def.Header != "" {
			k += " in <" + e.Def.Header + ">"
		}
		f.Comment(k + ".")
	}
	f.Type().Id(e.GoName).Id(fmt.Sprintf("uint%d", e.Bits))
	var defs []jen.Code
	for _, en := range e.Entries {
		defs = append(defs, jen.Comment(docLine(en.GoName+" is "+en.Entry.Name, en.Entry.Doc)))
		var lit jen.Code = jen.Lit(int(en.Value))
		if e.Flags {
			lit = hexLit(en.Value, 0)
		}
		defs = append(defs, jen.Id(en.GoName).Id(e.GoName).Op("=").Add(lit).Comment(en.CName))
	}
	f.Const().Defs(defs...)
	if !e.Flags {
		genStringer(f, e.GoName, func() (cases []jen.Code) {
			for _, en := range e.Entries {
				cases = append(cases, jen.Case(jen.Id(en.GoName)).Block(jen.Return(jen.Lit(en.Entry.Name))))
			}
			return
		})
		return
	}
	// Flags print as the names of the set bits joined by |, unknown bits in hex.
	names := lowerFirst(e.GoName) + "Names"
	f.Var().Id(names).Op("=").Index().Qual(nlattrPkg, "FlagName").Types(jen.Id(e.GoName)).ValuesFunc(func(g *jen.Group) {
		for _, en := range e.Entries {
			g.Line().Values(jen.Id("Bit").Op(":").Id(en.GoName), jen.Id("Name").Op(":").Lit(en.Entry.Name))
		}
		g.Line()
	})
	f.Comment("String returns the names of the set bits joined by |, with unknown bits in hex.")
	f.Func().Params(jen.Id("v").Id(e.GoName)).Id("String").Params().String().Block(
		jen.Return(jen.Qual(nlattrPkg, "FlagsString").Call(jen.Id("v"), jen.Id(names))),
	)
}

// genStringer emits a String method that switches over cases and falls back
// to Type(N).
func genStringer(f *jen.File, typ string, cases func() []jen.Code) {
	body := cases()
	body = append(body, jen.Default().Block(jen.Return(
		jen.Lit(typ+"(").Op("+").Qual("strconv", "FormatUint").Call(jen.Uint64().Call(jen.Id("v")), jen.Lit(10)).Op("+").Lit(")"),
	)))
	f.Comment(fmt.Sprintf("String returns the spec name of v, or %s(N) for an unknown value.", typ))
	f.Func().Params(jen.Id("v").Id(typ)).Id("String").Params().String().Block(jen.Switch(jen.Id("v")).Block(body...))
}

// docLine joins a lead with a spec doc into one sentence.
func docLine(lead, doc string) string {
	doc = strings.TrimSpace(strings.Join(strings.Fields(doc), " "))
	if doc == "" {
		return lead + "."
	}
	return lead + ": " + strings.TrimSuffix(doc, ".") + "."
}

func sentence(doc string) string {
	doc = strings.TrimSpace(strings.Join(strings.Fields(doc), " "))
	if doc == "" {
		return ""
	}
	doc = strings.ToUpper(doc[:1]) + doc[1:]
	if !strings.HasSuffix(doc, ".") {
		doc += "."
	}
	return doc
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// hexLit is an integer literal in hex, zero-padded to digits.
func hexLit(v uint64, digits int) jen.Code {
	return jen.Op(fmt.Sprintf("0x%0*x", digits, v))
}
