package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctspec/ctspec/internal/nstest"
)

// TestInstalledHeaders checks the project's spec against the UAPI headers of
// this machine (/usr/include), or those under $HEADERGEN_INCLUDE, such as a
// kernel tree's usr/include. Spec entries newer than the headers are logged,
// not failed.
func TestInstalledHeaders(t *testing.T) {
	specPath := filepath.Join("..", "..", "spec", "conntrack.yaml")
	if _, err := os.Stat(specPath); err != nil {
		t.Fatalf("the spec to check: %v", err)
	}
	include := os.Getenv("HEADERGEN_INCLUDE")
	if include == "" {
		include = "/usr/include"
	}
	if _, err := os.Stat(filepath.Join(include, "linux", "netfilter", "nfnetlink_conntrack.h")); err != nil {
		msg := fmt.Sprintf("no kernel UAPI headers under %s (install linux-libc-dev, or set HEADERGEN_INCLUDE): %v", include, err)
		nstest.SkipOrFail(t, msg)
	}
	in, err := load(specPath, include)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n := check(in, true, &out)
	for _, l := range lines(out.String()) {
		if strings.HasPrefix(l, "note: ") {
			t.Log(l)
		} else {
			t.Error(l)
		}
	}
	if n > 0 {
		t.Fatalf("%d differences between %s and the headers in %s; see go run ./tools/headergen check -v", n, specPath, include)
	}

	// With nothing missing, sync must give back the very same bytes.
	res, err := syncSpec(in, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.out, in.specSrc) {
		t.Errorf("sync changed a spec that check accepts:\n%s", unifiedDiff(specPath, "synced", in.specSrc, res.out))
	}
}
