package spec_test

import (
	"fmt"

	"github.com/ctspec/ctspec/internal/spec"
)

// Parse a spec, read the resolved value and kernel name of an attribute, and
// see a key the netlink-raw schema does not define rejected with its line.
func ExampleParse() {
	src := `# Linux 6.18
name: conntrack
protocol: netlink-raw
attribute-sets:
  -
    name: counter-attrs
    name-prefix: cta-counters-
    attributes:
      - {name: packets, type: u64, byte-order: big-endian, value: 1}
      - {name: bytes, type: u64, byte-order: big-endian}
`
	s, err := spec.Parse("conntrack.yaml", []byte(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	set := s.Set("counter-attrs")
	a := set.Attr("bytes")
	fmt.Println(a.Num, set.CName(a), a.Line)

	_, err = spec.Parse("conntrack.yaml", []byte(src+"      - {name: zero, type: u32, go-name: Zero}\n"))
	fmt.Println(err)
	// Output:
	// 2 CTA_COUNTERS_BYTES 10
	// conntrack.yaml:11: unknown key "go-name" (not in the netlink-raw schema for an attribute)
}
