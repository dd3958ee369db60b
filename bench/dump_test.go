package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	mdnetlink "github.com/mdlayher/netlink"
	timo "github.com/ti-mo/conntrack"
	vish "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// dumpTool is one way to read the whole table. run returns the number of
// flows it saw.
type dumpTool struct {
	name string
	// goCode is false for the conntrack command, whose allocations the
	// Go runtime does not see.
	goCode bool
	run    func() (int, error)
}

// dumpTools returns the dump implementations under comparison, each with
// its own connection into the namespace.
func dumpTools(ns *nstest.NS) ([]dumpTool, func(), error) {
	ctx := context.Background()
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	fail := func(err error) ([]dumpTool, func(), error) {
		closeAll()
		return nil, nil, err
	}

	raw, err := newRawDumper(ns)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, raw.close)

	c, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: ns.FD()})
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { c.Close() })

	vh, err := vishHandle(ns)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, vh.Close)

	tc, err := timo.Dial(&mdnetlink.Config{NetNS: ns.FD()})
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { tc.Close() })

	tools := []dumpTool{
		{"raw", true, raw.dump},
		{"ctspec-stream", true, func() (int, error) {
			n := 0
			for _, err := range c.Dump(ctx, nil) {
				if err != nil {
					return n, err
				}
				n++
			}
			return n, nil
		}},
		{"ctspec-list", true, func() (int, error) {
			flows, err := c.List(ctx, nil)
			return len(flows), err
		}},
		{"vishvananda", true, func() (int, error) {
			flows, err := vh.ConntrackTableList(vish.ConntrackTable, vish.FAMILY_ALL)
			return len(flows), err
		}},
		{"ti-mo", true, func() (int, error) {
			flows, err := tc.Dump(nil)
			return len(flows), err
		}},
		{"conntrack-cli", false, func() (int, error) {
			// Output goes to /dev/null, as with conntrack -L > /dev/null;
			// the count comes from the summary on standard error.
			return listCommand(ns, "conntrack", "-L")
		}},
	}
	return tools, closeAll, nil
}

// vishHandle opens a vishvananda/netlink handle whose netfilter socket
// lives in ns: it is opened on a thread inside the namespace, which is
// discarded afterwards.
func vishHandle(ns *nstest.NS) (*vish.Handle, error) {
	var h *vish.Handle
	err := ns.Do(func() error {
		var err error
		h, err = vish.NewHandle(unix.NETLINK_NETFILTER)
		return err
	})
	return h, err
}

// rawDumper receives a dump into one reused 64 KiB buffer and counts the
// messages by walking their nlmsghdr, with no decoding: the physical limit
// of a dump on this kernel.
type rawDumper struct {
	fd  int
	seq uint32
	buf []byte
	req []byte
}

func newRawDumper(ns *nstest.NS) (*rawDumper, error) {
	d := &rawDumper{fd: -1, buf: make([]byte, 64<<10)}
	err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("raw bind: %w", err)
		}
		d.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	// nlmsghdr and nfgenmsg of IPCTNL_MSG_CT_GET, NLM_F_DUMP, AF_UNSPEC.
	d.req = make([]byte, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint32(d.req[0:], uint32(len(d.req)))
	binary.NativeEndian.PutUint16(d.req[4:], unix.NFNL_SUBSYS_CTNETLINK<<8|ipctnlMsgCtGet)
	binary.NativeEndian.PutUint16(d.req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	d.req[16] = unix.AF_UNSPEC
	d.req[17] = unix.NFNETLINK_V0
	return d, nil
}

// ipctnlMsgCtGet is IPCTNL_MSG_CT_GET from linux/netfilter/nfnetlink_conntrack.h.
const ipctnlMsgCtGet = 1

func (d *rawDumper) close() { unix.Close(d.fd) }

func (d *rawDumper) dump() (int, error) { return d.walk(nil) }

// walk runs one dump and hands each flow message, nlmsghdr included, to fn
// if fn is not nil. The message aliases the receive buffer.
func (d *rawDumper) walk(fn func(msg []byte)) (int, error) {
	d.seq++
	binary.NativeEndian.PutUint32(d.req[8:], d.seq)
	if _, err := unix.Write(d.fd, d.req); err != nil {
		return 0, fmt.Errorf("raw send: %w", err)
	}
	count := 0
	for {
		n, err := unix.Read(d.fd, d.buf)
		if err != nil {
			return count, fmt.Errorf("raw receive: %w", err)
		}
		for b := d.buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return count, fmt.Errorf("raw receive: bad message length %d", l)
			}
			switch binary.NativeEndian.Uint16(b[4:]) {
			case unix.NLMSG_DONE:
				return count, nil
			case unix.NLMSG_ERROR:
				if errno := int32(binary.NativeEndian.Uint32(b[unix.NLMSG_HDRLEN:])); errno != 0 {
					return count, fmt.Errorf("raw receive: %w", unix.Errno(-errno))
				}
				return count, nil
			}
			count++
			if fn != nil {
				fn(b[:l])
			}
			b = b[min((l+3)&^3, len(b)):]
		}
	}
}

// BenchmarkDump reads tables of 10k, 100k and 250k established TCP flows
// with each tool. Each table is filled once and read by every tool. On the
// largest table the peak-rss sub-benchmarks also run one dump per tool in a
// child process and report its peak resident set size.
func BenchmarkDump(b *testing.B) {
	for _, n := range dumpSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			t := newTable(b)
			t.fill(b, ctspecFlows(tcpSpecs(n)), n)
			tools, closeTools, err := dumpTools(t.ns)
			if err != nil {
				b.Fatal(err)
			}
			defer closeTools()

			var rawPerFlow float64
			for _, tool := range tools {
				b.Run(tool.name, func(b *testing.B) {
					m := newMeter(b, n)
					for i := 0; i < b.N; i++ {
						m.start()
						got, err := tool.run()
						m.stop()
						if err != nil {
							b.Fatalf("%s: %v", tool.name, err)
						}
						if got != n {
							b.Fatalf("%s saw %d flows, want %d", tool.name, got, n)
						}
					}
					m.report(tool.goCode)
					if tool.name == "raw" {
						rawPerFlow = m.perFlow()
					}
					if rawPerFlow > 0 {
						b.ReportMetric(m.perFlow()/rawPerFlow, "x-raw")
					}
				})
			}
			if n != dumpSizes[len(dumpSizes)-1] {
				return
			}
			for _, tool := range append([]dumpTool{{name: "idle"}}, tools...) {
				b.Run("peak-rss/"+tool.name, func(b *testing.B) {
					if _, err := os.Stat(gnuTime); err != nil && tool.name == "conntrack-cli" {
						nstest.SkipOrFail(b, "peak RSS of conntrack needs GNU time (Debian package time): "+err.Error())
					}
					var peak, peakNs int64
					for i := 0; i < b.N; i++ {
						kib, ns, err := childPeakRSS(t.ns, tool.name, n)
						if err != nil {
							b.Fatal(err)
						}
						if kib > peak {
							peak, peakNs = kib, ns
						}
					}
					b.ReportMetric(float64(peak)/1024, "peak-MiB")
					// The time of the run whose peak RSS is reported:
					// the child's own dump, or conntrack's whole process.
					b.ReportMetric(float64(peakNs), "ns/op")
				})
			}
		})
	}
}

// Environment of a child process that runs one dump for peak-rss.
const (
	childToolEnv  = "CTSPEC_BENCH_DUMP_TOOL"
	childNetNSEnv = "CTSPEC_BENCH_NETNS"
	childWantEnv  = "CTSPEC_BENCH_WANT"
)

// childPeakRSS runs one dump with the named tool in a new process and
// returns the process's peak resident set size (VmHWM) in KiB. The tool
// "idle" only dials every client, which gives the floor of a Go process.
//
// Go children report their own VmHWM. The rusage of a child of this
// process would not do: a process started with vfork and exec inherits
// its parent's peak in ru_maxrss, and the parent holds the benchmark's
// tables. For the same reason conntrack runs under GNU time, whose own
// small peak is all its child can inherit.
func childPeakRSS(ns *nstest.NS, tool string, want int) (kib, nanos int64, err error) {
	var cmd *exec.Cmd
	if tool == "conntrack-cli" {
		cmd = ns.Command(gnuTime, "-f", "maxrss %M\nns %e", "conntrack", "-L")
	} else {
		cmd = exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		cmd.Env = append(os.Environ(),
			childToolEnv+"="+tool,
			childNetNSEnv+"="+ns.Path(),
			childWantEnv+"="+strconv.Itoa(want))
	}
	kib, out, err := childMaxRSSOutput(cmd, tool, tool != "conntrack-cli")
	if err != nil || tool == "idle" {
		return kib, 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "ns "); ok {
			v = strings.TrimSpace(v)
			if tool == "conntrack-cli" {
				// GNU time's %e: elapsed seconds, two decimals.
				sec, err := strconv.ParseFloat(v, 64)
				return kib, int64(sec * 1e9), err
			}
			nanos, err = strconv.ParseInt(v, 10, 64)
			return kib, nanos, err
		}
	}
	return 0, 0, fmt.Errorf("peak-rss %s: no time in %q", tool, out)
}

// childMaxRSS runs a peak-rss child and returns the peak RSS in KiB that
// it printed on a "maxrss" line: a Go child on standard output (goChild),
// GNU time on standard error, in which case standard output is discarded.
// what names the child in errors.
func childMaxRSS(cmd *exec.Cmd, what string, goChild bool) (int64, error) {
	kib, _, err := childMaxRSSOutput(cmd, what, goChild)
	return kib, err
}

// childMaxRSSOutput is childMaxRSS that also returns what the child
// printed.
func childMaxRSSOutput(cmd *exec.Cmd, what string, goChild bool) (int64, string, error) {
	var stdout, stderr strings.Builder
	cmd.Stderr = &stderr
	if goChild {
		cmd.Stdout = &stdout
	}
	if err := cmd.Run(); err != nil {
		return 0, "", fmt.Errorf("peak-rss %s: %v\n%s", what, err, stderr.String())
	}
	out := stdout.String() + stderr.String()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "maxrss "); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return kib, out, err
		}
	}
	return 0, "", fmt.Errorf("peak-rss %s: no maxrss line in %q", what, out)
}

// gnuTime is GNU time(1), which reports the peak RSS of the command it runs.
const gnuTime = "/usr/bin/time"

// vmHWM returns the VmHWM line of /proc/self/status in KiB.
func vmHWM() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// BenchmarkDial opens and closes each Go client's connection into a
// namespace: the set-up the dump benchmarks leave out of their times,
// while conntrack -L pays its whole process start in its own.
func BenchmarkDial(b *testing.B) {
	ns := newNetNS(b)
	dials := []struct {
		name string
		dial func() (func(), error)
	}{
		{"ctspec", func() (func(), error) {
			c, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: ns.FD()})
			if err != nil {
				return nil, err
			}
			return func() { c.Close() }, nil
		}},
		{"vishvananda", func() (func(), error) {
			h, err := vishHandle(ns)
			if err != nil {
				return nil, err
			}
			return h.Close, nil
		}},
		{"ti-mo", func() (func(), error) {
			c, err := timo.Dial(&mdnetlink.Config{NetNS: ns.FD()})
			if err != nil {
				return nil, err
			}
			return func() { c.Close() }, nil
		}},
	}
	for _, d := range dials {
		b.Run(d.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				closeConn, err := d.dial()
				if err != nil {
					b.Fatal(err)
				}
				closeConn()
			}
		})
	}
}
