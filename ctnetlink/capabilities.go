package ctnetlink

import (
	"context"
	"errors"
	"fmt"
	"github.com/ctspec/ctspec/nfnl"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Capabilities says which filters the running kernel evaluates itself.
//
// Detection never deletes anything. Version gates come from the kernel
// release (the features were added in these versions):
//
//	feature                          dump    flush
//	family (nfgenmsg)                all     all
//	mark/mask (CTA_MARK_MASK)        3.x     4.x
//	status/mask (CTA_STATUS_MASK)    6.3     6.3
//	zone (CTA_ZONE)                  6.8     6.8
//	tuple filter (CTA_FILTER)        5.8     probed
//
// The tuple filter in a flush is probed on kernels that know CTA_FILTER: a
// flush whose filter can match no flow (protocol 255 from 0.0.0.0 to
// 0.0.0.0 with mark 0xffffffff, status TEMPLATE and zone 65535) either
// fails with EOPNOTSUPP, on kernels whose flush refuses CTA_FILTER, or
// succeeds without touching the table. On kernels with the mark filter, a
// flush for both families at once (AF_UNSPEC) is probed the same way, with
// a mark filter no flow can pass (mark 1 under mask 0).
//
// Beyond the gates, the planner trusts a kernel flush only with what it was
// seen to do right (Linux 6.18, checked by the randomized cleanup test):
// a family applies only together with a tuple filter, tuple filter
// addresses only for IPv4, and ports only for TCP and UDP. Everything else
// goes through the dump-and-delete pass, which leaves the same table.
type Capabilities struct {
	// Release is the kernel release the gates were read from (uname -r).
	Release string
	// Major and Minor are the parsed version.
	Major, Minor int

	DumpMark, DumpStatus, DumpZone, DumpTuple     bool
	FlushMark, FlushStatus, FlushZone, FlushTuple bool
	// FlushUnspec reports that a filtered flush for both families in one
	// request (AF_UNSPEC) is accepted; without it, Cleanup sends one flush
	// per family.
	FlushUnspec bool
}

func (k Capabilities) atLeast(major, minor int) bool {
	return k.Major > major || (k.Major == major && k.Minor >= minor)
}

func (k Capabilities) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kernel %s: dump filters:", k.Release)
	for _, f := range []struct {
		on   bool
		name string
	}{{true, "family"}, {k.DumpMark, "mark"}, {k.DumpStatus, "status"}, {k.DumpZone, "zone"}, {k.DumpTuple, "tuple"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	b.WriteString("; flush filters:")
	for _, f := range []struct {
		on   bool
		name string
	}{{true, "family"}, {k.FlushMark, "mark"}, {k.FlushStatus, "status"}, {k.FlushZone, "zone"}, {k.FlushTuple, "tuple"}, {k.FlushUnspec, "unspec"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	return b.String()
}

// parseRelease reads "6.18.44-foo" as 6, 18.
func parseRelease(r string) (int, int, error) {
	parts := strings.SplitN(r, ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("kernel release %q has no major.minor", r)
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0, 0, fmt.Errorf("kernel release %q: %w", r, err)
	}
	minorStr := parts[1]
	for i, ch := range minorStr {
		if ch < '0' || ch > '9' {
			minorStr = minorStr[:i]
			break
		}
	}
	minor, err := strconv.Atoi(minorStr)
	if err != nil {
		return 0, 0, fmt.Errorf("kernel release %q: %w", r, err)
	}
	return major, minor, nil
}

// capabilitiesFor returns the version-gated capabilities of a release.
func capabilitiesFor(release string) (Capabilities, error) {
	k := Capabilities{Release: release}
	var err error
	if k.Major, k.Minor, err = parseRelease(release); err != nil {
		return k, err
	}
	k.DumpMark = k.atLeast(3, 0)
	k.FlushMark = k.atLeast(4, 0)
	k.DumpStatus, k.FlushStatus = k.atLeast(6, 3), k.atLeast(6, 3)
	k.DumpZone, k.FlushZone = k.atLeast(6, 8), k.atLeast(6, 8)
	k.DumpTuple = k.atLeast(5, 8)
	return k, nil
}

type capCache struct {
	once sync.Once
	caps Capabilities
	err  error
}

// capCachePath is where Capabilities keeps the probed answer for the
// running kernel. /run is emptied at every boot; the boot id in the file
// guards against one that is not.
var capCachePath = "/run/ctspec/capabilities"

// Capabilities detects, once per Conn, which filters the kernel evaluates.
//
// The version gates come from uname. The flush probes, which kernels from
// 4.0 and 5.8 need, are flushes whose filter matches nothing, yet the
// kernel walks the whole table for each. Capabilities therefore sends them
// in a throwaway network namespace, whose table is empty, from a locked
// thread that is discarded afterwards; the Conn's own namespace is probed
// only when that fails (no CAP_SYS_ADMIN). The answer is kept per boot in
// /run/ctspec/capabilities, keyed by the boot id and the kernel release,
// where the caller may write it, so that later processes skip the probes.
func (c *Conn) Capabilities(ctx context.Context) (Capabilities, error) {
	c.caps.once.Do(func() {
		c.caps.caps, c.caps.err = c.detect(ctx)
	})
	return c.caps.caps, c.caps.err
}

func (c *Conn) detect(ctx context.Context) (Capabilities, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return Capabilities{}, &Error{Op: "capabilities", Err: err}
	}
	k, err := capabilitiesFor(unix.ByteSliceToString(u.Release[:]))
	if err != nil {
		return Capabilities{}, &Error{Op: "capabilities", Err: err}
	}
	if !k.DumpTuple && !k.FlushMark {
		return k, nil
	}
	boot := bootID()
	if tuple, unspec, ok := readCapCache(capCachePath, boot, k.Release); ok {
		k.FlushTuple = tuple && k.DumpTuple
		k.FlushUnspec = unspec && k.FlushMark
		return k, nil
	}
	probed, err := probeIsolated(ctx, k)
	if err != nil {
		// No new namespace for us: probe where the Conn is.
		probed, err = c.probe(ctx, k)
		if err != nil {
			return Capabilities{}, err
		}
	}
	writeCapCache(capCachePath, boot, probed)
	return probed, nil
}

// probe sets the probed flags of k with the Conn's own sockets.
func (c *Conn) probe(ctx context.Context, k Capabilities) (Capabilities, error) {
	var err error
	if k.DumpTuple {
		if k.FlushTuple, err = c.probeFlushTuple(ctx); err != nil {
			return k, err
		}
	}
	if k.FlushMark {
		if k.FlushUnspec, err = c.probeFlushUnspec(ctx); err != nil {
			return k, err
		}
	}
	return k, nil
}

// probeIsolated probes k in a new, empty network namespace. The thread
// that enters it is locked to a goroutine that ends without unlocking it,
// so the runtime discards the thread rather than reuse it in the wrong
// namespace. The main thread cannot be discarded, only parked for good,
// and /proc/self/ns/net names its namespace: the probe never runs there.
func probeIsolated(ctx context.Context, k Capabilities) (Capabilities, error) {
	type result struct {
		k   Capabilities
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread: keep it while another goroutine, which
			// cannot land on it now, probes.
			pk, err := probeIsolated(ctx, k)
			runtime.UnlockOSThread() // untouched: back to the pool
			done <- result{pk, err}
			return
		}
		// No UnlockOSThread: the thread leaves with the goroutine.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		if probeHook != nil {
			probeHook()
		}
		// A socket belongs to the namespace of the thread that opens it.
		s, err := nfnl.DialSocket(nil)
		if err != nil {
			done <- result{err: err}
			return
		}
		// Any further socket the pool dials is dialled here too, on this
		// thread, inside the throwaway namespace.
		pc := &Conn{nl: nfnl.NewConn(&nfnl.Config{MaxIdle: 1}, func() (*nfnl.Socket, error) { return nfnl.DialSocket(nil) })}
		pc.nl.Put(s)
		pk, err := pc.probe(ctx, k)
		pc.Close()
		done <- result{pk, err}
	}()
	r := <-done
	return r.k, r.err
}

// probeHook, if set, runs on the probing thread once it is in the new
// namespace. Tests use it.
var probeHook func()

// bootID returns the kernel's boot id, or "" if it cannot be read.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// readCapCache reads the probed flags the cache holds for this boot and
// release. It trusts only a regular file owned by root or by the caller
// that nobody else may write.
func readCapCache(path, boot, release string) (tuple, unspec, ok bool) {
	if boot == "" {
		return false, false, false
	}
	f, err := os.Open(path)
	if err != nil {
		return false, false, false
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil ||
		st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o022 != 0 ||
		(st.Uid != 0 && int(st.Uid) != os.Geteuid()) {
		return false, false, false
	}
	var b [512]byte
	n, _ := f.Read(b[:])
	fields := strings.Fields(string(b[:n]))
	if len(fields) != 5 || fields[0] != "v1" || fields[1] != boot || fields[2] != release {
		return false, false, false
	}
	tuple, err1 := strconv.ParseBool(fields[3])
	unspec, err2 := strconv.ParseBool(fields[4])
	if err1 != nil || err2 != nil {
		return false, false, false
	}
	return tuple, unspec, true
}

// writeCapCache records probed flags for later processes, if it can:
// failing to write only means that the next process probes again.
func writeCapCache(path, boot string, k Capabilities) {
	if boot == "" || strings.ContainsAny(k.Release, " \t\n") {
		return
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, ".capabilities-*")
	if err != nil {
		return
	}
	line := fmt.Sprintf("v1 %s %s %t %t\n", boot, k.Release, k.FlushTuple, k.FlushUnspec)
	_, err = tmp.WriteString(line)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}

// probeFlushUnspec sends a flush for both families whose mark filter no
// flow passes: mark 1 under mask 0. Only kernels that apply a flush's mark
// filter (FlushMark) may receive it; older ones would flush everything.
func (c *Conn) probeFlushUnspec(ctx context.Context) (bool, error) {
	var q Flow
	q.SetMark(1)
	q.SetMarkMask(0)
	q.SetStatus(StatusTemplate)
	q.SetStatusMask(StatusTemplate)
	err := c.do(ctx, "probe-flush-unspec", MsgDelete, netlink.Acknowledge, unix.AF_UNSPEC, schemaFlow, q.AppendAttributes, nil)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL), errors.Is(err, unix.EAFNOSUPPORT):
		return false, nil
	}
	return false, err
}

// probeFlushTuple sends a flush with a tuple filter that matches no flow.
func (c *Conn) probeFlushTuple(ctx context.Context) (bool, error) {
	var q Flow
	q.TupleOrig.IP.SetV4Src(zeroV4)
	q.TupleOrig.IP.SetV4Dst(zeroV4)
	q.TupleOrig.Proto.SetNum(255)
	q.Filter = &Filter{}
	q.Filter.SetOrigFlags(FilterFlagsIPSrc | FilterFlagsIPDst | FilterFlagsProtoNum)
	q.Filter.SetReplyFlags(0)
	q.SetMark(0xffffffff)
	q.SetMarkMask(0xffffffff)
	q.SetStatus(StatusTemplate)
	q.SetStatusMask(StatusTemplate)
	q.SetZone(65535)
	err := c.do(ctx, "probe-flush-filter", MsgDelete, netlink.Acknowledge, unix.AF_INET, schemaFlow, q.AppendAttributes, nil)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EOPNOTSUPP):
		return false, nil
	}
	return false, err
}
