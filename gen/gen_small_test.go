package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctspec/ctspec/internal/spec"
)

// TestGenerateSmallSpecs generates from small specs and checks that each
// section of the output appears exactly when the spec has what it needs.
func TestGenerateSmallSpecs(t *testing.T) {
	const oneAttr = "      -\n        name: x\n        type: u8\n        doc: d\n"
	tests := []struct {
		name    string
		src     string
		file    string
		want    []string
		notWant []string
		wantErr string
	}{
		{
			name:    "no consts, operations or groups",
			src:     validBase + oneAttr,
			file:    "zz_generated_enums.go",
			notWant: []string{"const (", "MsgType", "Group"},
		},
		{
			name:    "a const only",
			src:     validBase + oneAttr + "definitions:\n  - {name: max-len, type: const, value: 16}\n",
			file:    "zz_generated_enums.go",
			want:    []string{"const (\n\t// MaxLen is max-len.\n\tMaxLen = 16 // MAX_LEN\n)"},
			notWant: []string{"MsgType", "Group"},
		},
		{
			name:    "an operation only",
			src:     validBase + oneAttr + "operations:\n  list:\n    - {name: get, attribute-set: a-attrs, value: 1}\n",
			file:    "zz_generated_enums.go",
			want:    []string{"type MsgType uint16", "\tMsgGet MsgType = 0x0001 // GET\n"},
			notWant: []string{"type Group"},
		},
		{
			name:    "a group only",
			src:     validBase + oneAttr + "mcast-groups:\n  list:\n    - {name: news, value: 1}\n",
			file:    "zz_generated_enums.go",
			want:    []string{"type Group uint32"},
			notWant: []string{"MsgType"},
		},
		{
			name: "a struct with a doc",
			src: validBase + oneAttr + "      -\n        name: p\n        type: binary\n        struct: pair\n        doc: d\n" +
				"definitions:\n  -\n    name: pair\n    type: struct\n    doc: two small numbers\n    members: [{name: a, type: u8}, {name: b, type: u8}]\n",
			file: "zz_generated_types.go",
			want: []string{"// Pair is the 2-byte binary payload pair.\n// Two small numbers.\ntype Pair struct"},
		},
		{
			name: "a struct without a doc",
			src:  validBase + oneAttr + "      -\n        name: p\n        type: binary\n        struct: pair\n        doc: d\n" + "definitions:\n  -\n    name: pair\n    type: struct\n    members: [{name: a, type: u8}, {name: b, type: u8}]\n",
			file: "zz_generated_types.go",
			want: []string{"// Pair is the 2-byte binary payload pair.\ntype Pair struct"},
		},
		{
			name:    "a big-endian u8 has no byte order",
			src:     validBase + "      -\n        name: x\n        type: u8\n        byte-order: big-endian\n        doc: d\n",
			file:    "zz_generated_codec.go",
			want:    []string{"d.Uint8()", "e.Uint8("},
			notWant: []string{"Uint8BE"},
		},
		{
			name: "a big-endian u16",
			src:  validBase + "      -\n        name: x\n        type: u16\n        byte-order: big-endian\n        doc: d\n",
			file: "zz_generated_codec.go",
			want: []string{"d.Uint16BE()", "e.Uint16BE("},
		},
		{
			name: "binary without length checks",
			src:  validBase + "      -\n        name: b\n        type: binary\n        doc: d\n",
			file: "zz_generated_codec.go",
			want: []string{"d.BytesCopy(0, -1)"},
		},
		{
			name: "binary of exact length 6",
			src:  validBase + "      -\n        name: b\n        type: binary\n        checks: {exact-len: 6}\n        doc: d\n",
			file: "zz_generated_codec.go",
			want: []string{"d.BytesCopy(6, 6)"},
		},
		{
			name: "binary of exact length 0",
			src:  validBase + "      -\n        name: b\n        type: binary\n        checks: {exact-len: 0}\n        doc: d\n",
			file: "zz_generated_codec.go",
			want: []string{"d.BytesCopy(0, 0)"},
		},
		{
			name: "binary of 2 to 6 bytes",
			src:  validBase + "      -\n        name: b\n        type: binary\n        checks: {min-len: 2, max-len: 6}\n        doc: d\n",
			file: "zz_generated_codec.go",
			want: []string{"d.BytesCopy(2, 6)"},
		},
		{
			name: "binary of at least 2 bytes",
			src:  validBase + "      -\n        name: b\n        type: binary\n        checks: {min-len: 2}\n        doc: d\n",
			file: "zz_generated_codec.go",
			want: []string{"d.BytesCopy(2, -1)"},
		},
		{
			name: "binary of at most 0 bytes",
			src:  validBase + "      -\n        name: b\n        type: binary\n        checks: {max-len: 0}\n        doc: d\n",
			file: "zz_generated_codec.go",
			want: []string{"d.BytesCopy(0, 0)"},
		},
		{
			name: "doc of a binary without length checks",
			src:  validBase + "      -\n        name: b\n        type: binary\n        doc: d\n",
			file: "zz_generated_types.go",
			want: []string{"// B is b (B, binary): d."},
		},
		{
			name: "doc of a binary of exact length 6",
			src:  validBase + "      -\n        name: b\n        type: binary\n        checks: {exact-len: 6}\n        doc: d\n",
			file: "zz_generated_types.go",
			want: []string{"// B is b (B, binary, 6 bytes): d."},
		},
		{
			name: "doc of a binary of 2 to 6 bytes",
			src:  validBase + "      -\n        name: b\n        type: binary\n        checks: {min-len: 2, max-len: 6}\n        doc: d\n",
			file: "zz_generated_types.go",
			want: []string{"// B is b (B, binary, at most 6 bytes): d."},
		},
		{
			name: "doc of a binary of at least 2 bytes",
			src:  validBase + "      -\n        name: b\n        type: binary\n        checks: {min-len: 2}\n        doc: d\n",
			file: "zz_generated_types.go",
			want: []string{"// B is b (B, binary, at least 2 bytes): d."},
		},
		{
			name: "doc of a binary of at most 0 bytes",
			src:  validBase + "      -\n        name: b\n        type: binary\n        checks: {max-len: 0}\n        doc: d\n",
			file: "zz_generated_types.go",
			want: []string{"// B is b (B, binary, 0 bytes): d."},
		},
		{
			name: "an enum only a struct member uses takes its width",
			src: validBase + "      -\n        name: p\n        type: binary\n        struct: pair\n        doc: d\n" +
				"definitions:\n  - {name: colour, type: enum, entries: [red, blue]}\n  -\n    name: pair\n    type: struct\n    members: [{name: a, type: u8, enum: colour}, {name: b, type: u8}]\n",
			file: "zz_generated_enums.go",
			want: []string{"type Colour uint8\n"},
		},
		{
			name: "an enum of a u64 attribute is 64 bits wide",
			src:  validBase + "      -\n        name: x\n        type: u64\n        enum: colour\n        doc: d\n" + "definitions:\n  - {name: colour, type: enum, entries: [red, {name: blue, value: 4294967296}]}\n",
			file: "zz_generated_enums.go",
			want: []string{"type Colour uint64\n", "ColourBlue Colour = 4294967296"},
		},
		{
			name: "an enum of a u8 attribute holds 255",
			src:  validBase + "      -\n        name: x\n        type: u8\n        enum: colour\n        doc: d\n" + "definitions:\n  - {name: colour, type: enum, entries: [{name: red, value: 255}]}\n",
			file: "zz_generated_enums.go",
			want: []string{"type Colour uint8\n", "ColourRed Colour = 255"},
		},
		{
			name:    "an enum of a u8 attribute cannot hold 256",
			src:     validBase + "      -\n        name: x\n        type: u8\n        enum: colour\n        doc: d\n" + "definitions:\n  - {name: colour, type: enum, entries: [{name: red, value: 256}]}\n",
			wantErr: "definition colour: entry red: value 256 does not fit in 8 bits",
		},
		{
			name:    "an enum of no attribute is 32 bits wide",
			src:     validBase + "      -\n        name: x\n        type: u8\n        doc: d\n" + "definitions:\n  - {name: colour, type: enum, entries: [{name: red, value: 4294967296}]}\n",
			wantErr: "definition colour: entry red: value 4294967296 does not fit in 32 bits",
		},
		{
			name: "struct members with a length",
			src: validBase + "      -\n        name: p\n        type: binary\n        struct: pair\n        doc: d\n" +
				"definitions:\n  -\n    name: pair\n    type: struct\n    members: [{name: a, type: u8}, {name: p, type: pad, len: 3}, {name: b, type: binary, len: 4}]\n",
			file: "zz_generated_types.go",
			want: []string{"// Pair is the 8-byte binary payload pair.\n"},
		},
		{
			name:    "an unused struct is not generated",
			src:     validBase + oneAttr + "definitions:\n  -\n    name: pair\n    type: struct\n    members: [{name: a, type: u8}]\n",
			file:    "zz_generated_types.go",
			notWant: []string{"Pair"},
		},
		{
			name: "attribute 31 fits 32 presence bits",
			src:  validBase + "      -\n        name: x\n        type: u8\n        value: 31\n        doc: d\n",
			file: "zz_generated_types.go",
			want: []string{"\tpresent uint32\n"},
		},
		{
			name: "attribute 32 needs 64 presence bits",
			src:  validBase + "      -\n        name: x\n        type: u8\n        value: 32\n        doc: d\n",
			file: "zz_generated_types.go",
			want: []string{"\tpresent uint64\n"},
		},
		{
			name: "encode order from the first non-empty reply",
			src: validBase + oneAttr + "      -\n        name: y\n        type: u8\n        doc: d\n" +
				"operations:\n  list:\n    - {name: get, attribute-set: a-attrs, value: 1, dump: {reply: {attributes: []}}, do: {reply: {attributes: [y, x]}}}\n",
			file: "zz_generated_codec.go",
			want: []string{"e.Uint8(uint16(AAttrY), v.Y)\n\t}\n\tif v.present&(1<<AAttrX) != 0 {\n\t\te.Uint8(uint16(AAttrX), v.X)"},
		},
		{
			name: "encode order without operations",
			src:  validBase + oneAttr + "      -\n        name: y\n        type: u8\n        doc: d\n",
			file: "zz_generated_codec.go",
			want: []string{"e.Uint8(uint16(AAttrX), v.X)\n\t}\n\tif v.present&(1<<AAttrY) != 0 {\n\t\te.Uint8(uint16(AAttrY), v.Y)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "t.yaml")
			if err := os.WriteFile(p, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			files, err := generate(p, "x", nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var out string
			for _, f := range files {
				if f.name == tt.file {
					out = string(f.data)
				}
			}
			if out == "" {
				t.Fatalf("no %s generated", tt.file)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s lacks %q:\n%s", tt.file, w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("%s has %q:\n%s", tt.file, w, out)
				}
			}
		})
	}
}

func TestLineDiff(t *testing.T) {
	lines := func(n int) string { return strings.Repeat("x\n", n-1) + "x" }
	tests := []struct {
		name, committed, generated, want string
	}{
		{"equal", "x\ny", "x\ny", ""},
		{"line removed", "a\nb\nc", "a\nc", "-2: b\n"},
		{"line added", "a\nc", "a\nb\nc", "+2: b\n"},
		{"line changed", "a\nb", "a\nc", "+2: c\n-2: b\n"},
		{"from nothing", "", "x", "+1: x\n-1: \n"},
		{"shifted by one", "p\nq\nr\ns", "q\nr\ns\nt", "-1: p\n+4: t\n"},
		{"swapped", "p\nq", "q\np", "+1: q\n-2: q\n"},
		{"several", "a\nb\nc\nd\ne", "a\nc\nd\nf\ne", "-2: b\n+4: f\n"},
		{"at the size limit", lines(4000), lines(4000), ""},
		{"over the size limit", lines(4001), lines(4000), "(4001 lines committed, 4000 generated)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, lineDiff(tt.committed, tt.generated)); diff != "" {
				t.Errorf("lineDiff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGoNameRule(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ip-v6-dst", "IPv6Dst"},
		{"ip-proto", "IPProto"},
		{"src-ip", "SrcIP"},
		{"ip", "IP"},
		{"tuple--orig", "TupleOrig"},
		{"zone", "Zone"},
	}
	for _, tt := range tests {
		if got := goName(tt.in); got != tt.want {
			t.Errorf("goName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCommonWord(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{nil, ""},
		{[]string{"tuple-orig"}, ""},
		{[]string{"tuple-orig", "tuple-reply"}, "tuple"},
		{[]string{"tuple-orig", "tuple-reply", "tuple-master"}, "tuple"},
		{[]string{"tuple-orig", "tuple-reply", "nat-src"}, ""},
		{[]string{"tuple-orig", "tuple"}, ""},
		{[]string{"tuple-orig", "tuple-"}, ""},
		{[]string{"ip-v4", "ip-6rd"}, ""},
	}
	for _, tt := range tests {
		if got := commonWord(tt.names); got != tt.want {
			t.Errorf("commonWord(%q) = %q, want %q", tt.names, got, tt.want)
		}
	}
}

// TestValidateBounds checks validate at the edges of what it accepts.
func TestValidateBounds(t *testing.T) {
	attr := func(lines string) string { return "      -\n        name: x\n" + lines + "        doc: d\n" }
	tests := []struct {
		name  string
		attrs string
		extra string
		want  string // "" when the spec is valid
	}{
		{"attribute 63", attr("        type: u8\n        value: 63\n"), "", ""},
		{"attribute 64", attr("        type: u8\n        value: 64\n"), "", "attribute x: value 64 out of range 1..63"},
		{"attribute 0", attr("        type: u8\n        value: 0\n"), "", "attribute x: value 0 out of range 1..63"},
		{"little-endian", attr("        type: u16\n        byte-order: little-endian\n"), "", ""},
		{"big-endian", attr("        type: u16\n        byte-order: big-endian\n"), "", ""},
		{"middle-endian", attr("        type: u16\n        byte-order: middle-endian\n"), "", `attribute x: unknown byte-order "middle-endian"`},
		{"ipv4 on a u32", attr("        type: u32\n        display-hint: ipv4\n"), "", ""},
		{"ipv4 on a 4-byte binary", attr("        type: binary\n        checks: {exact-len: 4}\n        display-hint: ipv4\n"), "", ""},
		{"ipv4 on a 6-byte binary", attr("        type: binary\n        checks: {exact-len: 6}\n        display-hint: ipv4\n"), "", "attribute x: display-hint ipv4 needs a u32 or a 4-byte binary"},
		{"ipv6 on a 16-byte binary", attr("        type: binary\n        checks: {exact-len: 16}\n        display-hint: ipv6\n"), "", ""},
		{"ipv6 on at least 16 bytes", attr("        type: binary\n        checks: {min-len: 16}\n        display-hint: ipv6\n"), "", ""},
		{"ipv6 on at least 4 bytes", attr("        type: binary\n        checks: {min-len: 4}\n        display-hint: ipv6\n"), "", "attribute x: display-hint ipv6 needs a binary with exact-len 16"},
		{"ipv6 on a u32", attr("        type: u32\n        display-hint: ipv6\n"), "", "attribute x: display-hint ipv6 needs a binary with exact-len 16"},
		{"operation 0", attr("        type: u8\n"), "operations:\n  list:\n    - {name: new, attribute-set: a-attrs, value: 0}\n", ""},
	}
	for _, tt := range tests {
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
			if tt.want == "" {
				if all != "" {
					t.Errorf("valid spec rejected:\n%s", all)
				}
				return
			}
			if len(msgs) != 1 || !strings.Contains(all, tt.want) {
				t.Errorf("errors:\n%s\nwant only one mentioning %q", all, tt.want)
			}
		})
	}
}
