package main

import (
	"fmt"

	"github.com/dave/jennifer/jen"
)

const fuzzattrPkg = "github.com/ctspec/ctspec/internal/fuzzattr"

// genFuzz emits one fuzz target per attribute set, each a call of the
// shared harness in internal/fuzzattr. Seeds come from fuzzSeeds, written
// by hand beside the generated package: fuzzSeeds(tb testing.TB, set int)
// []fuzzattr.Seed returns every payload of the set (a schema index) it
// finds in the package's golden messages and requests. The harness fails a
// target without a seed, checks every seed and fuzzes decode and encode.
func genFuzz(m *Model, f *jen.File) {
	for _, set := range m.Sets {
		f.Comment(fmt.Sprintf("Fuzz%s fuzzes the decoder of %s.", set.GoName, set.AS.Name))
		f.Func().Id("Fuzz" + set.GoName).Params(jen.Id("f").Op("*").Qual("testing", "F")).Block(
			jen.Qual(fuzzattrPkg, "Run").Types(jen.Id(set.GoName)).Call(
				jen.Id("f"), jen.Lit(set.AS.Name), jen.Id("fuzzSeeds").Call(jen.Id("f"), jen.Id("schema"+set.GoName)),
			),
		)
	}
}
