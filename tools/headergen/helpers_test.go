package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// edit replaces the first old in file ("spec.yaml" or a header's base name)
// with new.
type edit struct {
	file, old, new string
}

// fixture copies testdata/spec.yaml and the headers of testdata/<base> into a
// temporary directory, applies edits, and returns the spec path and the
// include root.
func fixture(t *testing.T, base string, edits ...edit) (specPath, include string) {
	t.Helper()
	dir := t.TempDir()
	specPath = filepath.Join(dir, "spec.yaml")
	include = filepath.Join(dir, "include")
	nf := filepath.Join(include, "linux", "netfilter")
	if err := os.MkdirAll(nf, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"spec.yaml": specPath}
	copyFile(t, filepath.Join("testdata", "spec.yaml"), specPath)
	headers, err := filepath.Glob(filepath.Join("testdata", base, "linux", "netfilter", "*.h"))
	if err != nil || len(headers) == 0 {
		t.Fatalf("no headers in testdata/%s: %v", base, err)
	}
	for _, h := range headers {
		dst := filepath.Join(nf, filepath.Base(h))
		copyFile(t, h, dst)
		files[filepath.Base(h)] = dst
	}
	for _, e := range edits {
		path, ok := files[e.file]
		if !ok {
			t.Fatalf("edit of unknown file %s", e.file)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), e.old) {
			t.Fatalf("%s does not contain %q", e.file, e.old)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(b), e.old, e.new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return specPath, include
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runTool runs the command line and returns its output.
func runTool(args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = run(args, &o, &e)
	return o.String(), e.String(), err
}

// lineOf returns the line on which needle starts in the file at path.
func lineOf(t *testing.T, path, needle string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), needle)
	if i < 0 {
		t.Fatalf("%s does not contain %q", path, needle)
	}
	return strings.Count(string(b[:i]), "\n") + 1
}

// lines splits output into lines, without the empty one after the last newline.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// replacer turns the placeholders SPEC and INCLUDE of a wanted line into the
// paths of a fixture.
func replacer(specPath, include string) *strings.Replacer {
	return strings.NewReplacer("SPEC", specPath, "INCLUDE", include)
}
