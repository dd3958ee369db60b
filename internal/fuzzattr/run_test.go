package fuzzattr

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runCaseEnv names the case FuzzRunCase runs; TestRunFails sets it in a
// child process, as the failures it provokes would fail this one.
const runCaseEnv = "FUZZATTR_RUN_CASE"

// padded is a toy whose encoding appends a zero: a canonical seed does not
// re-encode to itself.
type padded struct{ toy }

func (c *padded) AppendAttributes(b []byte) []byte {
	c.pad = true
	return c.toy.AppendAttributes(b)
}

// drifting is a toy whose encoding differs each time.
type drifting struct{ toy }

func (c *drifting) AppendAttributes(b []byte) []byte {
	c.drift = true
	return c.toy.AppendAttributes(b)
}

// FuzzRunCase runs Run on the case that runCaseEnv names. Without it, it
// fuzzes nothing and passes (a skip would fail make unit): TestRunFails
// runs it.
func FuzzRunCase(f *testing.F) {
	switch os.Getenv(runCaseEnv) {
	case "":
		f.Fuzz(func(*testing.T, []byte) {})
	case "good":
		Run[toy](f, "toy-attrs", []Seed{{"msg", []byte{1, 2}, true}, {"req", []byte{3}, false}})
	case "no-seed":
		Run[toy](f, "toy-attrs", nil)
	case "not-canonical":
		Run[padded](f, "toy-attrs", []Seed{{"msg", []byte{1}, true}})
	case "unstable":
		Run[drifting](f, "toy-attrs", []Seed{{"req", []byte{1}, false}})
	default:
		f.Fatalf("unknown case %q", os.Getenv(runCaseEnv))
	}
}

// TestRunFails runs Run in a child process on a good codec and on codecs
// or seeds that are wrong in each way Run must refuse, and checks that the
// child fails, and why.
func TestRunFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // substring of the child's output, "" for success
	}{
		{"good", ""},
		{"no-seed", "no seed for toy-attrs"},
		{"not-canonical", "seed from msg: re-encoding differs"},
		{"unstable", "encoding is not stable"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^FuzzRunCase$", "-test.count=1")
		cmd.Env = append(os.Environ(), runCaseEnv+"="+tc.name)
		out, err := cmd.CombinedOutput()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: child failed: %v\n%s", tc.name, err, out)
		case tc.want != "" && err == nil:
			t.Errorf("%s: child passed, want a failure with %q\n%s", tc.name, tc.want, out)
		case tc.want != "" && !strings.Contains(string(out), tc.want):
			t.Errorf("%s: child failed without %q:\n%s", tc.name, tc.want, out)
		}
	}
}
