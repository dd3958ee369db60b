package main

import (
	"fmt"

	"github.com/dave/jennifer/jen"
)

// genFuzz emits one fuzz target per attribute set and the fuzzSeed type.
// Seeds come from fuzzSeeds, written by hand beside the generated package:
// fuzzSeeds(tb testing.TB, set int) []fuzzSeed returns every payload of the
// set (a schema index) it finds in the package's golden messages and
// requests. A target without a seed fails. Every seed must decode, and a
// canonical one (a kernel's) must re-encode to its own bytes; the fuzzed
// input must never panic and decode, encode, decode, encode must be stable.
func genFuzz(m *Model, f *jen.File) {
	f.Comment("fuzzSeed is a seed of a fuzz target: the attributes of one set, named")
	f.Comment("after the message they were found in. A canonical seed is the kernel's")
	f.Comment("own encoding, which encoding the decoded value must reproduce.")
	f.Type().Id("fuzzSeed").Struct(
		jen.Id("name").String(),
		jen.Id("data").Index().Byte(),
		jen.Id("canonical").Bool(),
	)
	for _, set := range m.Sets {
		genFuzzTarget(f, set)
	}
}

// genFuzzTarget emits the fuzz target of set.
func genFuzzTarget(f *jen.File, set *Set) {
	f.Comment(fmt.Sprintf("Fuzz%s fuzzes the decoder of %s.", set.GoName, set.AS.Name))
	f.Func().Id("Fuzz"+set.GoName).Params(jen.Id("f").Op("*").Qual("testing", "F")).Block(
		jen.Id("seeds").Op(":=").Id("fuzzSeeds").Call(jen.Id("f"), jen.Id("schema"+set.GoName)),
		jen.If(jen.Len(jen.Id("seeds")).Op("==").Lit(0)).Block(
			jen.Id("f").Dot("Fatal").Call(jen.Lit("no seed for "+set.AS.Name+": add a golden message or a request that holds it")),
		),
		jen.For(jen.List(jen.Id("_"), jen.Id("s")).Op(":=").Range().Id("seeds")).Block(
			jen.Var().Id("v").Id(set.GoName),
			jen.If(jen.Err().Op(":=").Id("v").Dot("UnmarshalAttributes").Call(jen.Id("s").Dot("data")), jen.Err().Op("!=").Nil()).Block(
				jen.Id("f").Dot("Fatalf").Call(jen.Lit("seed from %s: %v"), jen.Id("s").Dot("name"), jen.Err()),
			),
			jen.If(jen.Id("enc").Op(":=").Id("v").Dot("AppendAttributes").Call(jen.Nil()), jen.Id("s").Dot("canonical").Op("&&").Op("!").Qual("bytes", "Equal").Call(jen.Id("enc"), jen.Id("s").Dot("data"))).Block(
				jen.Id("f").Dot("Errorf").Call(jen.Lit("seed from %s: re-encoding differs from the kernel's bytes:\nkernel %x\nours   %x"), jen.Id("s").Dot("name"), jen.Id("s").Dot("data"), jen.Id("enc")),
			),
			jen.Id("f").Dot("Add").Call(jen.Id("s").Dot("data")),
		),
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
