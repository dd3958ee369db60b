package spec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const head = "# Linux 6.18\nname: t\nprotocol: netlink-raw\ndoc: test\n"

func TestParseResolves(t *testing.T) {
	src := head + `definitions:
  -
    name: colour
    type: enum
    value-start: 2
    entries:
      - red
      - green
      -
        name: blue
        value: 7
      - violet
  -
    name: bits
    type: flags
    entries:
      - low
      -
        name: high
        value: 5
attribute-sets:
  -
    name: a-attrs
    attributes:
      -
        name: x
        type: u8
      -
        name: old-y
        type: u16
        value: 5
      -
        name: z
        type: u32
      -
        name: y
        type: u16
        value: 5
`
	s, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Name string
		Num  uint64
		Line int
	}
	var entries []entry
	for _, d := range s.Definitions {
		for _, e := range d.Entries {
			entries = append(entries, entry{d.Name + "/" + e.Name, e.Num, e.Line})
		}
	}
	wantEntries := []entry{
		{"colour/red", 2, 11}, {"colour/green", 3, 12}, {"colour/blue", 7, 14}, {"colour/violet", 8, 16},
		{"bits/low", 1, 21}, {"bits/high", 1 << 5, 23},
	}
	if diff := cmp.Diff(wantEntries, entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	type attr struct {
		Name  string
		Num   int
		Line  int
		Alias string
	}
	var attrs []attr
	set := s.Set("a-attrs")
	for _, a := range set.Attributes {
		alias := ""
		if al := set.AliasOf(a); al != nil {
			alias = al.Name
		}
		attrs = append(attrs, attr{a.Name, a.Num, a.Line, alias})
	}
	// The last name listed for a value is its current one.
	wantAttrs := []attr{{"x", 1, 30, ""}, {"old-y", 5, 33, "y"}, {"z", 6, 37, ""}, {"y", 5, 40, ""}}
	if diff := cmp.Diff(wantAttrs, attrs); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("# Linux 6.18", s.HeadComment); diff != "" {
		t.Errorf("head comment (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"unknown top-level key", head + "colour: red\n", `t.yaml:5: unknown key "colour" (not in the netlink-raw schema for the top level)`},
		{"unknown attribute key", head + "attribute-sets:\n  -\n    name: a\n    attributes:\n      -\n        name: x\n        go-name: X\n", `t.yaml:11: unknown key "go-name" (not in the netlink-raw schema for an attribute)`},
		{"unknown set key", head + "attribute-sets:\n  -\n    name: a\n    colour: red\n", `t.yaml:8: unknown key "colour" (not in the netlink-raw schema for an attribute set)`},
		{"duplicate key", head + "name: u\n", `t.yaml:5: duplicate key "name"`},
		{"alias", "# Linux 6.18\nname: &n t\nprotocol: netlink-raw\nuapi-header: *n\n", `t.yaml:4: YAML aliases are not allowed`},
		{"list for a mapping", head + "operations: [1]\n", `t.yaml:5: want a mapping, got a list`},
		{"mapping for a list", head + "definitions: {a: 1}\n", `t.yaml:5: want a list, got a mapping`},
		{"list for a scalar", head + "protonum: [1]\n", `t.yaml:5: want a scalar, got a list`},
		{"bad integer", head + "protonum: many\n", "t.yaml:5: unmarshal errors:\n  line 5: cannot unmarshal !!str `many` into int"},
		{"flags out of range", head + "definitions:\n  -\n    name: f\n    type: flags\n    entries:\n      -\n        name: x\n        value: 64\n", "t.yaml:11: definition f: entry x: value 64 out of range"},
		{"negative enum", head + "definitions:\n  -\n    name: e\n    type: enum\n    value-start: -1\n    entries: [a]\n", "t.yaml:10: definition e: entry a: value -1 out of range"},
		{"empty attribute set", head + "attribute-sets:\n  -\n", "t.yaml:6: empty list item"},
		{"empty attribute", head + "attribute-sets:\n  -\n    name: a\n    attributes:\n      -\n", "t.yaml:9: empty list item"},
		{"empty definition", head + "definitions:\n  - ~\n", "t.yaml:6: empty list item"},
		{"not YAML", "name: [\n", "t.yaml: line 1: did not find expected node content"},
		{"empty file", "", "t.yaml: EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCNames(t *testing.T) {
	src := head + `definitions:
  -
    name: nf-ct-tcp-flags
    type: flags
    name-prefix: ip-ct-tcp-flag-
    enum-name: ip-ct-tcp-flags
    entries: [window-scale, challenge-ack]
  -
    name: max-len
    type: const
    name-prefix: nf-ct-
    value: 16
attribute-sets:
  -
    name: counter-attrs
    name-prefix: cta-counters-
    enum-name: ctattr-counters
    attributes:
      - {name: packets, type: u64}
      - {name: packets-old, type: u32}
  -
    name: plain-attrs
    attributes:
      - {name: x, type: u8}
operations:
  name-prefix: ipctnl-msg-ct-
  list:
    - {name: new, value: 0}
    - {name: exp-new, value: 256}
mcast-groups:
  list:
    - {name: conntrack-new, value: 1}
    - {name: conntrack-exp-new, value: 4, c-define-name: nfnlgrp-conntrack-exp-new}
`
	s, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	flags, max := s.Definition("nf-ct-tcp-flags"), s.Definition("max-len")
	counters, plain := s.Set("counter-attrs"), s.Set("plain-attrs")
	got := []string{
		flags.CName(flags.Entries[0]),
		flags.CName(flags.Entries[1]),
		flags.CEnumName(),
		max.CConstName(),
		max.CEnumName(),
		counters.CName(counters.Attr("packets")),
		counters.CName(counters.Attr("packets-old")),
		counters.CEnumName(),
		plain.CName(plain.Attr("x")),
		plain.CEnumName(),
		s.Operations.CName(s.Operations.List[0]),
		s.Operations.CName(s.Operations.List[1]),
		s.McastGroups.List[0].CName(),
		s.McastGroups.List[1].CName(),
	}
	want := []string{
		"IP_CT_TCP_FLAG_WINDOW_SCALE",
		"IP_CT_EXP_CHALLENGE_ACK", // a listed exception
		"ip_ct_tcp_flags",
		"NF_CT_MAX_LEN",
		"",
		"CTA_COUNTERS_PACKETS",
		"CTA_COUNTERS32_PACKETS", // a listed exception
		"ctattr_counters",
		"X",
		"",
		"IPCTNL_MSG_CT_NEW",
		"IPCTNL_MSG_EXP_NEW", // a listed exception
		"CONNTRACK_NEW",
		"NFNLGRP_CONNTRACK_EXP_NEW",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kernel names (-want +got):\n%s", diff)
	}
}

func TestLookups(t *testing.T) {
	src := head + `definitions:
  - {name: d, type: const, value: 1}
attribute-sets:
  -
    name: a-attrs
    attributes:
      - {name: x, type: u8}
operations:
  list:
    - {name: by-value, value: 3}
    - {name: by-do, do: {request: {value: 4}}}
    - {name: by-dump, dump: {request: {value: 5}}}
    - {name: none, do: {request: {attributes: [x]}}}
`
	s, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{
		"set a-attrs":      s.Set("a-attrs") != nil,
		"set b-attrs":      s.Set("b-attrs") != nil,
		"definition d":     s.Definition("d") != nil,
		"definition e":     s.Definition("e") != nil,
		"attribute x":      s.Set("a-attrs").Attr("x") != nil,
		"attribute y":      s.Set("a-attrs").Attr("y") != nil,
		"x is not alias":   s.Set("a-attrs").AliasOf(s.Set("a-attrs").Attr("x")) == nil,
		"op lines are set": s.Operations.List[3].Line == 17,
	}
	want := map[string]bool{
		"set a-attrs": true, "set b-attrs": false, "definition d": true, "definition e": false,
		"attribute x": true, "attribute y": false, "x is not alias": true, "op lines are set": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lookups (-want +got):\n%s", diff)
	}
	var types []int
	for _, op := range s.Operations.List {
		types = append(types, op.MsgType())
	}
	if diff := cmp.Diff([]int{3, 4, 5, -1}, types); diff != "" {
		t.Errorf("message types (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, SortedKeys(map[string]int{"c": 1, "a": 2, "b": 3})); diff != "" {
		t.Errorf("SortedKeys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("IP_V4_SRC", CIdent("ip-v4-src")); diff != "" {
		t.Errorf("CIdent (-want +got):\n%s", diff)
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load("testdata/none.yaml"); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("Load of a missing file: %v", err)
	}
	s, err := Load("../../spec/conntrack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.File != "../../spec/conntrack.yaml" || s.Set("conntrack-attrs") == nil {
		t.Errorf("loaded %s without conntrack-attrs", s.File)
	}
}

func TestParseHeadComment(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"above the first key", "# Linux 6.18\nname: t\n", "# Linux 6.18"},
		{"separated by a blank line", "# Linux 6.18\n\nname: t\n", "# Linux 6.18"},
		{"two lines and a blank line", "# Linux 6.18\n# SPDX\n\nname: t\n", "# Linux 6.18\n# SPDX"},
		{"none", "name: t\n", ""},
		{"empty mapping", "{}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("t.yaml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, s.HeadComment); diff != "" {
				t.Errorf("head comment (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFlagBits(t *testing.T) {
	tests := []struct {
		value int
		want  uint64
	}{
		{0, 0x1},
		{7, 0x80},
		{31, 0x8000_0000},
		{62, 0x4000_0000_0000_0000},
		{63, 0x8000_0000_0000_0000},
	}
	for _, tt := range tests {
		src := fmt.Sprintf("%sdefinitions:\n  -\n    name: f\n    type: flags\n    entries:\n      -\n        name: x\n        value: %d\n", head, tt.value)
		s, err := Parse("t.yaml", []byte(src))
		if err != nil {
			t.Errorf("value %d: %v", tt.value, err)
			continue
		}
		if got := s.Definition("f").Entries[0].Num; got != tt.want {
			t.Errorf("value %d: Num = %#x, want %#x", tt.value, got, tt.want)
		}
	}
}

func TestParseAnyValues(t *testing.T) {
	src := head + `definitions:
  - {name: n, type: const, value: 16}
  - {name: s, type: const, value: sixteen}
  - {name: z, type: const, value: ~}
  - {name: absent, type: const}
`
	s, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, d := range s.Definitions {
		got[d.Name] = d.Value
	}
	want := map[string]any{"n": 16, "s": "sixteen", "z": nil, "absent": nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}

func TestParseTypeLabels(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"definition", head + "definitions:\n  -\n    name: d\n    colour: red\n", `t.yaml:8: unknown key "colour" (not in the netlink-raw schema for a definition)`},
		{"entry", head + "definitions:\n  -\n    name: d\n    type: enum\n    entries:\n      -\n        name: e\n        colour: red\n", `t.yaml:12: unknown key "colour" (not in the netlink-raw schema for an entry)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}
