// Command ctspec is a drop-in replacement for conntrack(8) of
// conntrack-tools 1.4, written in Go on the ctnetlink package.
//
// It takes the same commands and options (-L, -G, -D, -I, -A, -U, -E, -F,
// -C, -S, -R, the conntrack, expect, dying and unconfirmed tables, and
// every filter and output option), prints the same output byte for byte
// in the default, extended, xml, save, id and ktimestamp formats, writes
// the same messages to standard error and exits with the same status. It
// adds -o json, one JSON object per line.
//
// Like conntrack, it works in the network namespace it runs in; use
// ip netns exec or nsenter to reach another one.
package main

import (
	"os"
)

// progName is the name conntrack-tools prints in its messages.
const progName = "conntrack"

// versionString starts every message on standard error, and names the
// conntrack release ctspec follows in what -V prints (version.go).
// ctspec prints conntrack-tools' own words so that scripts that read
// conntrack's output, standard error included, keep working.
const versionString = progName + " v1.4.7 (conntrack-tools)"

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
