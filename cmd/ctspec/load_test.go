package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctspec/ctspec/internal/nstest"
)

// loadedTable lists the table of ns with conntrack, one sorted line per
// flow, without the timeouts, which count down while the test runs.
func loadedTable(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(ns.Run(t, "conntrack", "-L")), "\n") {
		f := strings.Fields(l)
		if len(f) > 3 {
			f[2] = "T" // protocol name, number, timeout
		}
		lines = append(lines, strings.Join(f, " "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestDifferentialLoadWindows loads files longer than one window of
// pipelined creations with conntrack and with ctspec, from standard input
// and from a file, and compares output, exit status and the table left:
// a failing line in a later window, on a window boundary, a parse error
// or a command -R does not take at the end (nothing is applied), and -A
// and -F lines between creations.
func TestDifferentialLoadWindows(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	create := func(i int) string {
		return fmt.Sprintf("-I -p udp -s 10.%d.%d.1 -d 192.0.2.2 --sport %d --dport 53 -t 500 -m %d", i>>8, i&255, 1000+i, i%3)
	}
	lines := func(n int, edit func(i int, l string) string) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(edit(i, create(i)))
			b.WriteByte('\n')
		}
		return b.String()
	}
	same := func(i int, l string) string { return l }
	for _, tc := range []struct {
		name, file string
	}{
		{"all", lines(2500, same)},
		{"fails-later-window", lines(2500, func(i int, l string) string {
			if i == 1700 {
				return create(10) // exists: conntrack stops here
			}
			return l
		})},
		{"fails-on-boundary", lines(2500, func(i int, l string) string {
			if i == loadWindow {
				return create(5)
			}
			return l
		})},
		{"parse-error-at-end", lines(2500, same) + "-I -p udp -s 10.0.0.1 --bogus\n"},
		{"list-at-end", lines(1500, same) + "-L\n"},
		{"add-and-flush", lines(1500, func(i int, l string) string {
			switch i {
			case 300:
				return "-A" + strings.TrimPrefix(create(10), "-I")
			case 1100:
				return "-F"
			}
			return l
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "flows")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, src := range []string{"-", path} {
				var res [2]result
				var tables [2]string
				for i, prog := range []string{"conntrack", bin} {
					ns := nstest.New(t)
					stdin := ""
					if src == "-" {
						stdin = tc.file
					}
					res[i] = runIn(t, ns, stdin, prog, "-R", src)
					tables[i] = loadedTable(t, ns)
				}
				if diff := cmp.Diff(res[0], res[1], cmp.AllowUnexported(result{})); diff != "" {
					t.Errorf("-R %s: (-conntrack +ctspec)\n%s", src, diff)
				}
				if diff := cmp.Diff(tables[0], tables[1]); diff != "" {
					t.Errorf("table after -R %s: (-conntrack +ctspec)\n%s", src, diff)
				}
			}
		})
	}
}

// TestAppendWords checks the quote-free fast path against splitLine.
func TestAppendWords(t *testing.T) {
	long := strings.Repeat("x", 1024)
	for _, line := range []string{
		"-I -p tcp -s 1.2.3.4",
		"  -I\t-p  tcp \t",
		"-I -p \"t c p\" -s 1.2.3.4",
		"",
		"   ",
		"-I " + long,
		"-I " + long[:1023],
		strings.Repeat("a ", 253),
		strings.Repeat("a ", 254),
	} {
		want, wantErr := splitLine(line)
		got, gotErr := appendWords([]string{"prog"}, line)
		if (wantErr != nil) != (gotErr != nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
			t.Errorf("%q: error %v, want %v", line, gotErr, wantErr)
			continue
		}
		if wantErr != nil {
			continue
		}
		if diff := cmp.Diff(append([]string{"prog"}, want...), got); diff != "" {
			t.Errorf("%q: (-want +got)\n%s", line, diff)
		}
	}
}
