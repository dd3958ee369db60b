package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "headergen: %v\n", err)
		}
		os.Exit(1)
	}
}

const usage = `usage:
	headergen check [-spec file] [-include dir] [-v]
	headergen sync [-spec file] [-include dir] [-kernel X.Y] [-w] [-v]

check compares the spec with the kernel's UAPI headers and fails on any
difference. sync adds what newer headers declare and prints a diff, or with
-w rewrites the spec.
`

// run parses the command line and runs one subcommand. Differences go to
// stdout; notes about what sync did go to stderr.
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" && args[0] != "sync" {
		fmt.Fprint(stderr, usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "help") {
			return flag.ErrHelp
		}
		return errors.New("want a subcommand, check or sync")
	}
	cmd := args[0]
	fs := flag.NewFlagSet("headergen "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	specPath := fs.String("spec", "spec/conntrack.yaml", "netlink-raw spec `file`")
	include := fs.String("include", "/usr/include", "include root of the UAPI headers, such as a kernel tree's usr/include after make headers_install")
	verbose := fs.Bool("v", false, "also list what the spec has and the headers lack")
	var kernel *string
	var write *bool
	if cmd == "sync" {
		kernel = fs.String("kernel", "", "set the spec's \"Linux X.Y\" phrase to this `version`; left alone when empty")
		write = fs.Bool("w", false, "rewrite the spec instead of printing a diff")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	in, err := load(*specPath, *include)
	if err != nil {
		return err
	}
	if cmd == "check" {
		return runCheck(in, *verbose, stdout)
	}
	return runSync(in, *kernel, *write, *verbose, stdout, stderr)
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}
