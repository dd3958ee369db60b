package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnifiedDiff(t *testing.T) {
	numbered := func(n int) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			b.WriteString(strings.Repeat("x", i%3+1) + "\n")
		}
		return b.String()
	}
	tests := []struct {
		name string
		a, b string
		want string
	}{
		{name: "equal", a: "a\nb\n", b: "a\nb\n", want: ""},
		{
			name: "insertion",
			a:    "1\n2\n3\n4\n5\n6\n7\n8\n",
			b:    "1\n2\n3\n4\nnew\n5\n6\n7\n8\n",
			want: "--- a\n+++ b\n@@ -2,6 +2,7 @@\n 2\n 3\n 4\n+new\n 5\n 6\n 7\n",
		},
		{
			name: "change at the start",
			a:    "old\n2\n3\n",
			b:    "new\n2\n3\n",
			want: "--- a\n+++ b\n@@ -1,3 +1,3 @@\n-old\n+new\n 2\n 3\n",
		},
		{
			name: "two hunks",
			a:    "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n",
			b:    "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n",
			want: "--- a\n+++ b\n@@ -1,3 +1,4 @@\n+0\n 1\n 2\n 3\n@@ -10,3 +11,4 @@\n 10\n 11\n 12\n+13\n",
		},
		{
			name: "inserted item slides up to its dash",
			a:    "  -\n    name: a\n  -\n    name: c\n",
			b:    "  -\n    name: a\n  -\n    name: b\n  -\n    name: c\n",
			want: "--- a\n+++ b\n@@ -1,4 +1,6 @@\n   -\n     name: a\n+  -\n+    name: b\n   -\n     name: c\n",
		},
		{
			name: "no newline at the end",
			a:    "a\nb",
			b:    "a\nc",
			want: "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n",
		},
		{
			name: "long files",
			a:    numbered(2000),
			b:    strings.Replace(numbered(2000), "xxx\n", "xxx\ny\n", 1),
			want: "--- a\n+++ b\n@@ -1,5 +1,6 @@\n xx\n xxx\n+y\n x\n xx\n xxx\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unifiedDiff("a", "b", []byte(tt.a), []byte(tt.b))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diff (-want +got):\n%s", diff)
			}
		})
	}
}
