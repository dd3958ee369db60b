package nstest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inode returns the inode of the namespace file at path.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

// nsInode returns the inode of the namespace behind ns.
func nsInode(t *testing.T, ns *NS) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(ns.FD(), &st); err != nil {
		t.Fatalf("fstat namespace: %v", err)
	}
	return st.Ino
}

func TestNewIsNotHost(t *testing.T) {
	// Threads outside Create and Do never change namespace, so whichever
	// thread runs this test is in the host's namespace.
	host := inode(t, "/proc/thread-self/ns/net")
	ns := New(t)
	for i := 0; i < 20; i++ {
		New(t) // give the runtime chances to use the main thread
	}
	if got := nsInode(t, ns); got == host {
		t.Fatalf("namespace inode %d is the host's", got)
	}
	if got := inode(t, "/proc/self/ns/net"); got != host {
		t.Fatalf("the main thread moved to namespace %d, want the host's %d", got, host)
	}
	if got := inode(t, ns.Path()); got != nsInode(t, ns) {
		t.Fatalf("Path %s has inode %d, want %d", ns.Path(), got, nsInode(t, ns))
	}
}

func TestTwoNamespacesDiffer(t *testing.T) {
	a, b := New(t), New(t)
	if nsInode(t, a) == nsInode(t, b) {
		t.Fatal("two namespaces share an inode")
	}
}

func TestLoopbackUp(t *testing.T) {
	ns := New(t)
	var lo *net.Interface
	err := ns.Do(func() error {
		var err error
		lo, err = net.InterfaceByName("lo")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if lo.Flags&net.FlagUp == 0 {
		t.Fatalf("lo flags %v, want up", lo.Flags)
	}
	if out := ns.Run(t, "ip", "-o", "link", "show", "dev", "lo"); !strings.Contains(out, ",UP") {
		t.Fatalf("ip link show lo: %q, want UP", out)
	}
}

func TestRunInside(t *testing.T) {
	ns := New(t)
	got := strings.TrimSpace(ns.Run(t, "readlink", "/proc/self/ns/net"))
	if want := fmt.Sprintf("net:[%d]", nsInode(t, ns)); got != want {
		t.Fatalf("command ran in %s, want %s", got, want)
	}
}

func TestRunErr(t *testing.T) {
	ns := New(t)
	stdout, stderr, err := ns.RunErr("sh", "-c", "echo out; echo err >&2; exit 3")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("err = %v, want exit status 3", err)
	}
	if stdout != "out\n" || stderr != "err\n" {
		t.Fatalf("stdout %q, stderr %q; want \"out\\n\", \"err\\n\"", stdout, stderr)
	}
}

func TestDoRunsInside(t *testing.T) {
	ns := New(t)
	want := nsInode(t, ns)
	var got uint64
	err := ns.Do(func() error {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return err
		}
		got = st.Ino
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Do ran in namespace %d, want %d", got, want)
	}

	// The thread that joined the namespace must not return to the pool:
	// soon no thread of this process is left inside.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tids := threadsIn(t, want)
		if len(tids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads %v still in the namespace after Do returned", tids)
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDoReturnsError(t *testing.T) {
	ns := New(t)
	want := errors.New("from f")
	if err := ns.Do(func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("Do = %v, want %v", err, want)
	}
}

// threadsIn lists the threads of this process inside the namespace with
// the given inode.
func threadsIn(t *testing.T, ino uint64) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		t.Fatal(err)
	}
	var tids []string
	for _, d := range dirs {
		var st unix.Stat_t
		if unix.Stat(d+"/ns/net", &st) != nil {
			continue // the thread exited meanwhile
		}
		if st.Ino == ino {
			tids = append(tids, filepath.Base(d))
		}
	}
	return tids
}

func TestSysctl(t *testing.T) {
	const key, path = "net.ipv4.ip_default_ttl", "/proc/sys/net/ipv4/ip_default_ttl"
	host, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ns := New(t)
	want := "33"
	if strings.TrimSpace(string(host)) == want {
		want = "34"
	}
	ns.Sysctl(t, key, want)
	if got := strings.TrimSpace(ns.Run(t, "cat", path)); got != want {
		t.Fatalf("%s inside = %s, want %s", key, got, want)
	}
	if got, _ := os.ReadFile(path); string(got) != string(host) {
		t.Fatalf("host %s changed from %q to %q", key, host, got)
	}
}

func TestSetSysctlRefusesHostKeys(t *testing.T) {
	ns := &NS{fd: -1} // the key check comes first; no namespace is needed
	for _, key := range []string{"kernel.hostname", "vm.swappiness", "net/../kernel/hostname", "net...kernel.hostname"} {
		if err := ns.SetSysctl(key, "x"); err == nil {
			t.Errorf("SetSysctl(%q) succeeded, want an error", key)
		}
	}
}

func TestClosed(t *testing.T) {
	ns := New(t)
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if ns.FD() != -1 {
		t.Fatalf("FD after Close = %d, want -1", ns.FD())
	}
	if err := ns.Do(func() error { return nil }); err == nil {
		t.Fatal("Do after Close succeeded")
	}
	if _, _, err := ns.RunErr("true"); err == nil {
		t.Fatal("RunErr after Close succeeded")
	}
}

// recorder is a testing.TB that records Skip and Fatal instead of acting.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestRequireCommands(t *testing.T) {
	t.Setenv(RequireKernelEnv, "1")
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		RequireCommands(r, "sh", "ctspec-no-such-program")
	}()
	<-done
	if want := "needs ctspec-no-such-program on PATH"; !strings.HasPrefix(r.failed, want) {
		t.Fatalf("failed with %q, want %q", r.failed, want)
	}
}

func TestSkipOrFail(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		skipped bool
	}{
		{name: "unset", env: "", skipped: true},
		{name: "zero", env: "0", skipped: true},
		{name: "required", env: "1", skipped: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireKernelEnv, tt.env)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				SkipOrFail(r, rootNeeded+"reason")
			}()
			<-done
			msg := r.failed
			if tt.skipped {
				msg = r.skipped
			}
			if msg == "" || (r.skipped != "") != tt.skipped || (r.failed != "") == tt.skipped {
				t.Fatalf("skipped %q, failed %q; want skipped = %v", r.skipped, r.failed, tt.skipped)
			}
			if !strings.Contains(msg, "needs root") || !strings.Contains(msg, "reason") {
				t.Fatalf("message %q lacks the reason", msg)
			}
		})
	}
}

func TestRequireRootSkipKernel(t *testing.T) {
	tests := []struct {
		name             string
		skipEnv, require string
		skipped          bool
	}{
		{name: "off for mutation runs", skipEnv: "1", skipped: true},
		{name: "require wins", skipEnv: "1", require: "1"},
		{name: "skip unset", require: "1"},
		{name: "skip zero", skipEnv: "0", require: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(SkipKernelEnv, tt.skipEnv)
			t.Setenv(RequireKernelEnv, tt.require)
			if got := KernelOff(); got != tt.skipped {
				t.Errorf("KernelOff() = %v, want %v", got, tt.skipped)
			}
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				RequireRoot(r)
			}()
			<-done
			if tt.skipped {
				if !strings.Contains(r.skipped, SkipKernelEnv+"=1") {
					t.Fatalf("skipped %q, failed %q; want a skip naming %s", r.skipped, r.failed, SkipKernelEnv)
				}
				return
			}
			// As root, RequireRoot returns; as another user it fails,
			// because the tests require the kernel. It never skips.
			if r.skipped != "" {
				t.Fatalf("skipped %q with %s=%q", r.skipped, RequireKernelEnv, tt.require)
			}
			if os.Geteuid() == 0 && r.failed != "" {
				t.Fatalf("failed %q as root", r.failed)
			}
		})
	}
}

func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				fmt.Fprint(&b, "x")
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := len(b.String()); n != 400 {
		t.Errorf("%d bytes, want 400", n)
	}
}
