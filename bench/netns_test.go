package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// requireKernelEnv turns a skip for lack of privilege into a failure when
// set to "1", as CI does for the main module's kernel tests.
const requireKernelEnv = "CTSPEC_REQUIRE_KERNEL"

// netNS is a network namespace that a benchmark created. It holds a file
// descriptor to the namespace, which keeps it alive until Close.
//
// The namespace is made on a goroutine locked to its own OS thread that
// never unlocks it, so the runtime ends that thread instead of handing it,
// still inside the namespace, to other goroutines. The benchmark's own
// thread never changes namespace.
type netNS struct {
	fd int
}

// newNetNS creates a network namespace with the loopback interface down
// (conntrack needs no interface) and closes it when the benchmark ends.
// Without privilege it skips the benchmark.
func newNetNS(tb testing.TB) *netNS {
	tb.Helper()
	requireRoot(tb)
	for _, cmd := range []string{"conntrack", "nsenter"} {
		if _, err := exec.LookPath(cmd); err != nil {
			skipOrFail(tb, cmd+" is not installed")
		}
	}
	fd, err := onNewThread(func() (int, error) {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return -1, fmt.Errorf("unshare network namespace: %w", err)
		}
		return unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	})
	if errors.Is(err, os.ErrPermission) {
		skipOrFail(tb, err.Error())
	}
	if err != nil {
		tb.Fatal(err)
	}
	ns := &netNS{fd: fd}
	tb.Cleanup(func() { ns.Close() })
	return ns
}

// Close releases the namespace; sockets still open in it keep it alive.
func (ns *netNS) Close() error {
	if ns.fd < 0 {
		return nil
	}
	err := unix.Close(ns.fd)
	ns.fd = -1
	return err
}

// FD is the namespace's file descriptor, for the NetNS field of the
// clients' configurations.
func (ns *netNS) FD() int { return ns.fd }

// Path names the namespace for other processes, such as nsenter --net.
func (ns *netNS) Path() string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.fd) }

// Do runs f on a fresh OS thread inside the namespace; the thread is
// discarded when f returns. Sockets that f opens stay in the namespace.
func (ns *netNS) Do(f func() error) error {
	_, err := onNewThread(func() (int, error) {
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			return 0, fmt.Errorf("join network namespace: %w", err)
		}
		return 0, f()
	})
	return err
}

// Command returns a command that runs name inside the namespace.
func (ns *netNS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + ns.Path(), "--", name}, args...)...)
}

// Run runs name inside the namespace with its standard output discarded
// and fails the benchmark if it fails.
func (ns *netNS) Run(tb testing.TB, name string, args ...string) {
	tb.Helper()
	var stderr strings.Builder
	cmd := ns.Command(name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
}

// onNewThread runs f on a new goroutine locked to its OS thread, which it
// never unlocks, and waits for it. The runtime cannot end the process's
// main thread, so f never runs there.
func onNewThread(f func() (int, error)) (int, error) {
	type result struct {
		n   int
		err error
	}
	c := make(chan result)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			n, err := onNewThread(f)
			runtime.UnlockOSThread() // untouched: back to the pool
			c <- result{n, err}
			return
		}
		n, err := f()
		c <- result{n, err}
	}()
	r := <-c
	return r.n, r.err
}

func requireRoot(tb testing.TB) {
	tb.Helper()
	if euid := os.Geteuid(); euid != 0 {
		skipOrFail(tb, fmt.Sprintf("running as uid %d", euid))
	}
}

func skipOrFail(tb testing.TB, reason string) {
	tb.Helper()
	msg := "needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), conntrack and nsenter: " + reason
	if os.Getenv(requireKernelEnv) == "1" {
		tb.Fatalf("%s (%s=1)", msg, requireKernelEnv)
	}
	tb.Skip(msg)
}
