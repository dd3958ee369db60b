package ctnetlink

import (
	"bufio"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The sysctl keys Diagnose reads, as paths under /proc/sys.
const (
	sysctlEvents = "net/netfilter/nf_conntrack_events"
	sysctlCount  = "net/netfilter/nf_conntrack_count"
)

// EventDiagnosis describes what decides whether a network namespace has
// conntrack events. Hints turns it into advice.
type EventDiagnosis struct {
	// Conntrack reports whether connection tracking is active in the
	// namespace: the sysctl net.netfilter.nf_conntrack_count exists.
	Conntrack bool

	// Events is net.netfilter.nf_conntrack_events of the namespace: 0 (no
	// events, except for flows a ruleset asks them for), 1 (events for
	// every flow), 2 (events for flows created while some socket on the
	// host listened for them). It is -1 when the key does not exist: the
	// kernel was built without CONFIG_NF_CONNTRACK_EVENTS, connection
	// tracking is not loaded, or the key is hidden in this user namespace.
	Events int

	// Built is CONFIG_NF_CONNTRACK_EVENTS as /proc/config.gz shows it: "y",
	// "n" when not set, or "" when the kernel does not publish its
	// configuration.
	Built string

	// ListenErr is the error of joining the conntrack event groups in the
	// namespace, or nil when that worked. It matches os.ErrPermission
	// without CAP_NET_ADMIN.
	ListenErr error
}

// Diagnose looks at what decides whether conntrack events reach a
// Listener in the network namespace netns (a file descriptor as in
// ListenConfig.NetNS; 0 for the caller's). Call it when a Listener stays
// silent, and show its Hints.
//
// It reads net.netfilter.nf_conntrack_events and
// net.netfilter.nf_conntrack_count in the namespace, on an OS thread that
// joins it and is then discarded, so that no other goroutine ever runs in
// the namespace; /proc/config.gz when the kernel has it; and opens and
// closes a Listener in the namespace. It changes no setting, though for the
// moment its Listener exists, it counts as a listener for
// nf_conntrack_events=2. The error is non-nil only when the namespace
// cannot be entered (that needs CAP_SYS_ADMIN) or /proc/sys cannot be read
// at all.
//
// The kernel code behind the answers: nf_ct_ecache_ext_add in
// net/netfilter/nf_conntrack_ecache.c decides at a flow's creation whether
// it gets the event extension (always with 1, never with 0 unless a
// ruleset asks, with 2 only while nf_ctnetlink_has_listener is set);
// nfnetlink_bind and nfnetlink_unbind in net/netfilter/nfnetlink.c keep
// that flag, host-wide since Linux 6.3; nf_conntrack_standalone.c
// registers the sysctl only with CONFIG_NF_CONNTRACK_EVENTS.
func Diagnose(netns int) (*EventDiagnosis, error) {
	d := &EventDiagnosis{Events: -1}
	err := inNetNS(netns, func() error {
		if _, err := os.Stat("/proc/sys/net"); err != nil {
			return fmt.Errorf("read sysctls: %w", err)
		}
		_, err := os.Stat("/proc/sys/" + sysctlCount)
		d.Conntrack = err == nil
		if v, err := readSysctlHere(sysctlEvents); err == nil {
			d.Events = v
		}
		return nil
	})
	if err != nil {
		return nil, &Error{Op: "diagnose", Err: err}
	}
	d.Built = kernelConfig("CONFIG_NF_CONNTRACK_EVENTS")
	l, err := Listen(&ListenConfig{NetNS: netns, Groups: []Group{GroupNew}, ReadBuffer: -1})
	if err != nil {
		d.ListenErr = err
	} else {
		l.Close()
	}
	return d, nil
}

// Hints explains, one sentence each, why the namespace may have no
// events, or fewer than expected, and what to do about it. It returns none
// when every flow created from now on has events (Events is 1 and
// listening works); then a silent Listener means no flow was created or
// changed, or that another kernel module took the conntrack event hook.
func (d *EventDiagnosis) Hints() []string {
	var h []string
	if d.ListenErr != nil {
		if errors.Is(d.ListenErr, os.ErrPermission) {
			h = append(h, "listening for conntrack events needs CAP_NET_ADMIN in the network namespace: run as root or grant the capability")
		} else {
			h = append(h, fmt.Sprintf("listening for conntrack events failed: %v", d.ListenErr))
		}
	}
	switch {
	case !d.Conntrack:
		h = append(h, "connection tracking is not active in this network namespace (no net.netfilter.nf_conntrack_count): "+
			"load nf_conntrack, or add a firewall rule that uses conntrack, so that flows and their events exist")
	case d.Events < 0 && d.Built == "n":
		h = append(h, "the kernel was built without CONFIG_NF_CONNTRACK_EVENTS: it sends no conntrack events at all; "+
			"dump the table periodically instead (conntrack -L works, conntrack -E does not)")
	case d.Events < 0:
		h = append(h, "net.netfilter.nf_conntrack_events does not exist: the kernel was probably built without "+
			"CONFIG_NF_CONNTRACK_EVENTS and sends no conntrack events, or the key is hidden in this user namespace")
	case d.Events == 0:
		h = append(h, "net.netfilter.nf_conntrack_events is 0: the kernel sends no conntrack events, except for flows a "+
			"ruleset asks them for (nft ct event set); run sysctl -w net.netfilter.nf_conntrack_events=1 in this network "+
			"namespace to have events for flows created from then on")
	case d.Events == 2:
		h = append(h, "net.netfilter.nf_conntrack_events is 2 (the default since Linux 5.19): only flows created while "+
			"some socket on the host listened for conntrack events have events; flows created before the first "+
			"listener never have any, not even when they end; run sysctl -w net.netfilter.nf_conntrack_events=1 "+
			"in this network namespace to have events for every flow created from then on")
	case d.Events != 1:
		h = append(h, fmt.Sprintf("net.netfilter.nf_conntrack_events is %d, a value this build does not know", d.Events))
	}
	return h
}

// kernelConfig returns the value of option in /proc/config.gz: "y", "m",
// "n" when it is not set, or "" when the file is unavailable or does not
// mention it.
func kernelConfig(option string) string {
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		return ""
	}
	defer f.Close()
	return configValue(f, option)
}

// configValue returns the value of option in the gzip-compressed kernel
// configuration r, as kernelConfig does.
func configValue(r io.Reader, option string) string {
	z, err := gunzip(bufio.NewReader(r))
	if err != nil {
		return ""
	}
	defer z.Close()
	s := bufio.NewScanner(z)
	for s.Scan() {
		line := s.Text()
		if v, ok := strings.CutPrefix(line, option+"="); ok {
			return v
		}
		if line == "# "+option+" is not set" {
			return "n"
		}
	}
	return ""
}

// gzip header flags (RFC 1952, section 2.3.1).
const (
	gzipFlagHCRC    = 1 << 1
	gzipFlagExtra   = 1 << 2
	gzipFlagName    = 1 << 3
	gzipFlagComment = 1 << 4
)

// gunzip skips the header of the gzip member r starts with (RFC 1952) and
// returns a reader of its deflate data. It checks no CRC: compress/gzip
// would bring hash/crc32, whose tables every program importing this
// package would then build at start-up, for a file that Diagnose only
// searches. A damaged stream still fails in compress/flate.
func gunzip(r *bufio.Reader) (io.ReadCloser, error) {
	var h [10]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("gzip header: %w", err)
	}
	if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
		return nil, errors.New("gzip header: not a deflate gzip stream")
	}
	flags := h[3]
	if flags&gzipFlagExtra != 0 {
		var n [2]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return nil, fmt.Errorf("gzip extra field: %w", err)
		}
		if _, err := r.Discard(int(n[0]) | int(n[1])<<8); err != nil {
			return nil, fmt.Errorf("gzip extra field: %w", err)
		}
	}
	for _, f := range []byte{gzipFlagName, gzipFlagComment} {
		if flags&f == 0 {
			continue
		}
		if _, err := r.ReadBytes(0); err != nil {
			return nil, fmt.Errorf("gzip header: %w", err)
		}
	}
	if flags&gzipFlagHCRC != 0 {
		if _, err := r.Discard(2); err != nil {
			return nil, fmt.Errorf("gzip header: %w", err)
		}
	}
	return flate.NewReader(r), nil
}

// readSysctlInt reads the integer sysctl key, a path under /proc/sys, in
// the network namespace netns (0 for the caller's).
func readSysctlInt(netns int, key string) (int, error) {
	var v int
	err := inNetNS(netns, func() error {
		var err error
		v, err = readSysctlHere(key)
		return err
	})
	return v, err
}

// readSysctlHere reads an integer sysctl in the namespace of the calling
// thread: /proc/sys/net resolves against the opener's network namespace.
func readSysctlHere(key string) (int, error) {
	b, err := os.ReadFile("/proc/sys/" + key)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// inNetNS runs f in the network namespace netns, a file descriptor, or
// directly when netns is 0. For another namespace f runs on a goroutine
// locked to an OS thread that joins the namespace; the goroutine never
// unlocks the thread, so the runtime ends the thread with it instead of
// handing it, still in the namespace, to other goroutines. f must not start
// goroutines that expect to run in the namespace.
func inNetNS(netns int, f func() error) error {
	if netns == 0 {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The runtime never ends the main thread; it would stay in
			// the namespace. Run f on another thread, leave this one
			// untouched and give it back.
			errc <- inNetNS(netns, f)
			runtime.UnlockOSThread()
			return
		}
		if err := unix.Setns(netns, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
