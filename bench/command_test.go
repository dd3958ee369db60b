package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ctspec/ctspec/internal/nstest"
)

// Table sizes of the command workloads.
var commandSizes = []int{100_000, 250_000}

// buildCtspec builds the ctspec command of the parent module into a
// temporary directory and returns its path: static, as CGO_ENABLED=0 go
// install builds it and as the README tells users to install it. The
// benchmark runs from the bench directory, as go test and the report
// program run it.
func buildCtspec(tb testing.TB) string {
	tb.Helper()
	return goBuild(tb, "..", "./cmd/ctspec", false)
}

// goBuild builds the package pkg of the module in dir into a temporary
// directory and returns the binary's path. With cgo set it builds as a
// plain go build does (dynamically linked once cgo is available and the
// program imports net); otherwise with CGO_ENABLED=0 (static).
func goBuild(tb testing.TB, dir, pkg string, cgo bool) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-C", dir, "-o", bin, pkg)
	if !cgo {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return installed(tb, bin)
}

// installed copies the binary at bin to a new file, as go install and cp
// do, and returns the copy's path. A binary as the linker leaves it starts
// measurably slower (0.3 to 0.45 ms per run on the 2-core machine the
// tables come from) than a copy of it, and every other program the
// benchmarks run is an installed copy.
func installed(tb testing.TB, bin string) string {
	tb.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		tb.Fatal(err)
	}
	out := bin + ".installed"
	if err := os.WriteFile(out, b, 0o755); err != nil {
		tb.Fatal(err)
	}
	return out
}

// cliShown matches the summary that conntrack -L, and ctspec -L, print on
// standard error.
var cliShown = regexp.MustCompile(`(\d+) flow entries have been shown`)

// listCommand runs a listing command inside the namespace with its
// standard output on /dev/null, as in ctspec -L > /dev/null, and returns
// the number of flows it says it showed on standard error.
func listCommand(ns *nstest.NS, name string, args ...string) (int, error) {
	var stderr strings.Builder
	cmd := ns.Command(name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	m := cliShown.FindStringSubmatch(stderr.String())
	if m == nil {
		return 0, fmt.Errorf("%s %s printed no count: %q", name, strings.Join(args, " "), stderr.String())
	}
	return strconv.Atoi(m[1])
}

// BenchmarkCommand times the ctspec command against conntrack(8) listing
// tables of 100k and 250k established TCP flows, in the default format
// (-L) and in XML (-L -o xml), with standard output on /dev/null. Both run
// under nsenter, whose start-up is part of each time. ctspec is built from
// ../cmd/ctspec once per run, static.
func BenchmarkCommand(b *testing.B) {
	bin := buildCtspec(b)
	formats := []struct {
		name string
		args []string
	}{
		{"L", []string{"-L"}},
		{"L-xml", []string{"-L", "-o", "xml"}},
	}
	tools := []struct{ name, path string }{
		{"ctspec", bin},
		{"conntrack-cli", "conntrack"},
	}
	for _, n := range commandSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			t := newTable(b)
			t.fill(b, ctspecFlows(tcpSpecs(n)), n)
			for _, format := range formats {
				for _, tool := range tools {
					b.Run(format.name+"/"+tool.name, func(b *testing.B) {
						m := newMeter(b, n)
						for i := 0; i < b.N; i++ {
							m.start()
							got, err := listCommand(t.ns, tool.path, format.args...)
							m.stop()
							if err != nil {
								b.Fatal(err)
							}
							if got != n {
								b.Fatalf("%s showed %d flows, want %d", tool.name, got, n)
							}
						}
						m.report(false)
					})
				}
			}
		})
	}
}
