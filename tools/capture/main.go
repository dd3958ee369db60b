// Command capture records golden ctnetlink messages from the running kernel.
//
// It creates a throwaway network namespace, fills its conntrack table with
// conntrack -I and with real traffic over loopback, dumps flows,
// expectations and statistics over NETLINK_NETFILTER, and writes each
// message to <out>/<name>.txt in the format of internal/golden, together
// with the commands that made the entry and what conntrack-tools prints for
// it. The host's conntrack table and network configuration are never
// touched.
//
// Usage, as root:
//
//	go run ./tools/capture -out testdata/messages
//
// It needs nsenter, conntrack (conntrack-tools) and nft on PATH. Files the
// previous run wrote are removed first; other files in the directory are
// left alone. testdata/messages/README.md describes the result.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "capture: %v\n", err)
		os.Exit(1)
	}
}

// run parses the command line, captures and prints a summary to w.
func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	out := fs.String("out", "testdata/messages", "directory for the golden `files`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	res, err := capture()
	if err != nil {
		return err
	}
	if err := res.write(*out); err != nil {
		return err
	}
	res.summary(w, *out)
	return nil
}
