package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A go test -json stream as go 1.26 writes it, by hand: package a passes
// one test and skips another, b fails one test, c has no test files.
const stream = `{"Action":"start","Package":"ex/a"}
{"Action":"run","Package":"ex/a","Test":"TestPass"}
{"Action":"output","Package":"ex/a","Test":"TestPass","Output":"=== RUN   TestPass\n"}
{"Action":"output","Package":"ex/a","Test":"TestPass","Output":"--- PASS: TestPass (0.00s)\n"}
{"Action":"pass","Package":"ex/a","Test":"TestPass","Elapsed":0}
{"Action":"run","Package":"ex/a","Test":"TestKernel"}
{"Action":"output","Package":"ex/a","Test":"TestKernel","Output":"=== RUN   TestKernel\n"}
{"Action":"output","Package":"ex/a","Test":"TestKernel","Output":"    a_test.go:9: needs root\n"}
{"Action":"output","Package":"ex/a","Test":"TestKernel","Output":"--- SKIP: TestKernel (0.00s)\n"}
{"Action":"skip","Package":"ex/a","Test":"TestKernel","Elapsed":0}
{"Action":"output","Package":"ex/a","Output":"PASS\n"}
{"Action":"output","Package":"ex/a","Output":"ok  \tex/a\t0.01s\n"}
{"Action":"pass","Package":"ex/a","Elapsed":0.01}
{"Action":"run","Package":"ex/b","Test":"TestBroken"}
{"Action":"output","Package":"ex/b","Test":"TestBroken","Output":"=== RUN   TestBroken\n"}
{"Action":"output","Package":"ex/b","Test":"TestBroken","Output":"    b_test.go:7: got 1, want 2\n"}
{"Action":"output","Package":"ex/b","Test":"TestBroken","Output":"--- FAIL: TestBroken (0.00s)\n"}
{"Action":"fail","Package":"ex/b","Test":"TestBroken","Elapsed":0}
{"Action":"output","Package":"ex/b","Output":"FAIL\n"}
{"Action":"output","Package":"ex/b","Output":"FAIL\tex/b\t0.01s\n"}
{"Action":"fail","Package":"ex/b","Elapsed":0.01}
{"Action":"output","Package":"ex/c","Output":"?   \tex/c\t[no test files]\n"}
{"Action":"skip","Package":"ex/c","Elapsed":0}
`

func TestFilter(t *testing.T) {
	var out bytes.Buffer
	res, err := filter(strings.NewReader(stream), &out)
	if err != nil {
		t.Fatal(err)
	}
	want := "ok  \tex/a\t0.01s\n" +
		"=== RUN   TestBroken\n    b_test.go:7: got 1, want 2\n--- FAIL: TestBroken (0.00s)\n" +
		"FAIL\nFAIL\tex/b\t0.01s\n" +
		"?   \tex/c\t[no test files]\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if !res.failed {
		t.Error("failed = false after a failing test")
	}
	if diff := cmp.Diff([]string{"ex/a TestKernel: a_test.go:9: needs root"}, res.skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
}

func TestFilterUnfinished(t *testing.T) {
	in := `{"Action":"start","Package":"ex/a"}
{"Action":"run","Package":"ex/a","Test":"TestHang"}
{"Action":"output","Package":"ex/a","Test":"TestHang","Output":"=== RUN   TestHang\n"}
`
	if _, err := filter(strings.NewReader(in), &bytes.Buffer{}); err == nil {
		t.Error("no error for a test that never ended")
	}
}

func TestFilterBenchmarks(t *testing.T) {
	in := `{"Action":"start","Package":"ex/a"}
{"Action":"output","Package":"ex/a","Output":"goos: linux\n"}
{"Action":"run","Package":"ex/a","Test":"BenchmarkX"}
{"Action":"output","Package":"ex/a","Test":"BenchmarkX","Output":"=== RUN   BenchmarkX\n"}
{"Action":"output","Package":"ex/a","Test":"BenchmarkX","Output":"BenchmarkX\n"}
{"Action":"run","Package":"ex/a","Test":"BenchmarkX/n=1"}
{"Action":"output","Package":"ex/a","Test":"BenchmarkX/n=1","Output":"BenchmarkX/n=1-2   \t"}
{"Action":"output","Package":"ex/a","Test":"BenchmarkX/n=1","Output":"       1\t      1000 ns/op\n"}
{"Action":"output","Package":"ex/a","Output":"PASS\n"}
{"Action":"output","Package":"ex/a","Output":"ok  \tex/a\t0.01s\n"}
{"Action":"pass","Package":"ex/a","Elapsed":0.01}
`
	var out bytes.Buffer
	res, err := filter(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	want := "goos: linux\nBenchmarkX/n=1-2   \t       1\t      1000 ns/op\nok  \tex/a\t0.01s\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if res.failed || len(res.skipped) > 0 {
		t.Errorf("result %+v, want neither failed nor skipped", res)
	}
}

// TestRun runs a shell that prints a canned stream in place of go test, and
// checks the exit code with and without CTSPEC_REQUIRE_KERNEL=1.
func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		require bool
		code    int
	}{
		{name: "pass", stream: passOnly, code: 0},
		{name: "pass required", stream: passOnly, require: true, code: 0},
		{name: "skip", stream: skipOnly, code: 0},
		{name: "skip required", stream: skipOnly, require: true, code: 1},
		{name: "fail", stream: stream, code: 1},
		{name: "command fails", stream: "exit", code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"sh", "-c", fakeScript(tt.stream)}, tt.require, &out, &errb)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, &out, &errb)
			}
			if tt.stream == skipOnly && !strings.Contains(out.String(), "ex/a TestKernel: a_test.go:9: needs root") {
				t.Errorf("the skipped test is not listed:\n%s", &out)
			}
		})
	}
}

const passOnly = `{"Action":"run","Package":"ex/a","Test":"TestPass"}
{"Action":"pass","Package":"ex/a","Test":"TestPass","Elapsed":0}
{"Action":"output","Package":"ex/a","Output":"ok  \tex/a\t0.01s\n"}
{"Action":"pass","Package":"ex/a","Elapsed":0.01}
`

const skipOnly = `{"Action":"run","Package":"ex/a","Test":"TestKernel"}
{"Action":"output","Package":"ex/a","Test":"TestKernel","Output":"    a_test.go:9: needs root\n"}
{"Action":"skip","Package":"ex/a","Test":"TestKernel","Elapsed":0}
{"Action":"output","Package":"ex/a","Output":"ok  \tex/a\t0.01s\n"}
{"Action":"pass","Package":"ex/a","Elapsed":0.01}
`

// fakeScript returns a shell script that prints stream, or exits 3 when
// stream is "exit".
func fakeScript(stream string) string {
	if stream == "exit" {
		return "exit 3"
	}
	return "cat <<'END'\n" + stream + "END\n"
}
