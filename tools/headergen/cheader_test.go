package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// summary prints what a parsed header declares, one line per name, so that
// tests can state what they want in a readable form.
func summary(h *Header) []string {
	var out []string
	for _, e := range h.Enums {
		out = append(out, fmt.Sprintf("enum %s (line %d)", e.Name, e.Line))
		for _, m := range e.Members {
			s := fmt.Sprintf("  %s = %d", m.Name, m.Value)
			if !m.Known {
				s = fmt.Sprintf("  %s = ?", m.Name)
			}
			if m.AliasOf != "" {
				s += " alias of " + m.AliasOf
			}
			if m.Define {
				s += " (#define)"
			}
			if m.Sentinel {
				s += " sentinel"
			}
			if m.Doc != "" {
				s += fmt.Sprintf(" doc %q", m.Doc)
			}
			out = append(out, s+fmt.Sprintf(" (line %d)", m.Line))
		}
	}
	runs := map[int]int{}
	for _, d := range h.Defines {
		if _, ok := runs[d.Run]; !ok {
			runs[d.Run] = len(runs) + 1
		}
		s := fmt.Sprintf("#define %s = %d run %d", d.Name, d.Value, runs[d.Run])
		if d.Sentinel {
			s += " sentinel"
		}
		if d.Doc != "" {
			s += fmt.Sprintf(" doc %q", d.Doc)
		}
		out = append(out, s+fmt.Sprintf(" (line %d)", d.Line))
	}
	return out
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestParseFeatures(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "parser", "features.h"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader("features.h", src)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"enum ft_attr (line 25)",
		"  FT_A_UNSPEC = 0 (line 26)",
		`  FT_A_ONE = 1 doc "the first one" (line 27)`,
		"  FT_A_LATE = 1 alias of FT_A_ONE (#define) (line 56)",
		`  FT_A_TWO = 2 doc "the second one, over two lines" (line 28)`,
		`  FT_A_THREE = 3 doc "a comment above and one beside" (line 30)`,
		`  FT_A_OLD = 3 alias of FT_A_THREE (#define) doc "backwards compatibility" (line 31)`,
		"  FT_A_FIVE = 5 (line 32)",
		`  FT_A_SIX = 6 doc "a line comment" (line 33)`,
		"  FT_A_ALIAS = 5 alias of FT_A_FIVE (line 34)",
		"  FT_A_KERNEL = 6 (line 36)",
		"  FT_A_USER = 6 alias of FT_A_KERNEL (line 38)",
		"  __FT_A_MAX = 7 sentinel (line 40)",
		"enum ft_flags (line 44)",
		"  FT_F_ONE_BIT = 0 (line 45)",
		"  FT_F_ONE = 1 (line 46)",
		"  FT_F_TWO_BIT = 1 (line 47)",
		"  FT_F_TWO = 2 (line 48)",
		"  FT_F_BOTH = 3 (line 49)",
		"  FT_F_HIGH = 2147483648 (line 50)",
		"  FT_F_LAST = 6 (line 51)",
		"  FT_F_OTHER = 6 (line 52)",
		"  FT_F_NEG = -1 (line 53)",
		"enum  (line 66)",
		"  FT_ANON_ZERO = 0 (line 67)",
		"  FT_ANON_MAX = 1 sentinel (line 68)",
		`#define FT_PLAIN = 7 run 1 doc "a plain constant" (line 8)`,
		"#define FT_HEX = 31 run 1 (line 9)",
		"#define FT_SHIFT = 16 run 1 (line 10)",
		`#define FT_SUM = 69 run 1 doc "a line comment above a define" (line 12)`,
		"#define FT_LONG = 23 run 1 (line 13)",
		"#define FT_A_MAX = 6 run 2 sentinel (line 42)",
	}
	if diff := cmp.Diff(want, summary(h)); diff != "" {
		t.Errorf("features.h (-want +got):\n%s", diff)
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    []string
		wantErr []string
	}{
		{
			name: "implicit values",
			src:  "enum e {\n\tA,\n\tB,\n\tC\n};\n",
			want: []string{"enum e (line 1)", "  A = 0 (line 2)", "  B = 1 (line 3)", "  C = 2 (line 4)"},
		},
		{
			name: "explicit values and what follows them",
			src:  "enum e { A = 5, B, C = 0x10, D, E = 010, F = 3U, };\n",
			want: []string{"enum e (line 1)", "  A = 5 (line 1)", "  B = 6 (line 1)", "  C = 16 (line 1)", "  D = 17 (line 1)", "  E = 8 (line 1)", "  F = 3 (line 1)"},
		},
		{
			name: "operators and precedence",
			src: "enum e {\n" +
				"\tA = 1 + 2 * 3,\n" +
				"\tB = (1 + 2) * 3,\n" +
				"\tC = 1 << 2 | 1,\n" +
				"\tD = ~0 & 0xff,\n" +
				"\tE = 10 % 4 - 1,\n" +
				"\tF = 0x10 >> 2,\n" +
				"\tG = 1ULL << 40,\n" +
				"\tH = -(2 ^ 7) / 2,\n" +
				"\tI = !0 + !5,\n" +
				"};\n",
			want: []string{
				"enum e (line 1)",
				"  A = 7 (line 2)", "  B = 9 (line 3)", "  C = 5 (line 4)", "  D = 255 (line 5)", "  E = 1 (line 6)",
				"  F = 4 (line 7)", "  G = 1099511627776 (line 8)", "  H = -2 (line 9)", "  I = 1 (line 10)",
			},
		},
		{
			name: "shifts by a bit name, as in ip_conntrack_status",
			src:  "enum s {\n\tX_BIT = 3,\n\tX = (1 << X_BIT),\n\tMASK = (X | 1),\n\t__X_MAX_BIT = 4,\n};\n",
			want: []string{"enum s (line 1)", "  X_BIT = 3 (line 2)", "  X = 8 (line 3)", "  MASK = 9 (line 4)", "  __X_MAX_BIT = 4 sentinel (line 5)"},
		},
		{
			name: "names of other enums and #defines",
			src:  "#define BASE 0x100\nenum a { A0, A1 };\nenum b { B0 = A1 + 1, B1 = BASE | A1, B2 = LATER };\n#define LATER 9\n",
			want: []string{
				"enum a (line 2)", "  A0 = 0 (line 2)", "  A1 = 1 (line 2)",
				"enum b (line 3)", "  B0 = 2 (line 3)", "  B1 = 257 (line 3)", "  B2 = 9 (line 3)",
				"#define BASE = 256 run 1 (line 1)", "#define LATER = 9 run 2 (line 4)",
			},
		},
		{
			name: "aliases by = and by #define inside, before and after the enum",
			src: "#define E_EARLY E_B\n" +
				"enum e {\n" +
				"\tE_A,\n" +
				"#define E_OLD E_A\n" +
				"\tE_B,\n" +
				"\tE_C = E_A,\n" +
				"\tE_D,\n" +
				"};\n" +
				"#define E_LATE E_D\n",
			want: []string{
				"enum e (line 2)",
				"  E_A = 0 (line 3)",
				"  E_OLD = 0 alias of E_A (#define) (line 4)",
				"  E_B = 1 (line 5)",
				"  E_EARLY = 1 alias of E_B (#define) (line 1)",
				"  E_C = 0 alias of E_A (line 6)",
				"  E_D = 1 (line 7)",
				"  E_LATE = 1 alias of E_D (#define) (line 9)",
			},
		},
		{
			name: "a #define naming itself is the enumerator, as in nfnetlink.h",
			src:  "enum g {\n\tG_NONE,\n#define G_NONE G_NONE\n\tG_ONE,\n#define G_ONE\t\tG_ONE\n\t__G_MAX,\n};\n#define G_MAX (__G_MAX - 1)\n",
			want: []string{"enum g (line 1)", "  G_NONE = 0 (line 2)", "  G_ONE = 1 (line 4)", "  __G_MAX = 2 sentinel (line 6)", "#define G_MAX = 1 run 1 sentinel (line 8)"},
		},
		{
			name: "sentinels: __X_MAX, and a last implicit X_MAX",
			src:  "enum m { M_A, M_MAX, M_B, M_LAST_MAX };\nenum n { N_A, N_MAX = 5 };\n",
			want: []string{
				"enum m (line 1)", "  M_A = 0 (line 1)", "  M_MAX = 1 (line 1)", "  M_B = 2 (line 1)", "  M_LAST_MAX = 3 sentinel (line 1)",
				"enum n (line 2)", "  N_A = 0 (line 2)", "  N_MAX = 5 (line 2)",
			},
		},
		{
			name: "both branches of #ifdef are read",
			src:  "enum e {\n#ifdef __KERNEL__\n\tK,\n#else\n\tU,\n#endif\n#if 0\n\tZ,\n#endif\n};\n",
			want: []string{"enum e (line 1)", "  K = 0 (line 3)", "  U = 1 (line 5)", "  Z = 2 (line 8)"},
		},
		{
			name: "comments: above, beside, across a blank line and kernel-doc",
			src: "/**\n * enum e - things\n * @A: from kernel-doc\n * @B: not used, B has its own\n */\n" +
				"enum e {\n" +
				"\tA,\n" +
				"\t/* above B */\n" +
				"\tB, /* beside B */\n" +
				"\t/* separated by a blank line */\n" +
				"\n" +
				"\tC,\n" +
				"\tD = 7, // beside D\n" +
				"};\n",
			want: []string{
				"enum e (line 6)",
				`  A = 0 doc "from kernel-doc" (line 7)`,
				`  B = 1 doc "above B beside B" (line 9)`,
				"  C = 2 (line 12)",
				`  D = 7 doc "beside D" (line 13)`,
			},
		},
		{
			name: "#define runs, and what is not an integer constant",
			src: "#define R_A 1\n/* comment */\n#define R_B (1 << 1)\nstruct s { int x; };\n#define R_C 4\n" +
				"#define R_F(x) ((x) + 1)\n#define R_S \"str\"\n#define R_U UNKNOWN + 1\n#define R_GUARD\n" +
				"#define R_LONG (R_A | \\\n\t\tR_C)\n#include <x.h>\n#define R_D 5\n",
			want: []string{
				"#define R_A = 1 run 1 (line 1)",
				`#define R_B = 2 run 1 doc "comment" (line 3)`,
				"#define R_C = 4 run 2 (line 5)",
				"#define R_LONG = 5 run 2 (line 10)",
				"#define R_D = 5 run 3 (line 13)",
			},
		},
		{
			name: "enum keyword without a body",
			src:  "struct s { enum e field; };\nint f(enum e x);\nenum e { A };\n",
			want: []string{"enum e (line 3)", "  A = 0 (line 3)"},
		},
		{
			name:    "unknown name",
			src:     "enum e {\n\tA,\n\tB = FOO + 1,\n\tC,\n\tD = 9,\n};\n",
			want:    []string{"enum e (line 1)", "  A = 0 (line 2)", "  B = ? (line 3)", "  C = ? (line 4)", "  D = 9 (line 5)"},
			wantErr: []string{"x.h:3: B: cannot evaluate FOO + 1: unknown name FOO"},
		},
		{
			name:    "bad arithmetic",
			src:     "enum e { A = 1 / 0, B = 1 << 64, C = 08, D = C + 1, F = 1 +, G = G + 1, H = (1 + 2)) };\n",
			want:    []string{"enum e (line 1)", "  A = ? (line 1)", "  B = ? (line 1)", "  C = ? (line 1)", "  D = ? (line 1)", "  F = ? (line 1)", "  G = ? (line 1)", "  H = ? (line 1)"},
			wantErr: []string{"x.h:1: A: cannot evaluate 1 / 0: division by zero", "x.h:1: B: cannot evaluate 1 << 64: shift by 64", `x.h:1: C: cannot evaluate 08: bad number "08"`, "x.h:1: D: cannot evaluate C + 1: C has no value", "x.h:1: F: cannot evaluate 1 +: expression ends early", "x.h:1: G: cannot evaluate G + 1: G refers to itself", `x.h:1: H: cannot evaluate (1 + 2)): unexpected ")"`},
		},
		{
			name:    "an unclosed parenthesis runs to the semicolon",
			src:     "enum e { A = (1 + 2, B };\nenum f { C };\n",
			want:    []string{"enum e (line 1)", "  A = ? (line 1)", "enum f (line 2)", "  C = 0 (line 2)"},
			wantErr: []string{`x.h:1: enum e: unexpected ";" before the closing brace`, "x.h:1: A: cannot evaluate (1 + 2, B }: missing )"},
		},
		{
			name:    "syntax errors",
			src:     "enum e { A, B = , C, 7 }\nenum f { D; E };\n/* never closed\n",
			want:    []string{"enum e (line 1)", "  A = 0 (line 1)", "  B = ? (line 1)", "  C = ? (line 1)", "enum f (line 2)", "  D = 0 (line 2)"},
			wantErr: []string{"x.h:3: unterminated comment", "x.h:1: B: missing value after =", `x.h:1: enum e: unexpected "7"`, `x.h:2: enum f: unexpected ";" before the closing brace`},
		},
		{
			name:    "enum without a closing brace",
			src:     "enum e {\n\tA,\n",
			want:    []string{"enum e (line 1)", "  A = 0 (line 2)"},
			wantErr: []string{"x.h:1: enum e: no closing brace"},
		},
		{
			name: "empty input",
			src:  "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseHeader("x.h", []byte(tt.src))
			if diff := cmp.Diff(tt.want, summary(h)); diff != "" {
				t.Errorf("declarations (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErr, errLines(err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, dir := range []string{"testdata/parser", "testdata/old/linux/netfilter", "testdata/new/linux/netfilter"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.h"))
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("enum e { A = ((((1)))) << B, B = A };\n#define X \\\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		h, err := parseHeader("fuzz.h", src)
		if h == nil {
			t.Fatal("no header")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.h:") {
			t.Fatalf("error without file and line: %v", err)
		}
	})
}
