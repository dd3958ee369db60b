package ctnetlink

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/ctspec/ctspec/internal/spec"
)

// TestBPFValuesFromSpec checks the size and byte order the event filter
// loads each value with against the spec file itself.
func TestBPFValuesFromSpec(t *testing.T) {
	sp, err := spec.Load(filepath.Join("..", "spec", "conntrack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		v         bpfValue
		set, attr string
	}{
		{bpfMark, "conntrack-attrs", "mark"},
		{bpfStatus, "conntrack-attrs", "status"},
		{bpfZone, "conntrack-attrs", "zone"},
		{bpfTupleZone, "tuple-attrs", "tuple-zone"},
		{bpfProtoNum, "tuple-proto-attrs", "proto-num"},
		{bpfSrcPort, "tuple-proto-attrs", "proto-src-port"},
		{bpfDstPort, "tuple-proto-attrs", "proto-dst-port"},
		{bpfV4Src, "tuple-ip-attrs", "ip-v4-src"},
		{bpfV4Dst, "tuple-ip-attrs", "ip-v4-dst"},
		{bpfV6Src, "tuple-ip-attrs", "ip-v6-src"},
		{bpfV6Dst, "tuple-ip-attrs", "ip-v6-dst"},
	} {
		a := findSpecAttr(t, sp, c.set, c.attr)
		want := map[string]int{"u8": 1, "u16": 2, "u32": 4}[a.Type]
		bigEndian := a.ByteOrder == "big-endian" || a.DisplayHint == "ipv4" || a.DisplayHint == "ipv6"
		if a.DisplayHint == "ipv6" {
			want = 16
		}
		got, ok := c.v.size(schema)
		if got != want || ok != (want == 1 || bigEndian) {
			t.Errorf("%s/%s: loads %d bytes (comparable %t), spec says %s %s %s", c.set, c.attr, got, ok, a.Type, a.ByteOrder, a.DisplayHint)
		}
	}
	if !bpfLoadable(schema) {
		t.Error("the event filter cannot load the values of this spec")
	}
}

func findSpecAttr(t *testing.T, sp *spec.Spec, set, name string) *spec.Attribute {
	t.Helper()
	for i := range sp.AttributeSets {
		if sp.AttributeSets[i].Name != set {
			continue
		}
		for j := range sp.AttributeSets[i].Attributes {
			if a := sp.AttributeSets[i].Attributes[j]; a.Name == name {
				return a
			}
		}
	}
	t.Fatalf("spec has no %s/%s", set, name)
	return nil
}

// TestBPFByteOrderFromSchema changes one value's byte order or size in a
// copy of the schema table at a time: the compiler must then refuse to
// load it.
func TestBPFByteOrderFromSchema(t *testing.T) {
	for _, v := range []bpfValue{bpfMark, bpfStatus, bpfZone, bpfTupleZone, bpfSrcPort, bpfDstPort, bpfV4Src, bpfV6Dst} {
		for _, change := range []func(*schemaAttr){
			func(a *schemaAttr) { a.bigEndian = false },
			func(a *schemaAttr) { a.size = 8 },
		} {
			tab := slices.Clone(schema)
			tab[v.set].attrs = slices.Clone(schema[v.set].attrs)
			change(&tab[v.set].attrs[v.attr])
			if bpfLoadable(tab) {
				t.Errorf("%s/%s: loadable with %+v", tab[v.set].name, tab[v.set].attrs[v.attr].name, tab[v.set].attrs[v.attr])
			}
		}
	}
	// A protocol number is one byte: no byte order to get wrong, a size
	// to.
	tab := slices.Clone(schema)
	tab[bpfProtoNum.set].attrs = slices.Clone(schema[bpfProtoNum.set].attrs)
	tab[bpfProtoNum.set].attrs[bpfProtoNum.attr].size = 2
	if bpfLoadable(tab) {
		t.Error("proto-num: loadable as 2 bytes")
	}
}
