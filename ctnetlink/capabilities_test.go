package ctnetlink

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// netnsInodes returns the network namespace inode of each thread of this
// process.
func netnsInodes(t *testing.T) map[string]uint64 {
	t.Helper()
	dirs, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, d := range dirs {
		var st unix.Stat_t
		if unix.Stat(d+"/ns/net", &st) != nil {
			continue // the thread exited meanwhile
		}
		out[filepath.Base(d)] = st.Ino
	}
	return out
}

func TestCapCacheRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "capabilities")
	k := Capabilities{Release: "6.18.0-test", FlushTuple: true, FlushUnspec: false}
	writeCapCache(path, "boot-a", k)
	tuple, unspec, ok := readCapCache(path, "boot-a", "6.18.0-test")
	if !ok || !tuple || unspec {
		t.Fatalf("read = %t, %t, %t; want true, false, true", tuple, unspec, ok)
	}
	for _, tt := range []struct{ name, boot, release string }{
		{"other boot", "boot-b", "6.18.0-test"},
		{"other release", "boot-a", "6.18.1-test"},
		{"no boot id", "", "6.18.0-test"},
	} {
		if _, _, ok := readCapCache(path, tt.boot, tt.release); ok {
			t.Errorf("%s: cache hit, want a miss", tt.name)
		}
	}
	// A file others may write is not trusted.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := readCapCache(path, "boot-a", "6.18.0-test"); ok {
		t.Error("world-writable cache: hit, want a miss")
	}
	for _, bad := range []string{"", "v1 boot-a 6.18.0-test true\n", "v1 boot-a 6.18.0-test yes no\n", "v0 boot-a 6.18.0-test true true\n"} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := readCapCache(path, "boot-a", "6.18.0-test"); ok {
			t.Errorf("cache %q: hit, want a miss", bad)
		}
	}
}

// TestCapabilitiesIsolatedProbe checks that the flush probes run in a
// namespace of their own, give the answer that probing the Conn's own
// namespace gives, leave no thread of the process in another namespace,
// and that the answer is cached and then read from the cache.
func TestCapabilitiesIsolatedProbe(t *testing.T) {
	nstest.RequireRoot(t)
	ns, c := dialNS(t)
	ctx := ctx(t)
	if err := c.Create(ctx, testFlow("192.0.2.1", "192.0.2.2", 1000, 80)); err != nil {
		t.Fatalf("create: %v", err)
	}
	var probeNS uint64
	probeHook = func() {
		var st unix.Stat_t
		if unix.Stat("/proc/thread-self/ns/net", &st) == nil {
			probeNS = st.Ino
		}
	}
	t.Cleanup(func() { probeHook = nil })
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	gates, err := capabilitiesFor(unix.ByteSliceToString(u.Release[:]))
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.probe(ctx, gates)
	if err != nil {
		t.Fatalf("probe in place: %v", err)
	}
	got, err := probeIsolated(ctx, gates)
	if err != nil {
		t.Fatalf("probe in a new namespace: %v", err)
	}
	if got != want {
		t.Fatalf("isolated probe = %+v, want %+v", got, want)
	}
	// The thread that entered the new namespace must end, not be parked
	// for reuse. It sends its answer before it ends: give it a moment.
	if probeNS == 0 {
		t.Fatal("the probe did not report its namespace")
	}
	var stray []string
	for try := 0; try < 100; try++ {
		stray = stray[:0]
		for tid, ino := range netnsInodes(t) {
			if ino == probeNS {
				stray = append(stray, "thread "+tid)
			}
		}
		if len(stray) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(stray) > 0 {
		t.Errorf("still in the probe's network namespace: %s", strings.Join(stray, ", "))
	}

	// Capabilities writes the answer, and a later Conn reads it: a cached
	// answer that differs from the kernel's shows that it was read.
	old := capCachePath
	capCachePath = filepath.Join(t.TempDir(), "capabilities")
	t.Cleanup(func() { capCachePath = old })
	k, err := c.Capabilities(ctx)
	if err != nil {
		t.Fatalf("capabilities: %v", err)
	}
	if k != want {
		t.Fatalf("capabilities = %+v, want %+v", k, want)
	}
	b, err := os.ReadFile(capCachePath)
	if err != nil {
		t.Fatalf("no cache written: %v", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) != 5 || fields[1] != bootID() || fields[2] != k.Release {
		t.Fatalf("cache holds %q", b)
	}
	if !want.FlushTuple && !want.FlushUnspec {
		nstest.SkipOrFail(t, "kernel "+k.Release+" flushes by no probed filter: cannot tell a cached answer from a probed one")
	}
	writeCapCache(capCachePath, bootID(), Capabilities{Release: k.Release})
	c2, err := Dial(&Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	k2, err := c2.Capabilities(ctx)
	if err != nil {
		t.Fatalf("capabilities: %v", err)
	}
	if k2.FlushTuple || k2.FlushUnspec {
		t.Fatalf("capabilities = %+v, want the cached false flags", k2)
	}
}
