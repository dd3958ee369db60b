package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	in := `# A mask ignored,
# on two lines.
test: go test ./x
generate: yes
file: a/b.go
<<<
	return m&k == w
===
	return m == w
>>>
file: c.yaml
<<<
  x: 1
  y: 2
===
>>>
`
	m, err := parse(in)
	if err != nil {
		t.Fatal(err)
	}
	want := mutant{
		desc:     "A mask ignored, on two lines.",
		test:     "go test ./x",
		generate: true,
		edits: []edit{
			{file: "a/b.go", old: "\treturn m&k == w\n", new: "\treturn m == w\n"},
			{file: "c.yaml", old: "  x: 1\n  y: 2\n", new: ""},
		},
	}
	if diff := cmp.Diff(want, m, cmp.AllowUnexported(mutant{}, edit{})); diff != "" {
		t.Errorf("parse (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ name, in, err string }{
		{name: "no test", in: "# d\nfile: a\n<<<\nx\n===\ny\n>>>\n", err: "no test"},
		{name: "no change", in: "# d\ntest: t\n", err: "no change"},
		{name: "no description", in: "test: t\nfile: a\n<<<\nx\n===\ny\n>>>\n", err: "no description"},
		{name: "no file", in: "# d\ntest: t\n<<<\nx\n===\ny\n>>>\n", err: "before file"},
		{name: "unterminated", in: "# d\ntest: t\nfile: a\n<<<\nx\n===\ny\n", err: "want <<<"},
		{name: "no separator", in: "# d\ntest: t\nfile: a\n<<<\nx\n>>>\n", err: "want <<<"},
		{name: "empty old", in: "# d\ntest: t\nfile: a\n<<<\n===\ny\n>>>\n", err: "empty text"},
		{name: "stray line", in: "# d\ntest: t\nbogus\n", err: "unexpected"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parse error %v, want one containing %q", err, tt.err)
			}
		})
	}
}

// TestRunMutant applies mutants to a scratch module and checks the three
// outcomes: killed, lived, does not apply.
func TestRunMutant(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":    "module m\n\ngo 1.23\n",
		"m.go":      "package m\n\nfunc Add(a, b int) int {\n\treturn a + b\n}\n",
		"m_test.go": "package m\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(2, 3) != 5 {\n\t\tt.Fatal(Add(2, 3))\n\t}\n}\n",
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, old, new, test string
		want                 string
	}{
		{name: "killed", old: "\treturn a + b\n", new: "\treturn a - b\n", test: "go test ./...", want: "KILLED"},
		{name: "lived", old: "\treturn a + b\n", new: "\treturn b + a\n", test: "go test ./...", want: "LIVED"},
		{name: "moved", old: "\treturn a * b\n", new: "\treturn a\n", test: "go test ./...", want: "NO APPLY"},
		{name: "does not build", old: "\treturn a + b\n", new: "\treturn a +\n", test: "go test ./...", want: "NO APPLY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := mutant{name: tt.name, test: tt.test, edits: []edit{{file: "m.go", old: tt.old, new: tt.new}}}
			got, detail := runMutant(m, dir, time.Minute)
			if err := restore(m, dir, dir); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("runMutant = %s (%s), want %s", got, detail, tt.want)
			}
			// restore from the same directory is a no-op; put m.go back.
			if err := os.WriteFile(filepath.Join(dir, "m.go"), []byte(files["m.go"]), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}
