package bench

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ctspec/ctspec/internal/nstest"
)

func TestMain(m *testing.M) {
	var child func() error
	if tool := os.Getenv(childToolEnv); tool != "" {
		child = func() error { return runChildDump(tool) }
	}
	if w := os.Getenv(childCleanupEnv); w != "" {
		child = func() error { return runChildCleanup(w) }
	}
	if child != nil {
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		kib, err := vmHWM()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("maxrss %d\n", kib)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChildDump is the child side of childPeakRSS: it opens the namespace
// the parent names, dials every tool and runs one dump with the one asked
// for. TestMain then prints the peak RSS.
func runChildDump(name string) error {
	path := os.Getenv(childNetNSEnv)
	want, err := strconv.Atoi(os.Getenv(childWantEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", childWantEnv, err)
	}
	ns, err := nstest.Open(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	tools, closeTools, err := dumpTools(ns)
	if err != nil {
		return err
	}
	defer closeTools()
	if name == "idle" {
		return nil
	}
	for _, t := range tools {
		if t.name != name {
			continue
		}
		t0 := time.Now()
		got, err := t.run()
		took := time.Since(t0)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if got != want {
			return fmt.Errorf("%s saw %d flows, want %d", name, got, want)
		}
		// The time of the same run whose peak RSS TestMain prints next.
		fmt.Printf("ns %d\n", took.Nanoseconds())
		return nil
	}
	return fmt.Errorf("no dump tool %q", name)
}
