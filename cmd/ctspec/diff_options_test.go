package main

import (
	"testing"

	"github.com/ctspec/ctspec/internal/nstest"
)

// optionArgs are a valid argument for each of conntrack's options, in
// their long form, so that what decides the outcome is whether the
// command takes the option.
var optionArgs = [][]string{
	{"--src=192.0.2.1"}, {"--dst=192.0.2.2"}, {"--reply-src=192.0.2.2"}, {"--reply-dst=192.0.2.1"},
	{"--protonum=tcp"}, {"--timeout=10"}, {"--status=ASSURED"}, {"--zero"}, {"--event-mask=NEW"},
	{"--tuple-src=192.0.2.3"}, {"--tuple-dst=192.0.2.4"}, {"--mask-src=255.255.255.0"},
	{"--mask-dst=255.255.255.0"}, {"--nat-range=1"}, {"--mark=1"}, {"--id=1"}, {"--family=ipv4"},
	{"--src-nat=192.0.2.9"}, {"--dst-nat=192.0.2.9"}, {"--output=xml"}, {"--secmark=1"},
	{"--buffer-size=100000"}, {"--any-nat=192.0.2.9"}, {"--zone=1"}, {"--label=foo"},
	{"--label-add=foo"}, {"--label-del=foo"}, {"--orig-zone=1"}, {"--reply-zone=1"},
	// Two options, to see which error comes first.
	{"--zero", "--event-mask=NEW"}, {"--src=192.0.2.1", "--reply-src=192.0.2.2"},
	{"--protonum=tcp", "--timeout=10"},
}

// TestDifferentialOptionMatrix runs every command on both tables with
// each option, in a namespace with an empty table, and compares
// conntrack's output, messages and exit status with ctspec's: this
// checks the command-versus-option table, the needed options, the order
// of the checks, and that an argument attached to an option conntrack
// reads with get_optional_arg (--label-del=foo) is ignored. -E is left out: where it takes the options it
// waits for events.
func TestDifferentialOptionMatrix(t *testing.T) {
	needConntrack(t)
	ns := nstest.New(t)
	for _, cmd := range [][]string{
		{"-L"}, {"-G"}, {"-D"}, {"-I"}, {"-U"}, {"-F"}, {"-C"}, {"-S"}, {"-A"}, {"-V"}, {"-h"},
		{"-L", "expect"}, {"-G", "expect"}, {"-D", "expect"}, {"-I", "expect"}, {"-F", "expect"},
		{"-C", "expect"}, {"-S", "expect"},
	} {
		for _, opts := range optionArgs {
			if cmd[0] == "-V" && opts[0] == "--nat-range=1" {
				// -V runs, and prints ctspec's own version
				// (TestVersionOption).
				continue
			}
			compareRun(t, ns, append(append([]string(nil), cmd...), opts...)...)
		}
	}
}
