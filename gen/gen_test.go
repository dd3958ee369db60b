package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctspec/ctspec/internal/spec"

	// The golden output must compile.
	_ "github.com/ctspec/ctspec/gen/testdata/basic"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "basic")
	files, err := generate(filepath.Join(dir, "spec.yaml"), "basic")
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
		a, err := generate(p, "x")
		if err != nil {
			t.Fatal(err)
		}
		b, err := generate(p, "x")
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

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name  string
		attrs string
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := spec.Parse("t.yaml", []byte(validBase+tt.attrs))
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
	files, err := generate(synced, "fixture")
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

const notifySpec = validBase + `      -
        name: x
        type: u8
        doc: d
definitions:
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

// TestNotifications: a notification reuses the message type of a reply, so
// it gets no MsgType constant of its own (a second constant of the same
// value would break the String switch), and its group must exist.
func TestNotifications(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(notifySpec, "%s", "grp", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := generate(p, "t")
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

// TestOverrideEntryAndOp: an "entry:" or "op:" row of goNameOverrides names
// the whole constant.
func TestOverrideEntryAndOp(t *testing.T) {
	saved := goNameOverrides
	t.Cleanup(func() { goNameOverrides = saved })
	goNameOverrides = map[string]string{
		"entry:colours/blue": "ColoursAzure",
		"op:get":             "MsgFetch",
	}
	s, err := spec.Parse("t.yaml", []byte(strings.Replace(notifySpec, "%s", "grp", 1)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := buildModel(s, "t")
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
	m, err := buildModel(s, "t")
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
