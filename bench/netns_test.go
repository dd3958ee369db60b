package bench

import (
	"strings"
	"testing"

	"github.com/ctspec/ctspec/internal/nstest"
)

// newNetNS creates a network namespace for a benchmark with
// internal/nstest, after checking for the commands the benchmarks run in
// it. Without privilege it skips the benchmark, or fails it when
// CTSPEC_REQUIRE_KERNEL=1.
func newNetNS(tb testing.TB) *nstest.NS {
	tb.Helper()
	nstest.RequireCommands(tb, "conntrack", "nsenter")
	return nstest.New(tb)
}

// runQuiet runs name inside ns with its standard output discarded, as a
// shell redirect to /dev/null would, so that a command's timing does not
// include piping its output into the benchmark. It fails the benchmark if
// the command fails.
func runQuiet(tb testing.TB, ns *nstest.NS, name string, args ...string) {
	tb.Helper()
	var stderr strings.Builder
	cmd := ns.Command(name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
}
