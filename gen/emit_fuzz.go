package main

import (
	"fmt"

	"github.com/dave/jennifer/jen"
)

// genFuzz emits one fuzz target per attribute set. Each checks that decoding
// never panics and that decode, encode, decode, encode is stable. Seeds come
// from fuzzSeeds, written by hand beside the generated package, which
// extracts every payload of the set from the golden messages in testdata.
func genFuzz(m *Model, f *jen.File) {
	for _, set := range m.Sets {
		f.Comment(fmt.Sprintf("Fuzz%s fuzzes the decoder of %s.", set.GoName, set.AS.Name))
		f.Func().Id("Fuzz"+set.GoName).Params(jen.Id("f").Op("*").Qual("testing", "F")).Block(
			jen.Id("fuzzSeeds").Call(jen.Id("f"), jen.Id("schema"+set.GoName)),
			jen.Id("f").Dot("Fuzz").Call(jen.Func().Params(jen.Id("t").Op("*").Qual("testing", "T"), jen.Id("b").Index().Byte()).Block(
				jen.Var().List(jen.Id("v1"), jen.Id("v2")).Id(set.GoName),
				jen.If(jen.Id("v1").Dot("UnmarshalAttributes").Call(jen.Id("b")).Op("!=").Nil()).Block(jen.Return()),
				jen.Id("enc1").Op(":=").Id("v1").Dot("AppendAttributes").Call(jen.Nil()),
				jen.If(jen.Err().Op(":=").Id("v2").Dot("UnmarshalAttributes").Call(jen.Id("enc1")), jen.Err().Op("!=").Nil()).Block(
					jen.Id("t").Dot("Fatalf").Call(jen.Lit("decoding our own encoding: %v\ninput %x\nencoded %x"), jen.Err(), jen.Id("b"), jen.Id("enc1")),
				),
				jen.If(jen.Id("enc2").Op(":=").Id("v2").Dot("AppendAttributes").Call(jen.Nil()), jen.Op("!").Qual("bytes", "Equal").Call(jen.Id("enc1"), jen.Id("enc2"))).Block(
					jen.Id("t").Dot("Fatalf").Call(jen.Lit("encoding is not stable:\nfirst  %x\nsecond %x"), jen.Id("enc1"), jen.Id("enc2")),
				),
			)),
		)
	}
}
