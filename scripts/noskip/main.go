// Command noskip runs a go test command that has -json, prints what go test
// prints without -v (each package's closing line, and the output of failing
// tests), and fails when a test or benchmark skipped while
// CTSPEC_REQUIRE_KERNEL=1, so that CI never passes a test it did not run.
//
// Usage:
//
//	go run ./scripts/noskip go test -json -race ./...
//
// It exits 1 when the command fails, when a test fails, or when a test
// skipped under CTSPEC_REQUIRE_KERNEL=1; it then lists those tests last.
// Without the variable, skips are listed but do not fail.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

const requireKernelEnv = "CTSPEC_REQUIRE_KERNEL"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: noskip go test -json [flags] [packages]")
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:], os.Getenv(requireKernelEnv) == "1", os.Stdout, os.Stderr))
}

// run runs the command args and filters its standard output.
func run(args []string, require bool, stdout, stderr io.Writer) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(stderr, "noskip: %v\n", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "noskip: %v\n", err)
		return 1
	}
	r, ferr := filter(out, stdout)
	werr := cmd.Wait()
	code := 0
	if ferr != nil {
		fmt.Fprintf(stderr, "noskip: %v\n", ferr)
		code = 1
	}
	if werr != nil {
		fmt.Fprintf(stderr, "noskip: %s: %v\n", strings.Join(args, " "), werr)
		code = 1
	}
	if r.failed {
		code = 1
	}
	if len(r.skipped) > 0 {
		if require {
			fmt.Fprintf(stdout, "\n%d tests skipped although %s=1; each must run or fail:\n", len(r.skipped), requireKernelEnv)
			code = 1
		} else {
			fmt.Fprintf(stdout, "\n%d tests skipped:\n", len(r.skipped))
		}
		for _, s := range r.skipped {
			fmt.Fprintf(stdout, "  %s\n", s)
		}
	}
	return code
}

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Output     string
}

// result is what filter saw.
type result struct {
	failed  bool
	skipped []string // "package TestName: reason"
}

// filter reads go test -json from r and writes to w what go test writes
// without -v: the package lines ("ok", "FAIL", "?"), build errors, the
// output of tests that fail, and benchmark results. Lines that are not
// JSON are copied as they are.
func filter(r io.Reader, w io.Writer) (result, error) {
	var res result
	buf := map[string][]string{} // package + " " + test -> output so far
	var order []string           // keys of buf in order of first output
	open := map[string]bool{}    // packages started and not yet ended
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "build-fail":
			res.failed = true
		case "start":
			open[e.Package] = true
		case "output":
			if e.Test == "" {
				open[e.Package] = true
				if t := strings.TrimSpace(e.Output); t != "PASS" && !strings.HasPrefix(t, "=== ") {
					fmt.Fprint(w, e.Output)
				}
				continue
			}
			if _, ok := buf[key]; !ok {
				order = append(order, key)
			}
			buf[key] = append(buf[key], e.Output)
			if strings.HasPrefix(e.Test, "Benchmark") && strings.HasSuffix(e.Output, "\n") && strings.Contains(e.Output, "ns/op") {
				// Benchmarks get no pass event: print a result line
				// when it is complete, as go test does.
				printResults(w, buf[key])
				buf[key] = nil
			}
		case "fail", "pass", "skip":
			if e.Test == "" {
				// The package ended, and with it its benchmarks.
				for _, k := range order {
					if strings.HasPrefix(k, e.Package+" Benchmark") {
						delete(buf, k)
					}
				}
				delete(open, e.Package)
			}
			switch {
			case e.Action == "fail":
				res.failed = true
				if e.Test != "" {
					fmt.Fprint(w, strings.Join(buf[key], ""))
				}
			case e.Action == "skip" && e.Test != "":
				res.skipped = append(res.skipped, e.Package+" "+e.Test+": "+skipReason(buf[key]))
			}
			delete(buf, key)
		}
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("reading go test -json: %w", err)
	}
	if !res.failed && len(open) > 0 {
		// A package that started and never ended: the binary died.
		return res, errors.New("go test -json ended with packages still running")
	}
	return res, nil
}

// printResults writes the result lines of a benchmark's output, those with
// "ns/op", as go test prints them.
func printResults(w io.Writer, out []string) {
	for _, l := range strings.SplitAfter(strings.Join(out, ""), "\n") {
		if strings.Contains(l, "ns/op") {
			fmt.Fprint(w, l)
		}
	}
}

// skipReason returns the message of a skipped test from its output: every
// line but the "=== RUN" and "--- SKIP" lines, which only name the test.
func skipReason(out []string) string {
	var msg []string
	for _, l := range out {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "=== ") && !strings.HasPrefix(t, "--- SKIP") {
			msg = append(msg, t)
		}
	}
	return strings.Join(msg, " ")
}
