package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dave/jennifer/jen"
	"github.com/google/go-cmp/cmp"

	"github.com/ctspec/ctspec/internal/spec"

	// The golden output must compile.
	_ "github.com/ctspec/ctspec/gen/testdata/basic"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "basic")
	files, err := generate(filepath.Join(dir, "spec.yaml"), "basic", overrides)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if *update {
			if err := os.WriteFile(path, f.data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./gen -update)", err)
		}
		if diff := cmp.Diff(string(want), string(f.data)); diff != "" {
			t.Errorf("%s differs from golden (-want +got):\n%s", f.name, diff)
		}
	}
}

func TestDeterministic(t *testing.T) {
	for _, p := range []string{filepath.Join("testdata", "basic", "spec.yaml"), filepath.Join("..", "spec", "conntrack.yaml")} {
		if _, err := os.Stat(p); err != nil {
			t.Logf("skipping %s: %v", p, err)
			continue
		}
		a, err := generate(p, "x", overrides)
		if err != nil {
			t.Fatal(err)
		}
		b, err := generate(p, "x", overrides)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if !bytes.Equal(a[i].data, b[i].data) {
				t.Errorf("%s: %s differs between two runs", p, a[i].name)
			}
		}
	}
}

func TestCheckMode(t *testing.T) {
	dir := t.TempDir()
	sp := filepath.Join("testdata", "basic", "spec.yaml")
	var out bytes.Buffer
	if err := run([]string{"-spec", sp, "-out", dir, "-pkg", "basic", "-check"}, &out); err == nil {
		t.Fatal("check on an empty directory succeeded, want stale")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("check mode wrote %d files", len(entries))
	}
	if err := run([]string{"-spec", sp, "-out", dir, "-pkg", "basic"}, &out); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, "zz_generated_codec.go"))
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"-spec", sp, "-out", dir, "-pkg", "basic", "-check"}, &out); err != nil {
		t.Fatalf("check after generate: %v\n%s", err, out.String())
	}
	// A second generate leaves unchanged files alone.
	if err := run([]string{"-spec", sp, "-out", dir, "-pkg", "basic"}, &out); err != nil {
		t.Fatal(err)
	}
	info2, _ := os.Stat(filepath.Join(dir, "zz_generated_codec.go"))
	if !info2.ModTime().Equal(info.ModTime()) {
		t.Error("an unchanged file was rewritten")
	}
	// Staleness is reported with a diff naming the file.
	if err := os.WriteFile(filepath.Join(dir, "zz_generated_codec.go"), []byte("package basic\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"-spec", sp, "-out", dir, "-pkg", "basic", "-check"}, &out); err == nil || !strings.Contains(out.String(), "zz_generated_codec.go") {
		t.Fatalf("stale file not reported: err=%v\n%s", err, out.String())
	}
}

const validBase = `# Linux 6.18
name: t
protocol: netlink-raw
doc: test
attribute-sets:
  -
    name: a-attrs
    attributes:
`

// validateTests are specs with problems and what validate must say of them.
var validateTests = []struct {
	name  string
	attrs string
	extra string // top-level keys after the attribute sets
	want  []string
}{
	{
		name:  "dangling nested-attributes",
		attrs: "      -\n        name: x\n        type: nest\n        nested-attributes: nope-attrs\n        doc: d\n",
		want:  []string{"t.yaml:10:", "attribute set a-attrs: attribute x", `nested-attributes "nope-attrs" is not an attribute set`},
	},
	{
		name:  "duplicate value without explicit alias",
		attrs: "      -\n        name: x\n        type: u8\n        doc: d\n      -\n        name: y\n        type: u8\n        value: 1\n        doc: d\n      -\n        name: z\n        type: u16\n        value: 1\n        doc: d\n",
		want:  []string{"t.yaml:19:", "attribute z: duplicate value 1 (same as x) with a different type"},
	},
	{
		name:  "unknown type",
		attrs: "      -\n        name: x\n        type: u9\n        doc: d\n",
		want:  []string{"t.yaml:10:", `attribute x: unknown type "u9"`},
	},
	{
		name:  "unknown enum and missing doc",
		attrs: "      -\n        name: x\n        type: u8\n        enum: colours\n",
		want:  []string{`attribute x: enum "colours" is not defined`, "attribute x: doc is missing"},
	},
	{
		name:  "nest that contains itself",
		attrs: "      -\n        name: x\n        type: nest\n        nested-attributes: a-attrs\n        doc: d\n",
		want:  []string{"attribute set a-attrs: nests itself"},
	},
	{
		name:  "alias without an explicit value",
		attrs: "      -\n        name: x\n        type: u8\n        doc: d\n        value: 2\n      -\n        name: y\n        type: u8\n        doc: d\n        value: 1\n      -\n        name: z\n        type: u8\n        doc: d\n",
		want:  []string{"attribute z: duplicate value 2 (same as x); a second name of a value needs an explicit value"},
	},
	{
		name:  "nested-attributes on a scalar, nest without a set",
		attrs: "      -\n        name: x\n        type: u8\n        nested-attributes: a-attrs\n        doc: d\n      -\n        name: y\n        type: nest\n        doc: d\n",
		want:  []string{"attribute x: nested-attributes on a u8 attribute", "attribute y: nest without nested-attributes"},
	},
	{
		name:  "references of the wrong kind",
		attrs: "      -\n        name: x\n        type: string\n        enum: s\n        doc: d\n      -\n        name: y\n        type: u8\n        struct: e\n        doc: d\n",
		extra: "definitions:\n  -\n    name: s\n    type: struct\n    members: [{name: m, type: u8}]\n  -\n    name: e\n    type: enum\n    entries: [a]\n",
		want:  []string{`attribute x: enum "s" is a struct`, "attribute x: enum on a string attribute", `attribute y: struct "e" is a enum`, "attribute y: struct on a u8 attribute"},
	},
	{
		name:  "display hints",
		attrs: "      -\n        name: x\n        type: u16\n        display-hint: ipv4\n        doc: d\n      -\n        name: y\n        type: binary\n        display-hint: ipv6\n        doc: d\n      -\n        name: z\n        type: u8\n        display-hint: colour\n        doc: d\n",
		want:  []string{"attribute x: display-hint ipv4 needs a u32", "attribute y: display-hint ipv6 needs a binary with exact-len 16", `attribute z: display-hint "colour" is not supported`},
	},
	{
		name:  "definitions",
		attrs: "      -\n        name: x\n        type: u8\n        doc: d\n",
		extra: "definitions:\n  -\n    name: e\n    type: enum\n    entries: [a, a, {name: b, value: 0}]\n  -\n    name: e\n    type: const\n    value: x\n  -\n    name: s\n    type: struct\n    members: [{name: m, type: string}, {name: p, type: pad}, {name: n, type: u8, enum: nope}]\n  -\n    name: Bad\n    type: list\n",
		want: []string{
			"definition e: entry a listed twice", "definition e: entry b has the same value 0 as a",
			"definition e: defined twice", "definition e: const needs an integer value",
			`definition s: member m: type "string" is not supported in structs`, "definition s: member p: pad needs an integer len",
			`definition s: member n: enum "nope" is not defined`, `definition "Bad": name is not kebab-case`, `definition Bad: unknown type "list"`,
		},
	},
	{
		name:  "notifications",
		attrs: "      -\n        name: x\n        type: u8\n        doc: d\n",
		extra: "operations:\n  list:\n    - {name: get, attribute-set: a-attrs, value: 1}\n" +
			"    - {name: a-ntf, notify: get}\n" +
			"    - {name: b-ntf, value: 2, notify: get, do: {request: {value: 3}}}\n" +
			"    - {name: c-ntf, value: 4, notify: nope}\n" +
			"    - {name: d-ntf, value: 5, event: {attributes: [x]}}\n" +
			"    - {name: e-ntf, value: 6, attribute-set: a-attrs, event: {attributes: [y]}}\n",
		want: []string{
			"operation a-ntf: a notification needs a value", "operation b-ntf: a notification has no do or dump",
			`operation c-ntf: notify "nope" is not an earlier operation`, "operation d-ntf: an event needs an attribute-set",
			`operation e-ntf: attribute "y" is not in set a-attrs`,
		},
	},
	{
		name:  "operations and groups",
		attrs: "      -\n        name: x\n        type: u8\n        doc: d\n",
		extra: "operations:\n  list:\n    - {name: get, attribute-set: a-attrs, do: {request: {attributes: [x, y]}}}\n    - {name: get, attribute-set: b-attrs, value: 1}\nmcast-groups:\n  list:\n    - {name: g}\n",
		want: []string{
			`operation get: attribute "y" is not in set a-attrs`, "operation get: no value", "operation get: listed twice",
			`operation get: attribute-set "b-attrs" is not defined`, "multicast group g: value is missing",
		},
	},
}

func TestValidateErrors(t *testing.T) {
	for _, tt := range validateTests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := spec.Parse("t.yaml", []byte(validBase+tt.attrs+tt.extra))
			if err != nil {
				t.Fatal(err)
			}
			var msgs []string
			for _, e := range validate(s) {
				msgs = append(msgs, e.Error())
			}
			all := strings.Join(msgs, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("errors do not mention %q:\n%s", w, all)
				}
			}
		})
	}
}

func TestLoadRejectsUnknownKeys(t *testing.T) {
	_, err := spec.Parse("t.yaml", []byte(validBase+"      -\n        name: x\n        type: u8\n        go-name: X\n"))
	if err == nil || !strings.Contains(err.Error(), `t.yaml:12: unknown key "go-name"`) {
		t.Fatalf("got %v, want an unknown-key error at line 12", err)
	}
}

func TestGoName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ip-v4-src", "IPv4Src"},
		{"proto-icmpv6-id", "ProtoICMPv6ID"},
		{"tuple-orig", "TupleOrig"},
		{"get-stats-cpu", "GetStatsCPU"},
		{"nat-v6-minip", "NATV6MinIP"},
		{"hw-offload", "HWOffload"},
	}
	for _, tt := range tests {
		if got := goName(tt.in); got != tt.want {
			t.Errorf("goName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestGenerateAfterSync is the kernel-update workflow on fixtures: the spec
// that headergen sync produced from a newer kernel's headers
// (tools/headergen/testdata/sync.golden) generates the new attribute and the
// new status bit, and code that compiles.
func TestGenerateAfterSync(t *testing.T) {
	synced := filepath.Join("..", "tools", "headergen", "testdata", "sync.golden")
	files, err := generate(synced, "fixture", syncedOverrides)
	if err != nil {
		t.Fatalf("generate from the synced spec: %v", err)
	}
	var all strings.Builder
	for _, f := range files {
		all.Write(f.data)
	}
	for _, want := range []string{
		"FlowAttrFooBar FlowAttr = ",
		"// CTA_FOO_BAR",
		"FooBar []byte",
		"// IPS_FOO",
	} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("generated code lacks %q", want)
		}
	}
	// The output must compile: write it into a package of this module and
	// build it.
	dir, err := os.MkdirTemp(".", "synced-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, f := range files {
		if strings.HasSuffix(f.name, "_test.go") {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("go", "build", "./"+filepath.Base(dir)).CombinedOutput()
	if err != nil {
		t.Fatalf("generated code does not build: %v\n%s", err, out)
	}
}

// syncedOverrides is the override table for the headergen fixture, a small
// spec that shares its name with spec/conntrack.yaml but few of its sets.
var syncedOverrides = []override{setName("conntrack", "conntrack-attrs", "Flow")}

func TestOverrideRows(t *testing.T) {
	s, err := spec.Parse("t.yaml", []byte(validBase+
		"      -\n        name: x\n        type: u8\n        doc: d\n"+
		"      -\n        name: n\n        type: nest\n        nested-attributes: b-attrs\n        doc: d\n"+
		"  -\n    name: b-attrs\n    attributes:\n      -\n        name: y\n        type: u8\n        doc: d\n"+
		strings.Replace(notifyTail, "%s", "grp", 1)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		row  override
		want string // the message, or "" for a valid row
	}{
		{"set", setName("t", "a-attrs", "A"), ""},
		{"field", fieldName("t", "a-attrs", "x", "X"), ""},
		{"pointer nest", pointerNest("t", "a-attrs", "n"), ""},
		{"other spec", setName("other", "no-attrs", "No"), ""},
		{"missing set", setName("t", "no-attrs", "No"), "override of attribute set no-attrs: t.yaml has no such attribute set"},
		{"missing attribute", fieldName("t", "a-attrs", "z", "Z"), "override of a-attrs/z: attribute set a-attrs (t.yaml:7) has no attribute z"},
		{"missing nest", pointerNest("t", "b-attrs", "n"), "override of b-attrs/n: attribute set b-attrs (t.yaml:19) has no attribute n"},
		{"pointer on a scalar", pointerNest("t", "a-attrs", "x"), "override of a-attrs/x: a pointer nest, but t.yaml:10 makes it a u8 attribute"},
		{"foreign type on a scalar", foreignNest("t", "a-attrs", "x", "example.com/p", "T"), "override of a-attrs/x: a nest of another spec, but t.yaml:10 makes it a u8 attribute"},
		{"foreign type on a nest", foreignNest("t", "a-attrs", "n", "example.com/p", "T"), "override of a-attrs/n: a nest of another spec, but t.yaml:14 makes it a nest attribute"},
		{"missing definition", defName("t", "colour", "Colour"), "override of definition colour: t.yaml has no such definition"},
		{"entry", entryName("t", "colours", "blue", "ColoursAzure"), ""},
		{"operation", opName("t", "get", "MsgFetch"), ""},
		{"missing entry", entryName("t", "colours", "green", "ColoursGreen"), "override of colours/green: definition colours (t.yaml:27) has no entry green"},
		{"entry of a missing definition", entryName("t", "colour", "red", "ColourRed"), "override of definition colour: t.yaml has no such definition"},
		{"entry of a const", entryName("t", "limit", "red", "LimitRed"), "override of limit/red: an entry, but t.yaml:38 makes limit a const definition"},
		{"missing operation", opName("t", "put", "MsgPut"), "override of operation put: t.yaml has no such operation"},
		{"notification", opName("t", "new-ntf", "MsgNewNtf"), "override of operation new-ntf: t.yaml:56 makes it a notification, which has no MsgType constant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := resolveOverrides(s, []override{tt.row})
			var got []string
			for _, e := range errs {
				se, ok := e.(*spec.Error)
				if !ok || se.File != filepath.Join("gen", "gen_test.go") || se.Line != tt.row.line || se.Line == 0 {
					t.Errorf("error %v does not give the row's position gen/gen_test.go:%d", e, tt.row.line)
				}
				if ok {
					got = append(got, se.Msg)
				}
			}
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOverrideTableApplies checks that the rows of the override table for
// each spec all name something the spec has, and that each one
// changes the model: a Go name (of a set, field, entry or operation) or a
// pointer nest or a foreign type.
func TestOverrideTableApplies(t *testing.T) {
	for _, name := range []string{"conntrack", "cttimeout", "nfqueue"} {
		t.Run(name, func(t *testing.T) { testOverrideTableApplies(t, filepath.Join("..", "spec", name+".yaml")) })
	}
}

func testOverrideTableApplies(t *testing.T, path string) {
	s, err := spec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	names, errs := resolveOverrides(s, overrides)
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	m, err := buildModel(s, "x", names)
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range m.Sets {
		if n, ok := names.sets[set.AS.Name]; ok && set.GoName != n {
			t.Errorf("set %s: Go name %s, want %s", set.AS.Name, set.GoName, n)
		}
		for _, a := range set.Attrs {
			key := set.AS.Name + "/" + a.A.Name
			_, isPtr := a.Kind.(ptrNestKind)
			if names.ptrs[key] != isPtr {
				t.Errorf("%s: pointer nest %v, want %v", key, isPtr, names.ptrs[key])
			}
			fk, isForeign := a.Kind.(foreignKind)
			if ft, ok := names.foreign[key]; ok != isForeign || ok && (fk.pkg != ft.pkg || fk.name != ft.name) {
				t.Errorf("%s: kind %#v, want the foreign type %+v", key, a.Kind, ft)
			}
			if n, ok := names.fields[key]; ok && a.Field != n {
				t.Errorf("%s: field %s, want %s", key, a.Field, n)
			}
		}
	}
	seen := map[string]bool{}
	for _, e := range m.Enums {
		for _, en := range e.Entries {
			key := e.Def.Name + "/" + en.Entry.Name
			if n, ok := names.entries[key]; ok {
				seen["entry "+key] = true
				if en.GoName != n {
					t.Errorf("entry %s: Go name %s, want %s", key, en.GoName, n)
				}
			}
		}
	}
	for _, op := range m.Ops {
		if n, ok := names.ops[op.O.Name]; ok {
			seen["op "+op.O.Name] = true
			if op.GoName != n {
				t.Errorf("operation %s: Go name %s, want %s", op.O.Name, op.GoName, n)
			}
		}
	}
	for key := range names.entries {
		if !seen["entry "+key] {
			t.Errorf("entry %s: override names no constant of the model", key)
		}
	}
	for name := range names.ops {
		if !seen["op "+name] {
			t.Errorf("operation %s: override names no constant of the model", name)
		}
	}
}

// TestKindsAnswerForThemselves checks, for every attribute of
// spec/conntrack.yaml and the golden spec, that its kind describes the wire
// format the spec gives: type, nested set, byte order and length.
func TestKindsAnswerForThemselves(t *testing.T) {
	for _, p := range []string{filepath.Join("..", "spec", "conntrack.yaml"), filepath.Join("..", "spec", "nfqueue.yaml"), filepath.Join("testdata", "basic", "spec.yaml")} {
		s, err := spec.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		names, errs := resolveOverrides(s, overrides)
		if len(errs) > 0 {
			t.Fatal(errors.Join(errs...))
		}
		m, err := buildModel(s, "x", names)
		if err != nil {
			t.Fatal(err)
		}
		for _, set := range m.Sets {
			for _, a := range set.Attrs {
				checkWire(t, s, a)
			}
		}
	}
}

// checkWire compares the wire format of a's kind with its spec entry.
func checkWire(t *testing.T, s *spec.Spec, a *Attr) {
	t.Helper()
	sa := a.A
	type wire struct {
		Type       string
		Nested     string
		BigEndian  bool
		Min, Max   int
		SchemaNest bool
	}
	// Strings, nests and padding take a payload of any length; a flag has
	// none.
	want := wire{Type: sa.Type, Nested: sa.NestedAttributes, Min: 0, Max: -1}
	if want.Type == "unused" {
		want.Type = "pad"
	}
	if want.Type == "flag" {
		want.Max = 0
	}
	if n := scalarBits(sa.Type); n > 0 {
		want.Min, want.Max = n/8, n/8
		want.BigEndian = sa.ByteOrder == "big-endian" && n > 8 || sa.DisplayHint == "ipv4"
	}
	if sa.Type == "binary" {
		want.Min, want.Max = lenCheck(sa, "exact"), lenCheck(sa, "exact")
		if want.Min < 0 {
			want.Min, want.Max = max(lenCheck(sa, "min"), 0), lenCheck(sa, "max")
		}
		// An address hint makes the payload exactly one address.
		switch sa.DisplayHint {
		case "ipv4":
			want.Min, want.Max = 4, 4
		case "ipv6":
			want.Min, want.Max = 16, 16
		}
		if d := s.Definition(sa.Struct); d != nil {
			want.Min, want.Max = 0, 0
			for _, mem := range d.Members {
				n := scalarBits(mem.Type) / 8
				if l, ok := mem.Len.(int); ok {
					n = l
				}
				want.Min += n
				want.Max += n
			}
		}
		want.BigEndian = sa.DisplayHint == "ipv4" || sa.DisplayHint == "ipv6"
	}
	want.SchemaNest = sa.Type == "nest"
	w := a.Kind.Wire()
	got := wire{Type: w.Type, BigEndian: w.BigEndian, Min: w.Min, Max: w.Max}
	if w.Nested != nil {
		got.Nested = w.Nested.AS.Name
	}
	// The schema entry names the nested set's index (or -1), the fixed
	// payload size (or 0) and the byte order, as the spec says.
	var buf bytes.Buffer
	f := jen.NewFile("x")
	f.Var().Id("e").Op("=").Index().Struct(jen.Id("n").String(), jen.Id("i"), jen.Id("s").Int(), jen.Id("b").Bool()).Values(schemaEntry(sa.Name, w, func(*Set) int { return 7 }))
	if err := f.Render(&buf); err != nil {
		t.Fatal(err)
	}
	wantSize := 0
	if want.Min == want.Max && want.Min > 0 {
		wantSize = want.Min
	}
	tail := fmt.Sprintf(", %d, %t}", wantSize, want.BigEndian)
	got.SchemaNest = strings.Contains(buf.String(), `{"`+sa.Name+`", 7`+tail)
	if !got.SchemaNest && !strings.Contains(buf.String(), `{"`+sa.Name+`", -1`+tail) {
		t.Errorf("%s/%s: schema entry %s, want size %d and big-endian %t", a.Set.AS.Name, sa.Name, buf.String(), wantSize, want.BigEndian)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s/%s: wire (-want +got):\n%s", a.Set.AS.Name, sa.Name, diff)
	}
}

// notifyTail holds the definitions, operations and multicast groups of the
// notification and override tests, after an attribute set a-attrs with an
// attribute x; %s is the multicast group of the notification.
const notifyTail = `definitions:
  -
    name: colours
    type: enum
    doc: d
    entries:
      -
        name: red
        doc: d
      -
        name: blue
        doc: d
  -
    name: limit
    type: const
    value: 3
    doc: d
operations:
  enum-model: directional
  list:
    -
      name: get
      doc: d
      attribute-set: a-attrs
      do:
        request:
          value: 0x101
        reply:
          value: 0x100
          attributes: [ x ]
    -
      name: new-ntf
      doc: d
      value: 0x100
      attribute-set: a-attrs
      mcgrp: %s
      event:
        attributes: [ x ]
mcast-groups:
  list:
    -
      name: grp
      value: 1
`

const notifySpec = validBase + `      -
        name: x
        type: u8
        doc: d
` + notifyTail

// TestNotifications: a notification reuses the message type of a reply, so
// it gets no MsgType constant of its own (a second constant of the same
// value would break the String switch), and its group must exist.
func TestNotifications(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(notifySpec, "%s", "grp", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := generate(p, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, f := range files {
		all.Write(f.data)
	}
	if !strings.Contains(all.String(), "MsgGet MsgType = 0x0101") {
		t.Errorf("generated code lacks MsgGet:\n%s", all.String())
	}
	if strings.Contains(all.String(), "MsgNewNtf") {
		t.Errorf("a notification got a MsgType constant:\n%s", all.String())
	}

	s, err := spec.Parse("t.yaml", []byte(strings.Replace(notifySpec, "%s", "nope", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range validate(s) {
		msgs = append(msgs, e.Error())
	}
	if want := `operation new-ntf: mcgrp "nope" is not a multicast group`; !strings.Contains(strings.Join(msgs, "\n"), want) {
		t.Errorf("errors %q do not mention %q", msgs, want)
	}
}

// TestOverrideEntryAndOp: an entryName or opName row names the whole
// constant, and only the entry or operation it names.
func TestOverrideEntryAndOp(t *testing.T) {
	s, err := spec.Parse("t.yaml", []byte(strings.Replace(notifySpec, "%s", "grp", 1)))
	if err != nil {
		t.Fatal(err)
	}
	names, errs := resolveOverrides(s, []override{
		entryName("t", "colours", "blue", "ColoursAzure"),
		opName("t", "get", "MsgFetch"),
	})
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	m, err := buildModel(s, "t", names)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range m.Enums {
		for _, en := range e.Entries {
			got = append(got, en.GoName)
		}
	}
	for _, op := range m.Ops {
		got = append(got, op.GoName)
	}
	if diff := cmp.Diff([]string{"ColoursRed", "ColoursAzure", "MsgFetch"}, got); diff != "" {
		t.Errorf("Go names (-want +got):\n%s", diff)
	}
}

// TestAliasLastNameWins: of two names of one value, the last listed is the
// current one (YNL consumers map a value to the last name listed), so it
// gets the struct field and the earlier one the Deprecated constant.
func TestAliasLastNameWins(t *testing.T) {
	s, err := spec.Parse("t.yaml", []byte(validBase+"      -\n        name: old\n        type: u8\n        doc: d\n      -\n        name: current\n        type: u8\n        value: 1\n        doc: d\n"))
	if err != nil {
		t.Fatal(err)
	}
	if errs := validate(s); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	m, err := buildModel(s, "t", &nameTable{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range m.Sets[0].Attrs {
		alias := ""
		if a.Alias != nil {
			alias = a.Alias.A.Name
		}
		got = append(got, fmt.Sprintf("%s field=%v alias-of=%q", a.A.Name, a.HasField(), alias))
	}
	want := []string{`old field=false alias-of="current"`, `current field=true alias-of=""`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
}
