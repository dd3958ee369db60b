// Package nstest creates throwaway network namespaces for kernel tests and
// for the capture tool.
//
// # Threads
//
// A network namespace belongs to an OS thread, not to a goroutine. Create
// unshares on a dedicated goroutine locked to its thread and never unlocks
// it, so the Go runtime ends that thread together with the goroutine instead
// of handing it, still inside the namespace, to other goroutines. Do joins
// the namespace the same way. The caller's own thread never changes
// namespace. This follows cilium/ebpf internal/testutils/netns_linux.go and
// jsimonetti/rtnetlink internal/testutils/netns.go.
//
// # Privilege
//
// Creating a namespace needs CAP_SYS_ADMIN, and configuring it needs
// CAP_NET_ADMIN; in practice the tests run as root. Without them New and
// RequireRoot skip the test, unless the environment variable
// CTSPEC_REQUIRE_KERNEL is set to 1, as CI does, in which case they fail it.
// RequireCommands does the same for missing programs.
//
// Mutation testing runs the unit tests many times over and must not touch
// the kernel: CTSPEC_SKIP_KERNEL=1 makes New and RequireRoot skip every
// kernel test. It is ignored when CTSPEC_REQUIRE_KERNEL=1, so CI can never
// skip a kernel test by accident.
//
// # Commands
//
// Run and RunErr start programs such as conntrack and nft inside the
// namespace with nsenter(1), which must be installed. Path names the
// namespace for such programs.
package nstest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// RequireKernelEnv is the environment variable that turns a skip for lack
// of privilege into a test failure when set to "1".
const RequireKernelEnv = "CTSPEC_REQUIRE_KERNEL"

// SkipKernelEnv is the environment variable that, set to "1", makes every
// kernel test skip, for mutation runs that test only code without the
// kernel. RequireKernelEnv=1 overrides it.
const SkipKernelEnv = "CTSPEC_SKIP_KERNEL"

// NS is a network namespace created by Create or New. It holds a file
// descriptor to the namespace, which keeps the namespace alive until Close;
// the kernel destroys it once nothing else refers to it.
//
// The methods of NS may be called from several goroutines at once, but Close
// must not run concurrently with any other method.
type NS struct {
	fd int // -1 once closed
}

// errClosed is returned by methods called after Close.
var errClosed = errors.New("nstest: namespace is closed")

// Create makes a new network namespace with the loopback interface up.
// It does not change the namespace of the calling thread. The caller must
// Close the returned NS. An error wraps the errno of the failing system
// call, so errors.Is(err, os.ErrPermission) reports missing privilege.
func Create() (*NS, error) {
	fd, err := onNewThread(func() (int, error) {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return -1, fmt.Errorf("nstest: unshare network namespace: %w", err)
		}
		p := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("nstest: open %s: %w", p, err)
		}
		return fd, nil
	})
	if err != nil {
		return nil, err
	}
	ns := &NS{fd: fd}
	if err := ns.linkUp("lo"); err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// Open opens the existing network namespace that path names, such as the
// Path of an NS in another process. The caller must Close the returned NS.
func Open(path string) (*NS, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("nstest: open %s: %w", path, err)
	}
	return &NS{fd: fd}, nil
}

// New returns a new network namespace with the loopback interface up and
// closes it when the test ends. Without privilege it skips the test, or
// fails it when CTSPEC_REQUIRE_KERNEL=1.
func New(tb testing.TB) *NS {
	tb.Helper()
	RequireRoot(tb)
	ns, err := Create()
	if errors.Is(err, os.ErrPermission) {
		skipOrFail(tb, rootNeeded+err.Error())
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := ns.Close(); err != nil {
			tb.Error(err)
		}
	})
	return ns
}

// RequireRoot skips the test unless it runs as root, or fails it when
// CTSPEC_REQUIRE_KERNEL=1. It also skips the test when CTSPEC_SKIP_KERNEL=1
// and CTSPEC_REQUIRE_KERNEL is not 1. Every kernel test calls it, directly
// or through New.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if KernelOff() {
		tb.Skip("kernel tests are off: " + SkipKernelEnv + "=1")
	}
	if euid := os.Geteuid(); euid != 0 {
		skipOrFail(tb, fmt.Sprintf("%srunning as uid %d", rootNeeded, euid))
	}
}

// KernelOff reports whether kernel tests are to skip: CTSPEC_SKIP_KERNEL=1
// and CTSPEC_REQUIRE_KERNEL is not 1.
func KernelOff() bool {
	return os.Getenv(SkipKernelEnv) == "1" && os.Getenv(RequireKernelEnv) != "1"
}

const rootNeeded = "needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) to create a network namespace: "

// RequireCommands skips the test unless every named program is on PATH,
// or fails it when CTSPEC_REQUIRE_KERNEL=1.
func RequireCommands(tb testing.TB, names ...string) {
	tb.Helper()
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		skipOrFail(tb, "needs "+strings.Join(missing, ", ")+" on PATH")
	}
}

// SkipOrFail skips the test with msg, or fails it when
// CTSPEC_REQUIRE_KERNEL=1: for any other missing prerequisite of a kernel
// test, such as a program RequireCommands does not cover.
func SkipOrFail(tb testing.TB, msg string) {
	tb.Helper()
	skipOrFail(tb, msg)
}

// skipOrFail skips the test with msg, or fails it when the environment asks
// for kernel tests to run.
func skipOrFail(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv(RequireKernelEnv) == "1" {
		tb.Fatalf("%s (%s=1)", msg, RequireKernelEnv)
	}
	tb.Skip(msg)
}

// Close releases the namespace. Netlink sockets and other objects that
// still refer to it keep it alive. Close is idempotent.
func (ns *NS) Close() error {
	if ns.fd < 0 {
		return nil
	}
	err := unix.Close(ns.fd)
	ns.fd = -1
	if err != nil {
		return fmt.Errorf("nstest: close namespace: %w", err)
	}
	return nil
}

// FD returns the file descriptor of the namespace, for netlink.Config.NetNS.
// It is -1 after Close.
func (ns *NS) FD() int {
	return ns.fd
}

// Path returns a path under /proc that other processes can open to join
// the namespace, for example with nsenter --net. It stays valid until Close.
func (ns *NS) Path() string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.FD())
}

// Do runs f on an OS thread inside the namespace and returns its error.
// Sockets and listeners that f opens belong to the namespace and may be
// used from any goroutine afterwards. Goroutines that f starts do not run
// inside the namespace. The thread is discarded when f returns, so f must
// not call runtime.UnlockOSThread more often than runtime.LockOSThread.
func (ns *NS) Do(f func() error) error {
	if ns.fd < 0 {
		return errClosed
	}
	_, err := onNewThread(func() (int, error) {
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			return 0, fmt.Errorf("nstest: join network namespace: %w", err)
		}
		return 0, f()
	})
	return err
}

// onNewThread runs f on a new goroutine locked to its OS thread and waits
// for it. The goroutine never unlocks the thread, so the runtime terminates
// the thread when f returns, whatever f did to it.
//
// The runtime cannot terminate the process's main thread; it parks it
// forever instead, and /proc/self/ns/net names the main thread's namespace.
// So f never runs there: a goroutine that lands on the main thread keeps it
// locked while another goroutine, which then cannot use it, runs f.
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

// Command returns a command that runs name with args inside the namespace
// through nsenter.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + ns.Path(), "--", name}, args...)...)
}

// RunErr runs name with args inside the namespace and returns its standard
// output and standard error. A non-zero exit status is an *exec.ExitError.
func (ns *NS) RunErr(name string, args ...string) (stdout, stderr string, err error) {
	if ns.fd < 0 {
		return "", "", errClosed
	}
	var o, e bytes.Buffer
	cmd := ns.Command(name, args...)
	cmd.Stdout = &o
	cmd.Stderr = &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Run runs name with args inside the namespace and returns its standard
// output. It fails the test with the command's output when the command
// fails.
func (ns *NS) Run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	stdout, stderr, err := ns.RunErr(name, args...)
	if err != nil {
		tb.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// SetSysctl writes value to the sysctl key, such as
// "net.netfilter.nf_conntrack_acct", inside the namespace. Only
// per-namespace keys, most of net.*, can be set this way; writing any other
// key changes it for the whole host, so SetSysctl refuses keys outside net.
func (ns *NS) SetSysctl(key, value string) error {
	if !strings.HasPrefix(key, "net.") || strings.Contains(key, "/") || strings.Contains(key, "..") {
		return fmt.Errorf("nstest: sysctl %q: not a per-namespace net.* key", key)
	}
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return ns.Do(func() error {
		// /proc/sys/net resolves against the network namespace of the
		// opening thread, which here is the namespace's.
		if err := os.WriteFile(p, []byte(value), 0); err != nil {
			return fmt.Errorf("nstest: sysctl %s=%s: %w", key, value, err)
		}
		return nil
	})
}

// Sysctl is SetSysctl that fails the test on error.
func (ns *NS) Sysctl(tb testing.TB, key, value string) {
	tb.Helper()
	if err := ns.SetSysctl(key, value); err != nil {
		tb.Fatal(err)
	}
}

// linkUp sets the IFF_UP flag of the named interface inside the namespace
// with an RTM_NEWLINK request.
func (ns *NS) linkUp(name string) error {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: ns.FD()})
	if err != nil {
		return fmt.Errorf("nstest: dial rtnetlink: %w", err)
	}
	defer c.Close()

	// struct ifinfomsg: family, pad, type, index, flags, change; host order.
	// Index 0 lets the kernel find the link by IFLA_IFNAME.
	ifi := make([]byte, unix.SizeofIfInfomsg)
	ifi[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(ifi[8:], unix.IFF_UP)
	binary.NativeEndian.PutUint32(ifi[12:], unix.IFF_UP)
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, name)
	attrs, err := ae.Encode()
	if err != nil {
		return fmt.Errorf("nstest: encode link attributes: %w", err)
	}
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  unix.RTM_NEWLINK,
			Flags: netlink.Request | netlink.Acknowledge,
		},
		Data: append(ifi, attrs...),
	})
	if err != nil {
		return fmt.Errorf("nstest: set %s up: %w", name, err)
	}
	return nil
}
