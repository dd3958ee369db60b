package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	vish "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// cleanupSize is the table size of the cleanup workloads.
const cleanupSize = 250_000

// The endpoints workload: 1,000 UDP services, each the original
// destination of endpointFlows flows of a table of cleanupSize.
const (
	endpointCount = 1000
	endpointFlows = 20
)

// endpoint returns the address and port of UDP service e.
func endpoint(e int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 16, byte(e >> 8), byte(e)}), uint16(5000+e))
}

// endpointSpecs returns n flows, half TCP and half UDP. Two flows in 25
// belong to the services, endpointFlows each when n is cleanupSize. Two
// more in 25 are decoys that a filter missing a field would take as well:
// UDP to a service's address on another port, and TCP to a service's
// address and port.
func endpointSpecs(n int) []flowSpec {
	s := make([]flowSpec, n)
	k := 0
	for i := range s {
		proto := uint8(unix.IPPROTO_TCP)
		if i%2 == 0 {
			proto = unix.IPPROTO_UDP
		}
		s[i] = specOf(i, proto, 0)
		ep := endpoint(i / 25 % endpointCount)
		switch i % 25 {
		case 0, 1:
			ep = endpoint(k % endpointCount)
			k++
			s[i].proto, s[i].dst, s[i].dport = unix.IPPROTO_UDP, ep.Addr(), ep.Port()
		case 2:
			s[i].proto, s[i].dst, s[i].dport = unix.IPPROTO_UDP, ep.Addr(), 53
		case 3:
			s[i].proto, s[i].dst, s[i].dport = unix.IPPROTO_TCP, ep.Addr(), ep.Port()
		}
	}
	return s
}

// endpointSelected reports whether f belongs to one of the services.
func endpointSelected(f *ctnetlink.Flow) bool {
	if f.TupleOrig.Proto.Num != unix.IPPROTO_UDP {
		return false
	}
	d := f.TupleOrig.Dst().As4()
	e := int(d[2])<<8 | int(d[3])
	return e < endpointCount && netip.AddrPortFrom(f.TupleOrig.Dst(), f.TupleOrig.Proto.DstPort) == endpoint(e)
}

func endpointMatchers() []ctnetlink.Selector {
	ms := make([]ctnetlink.Selector, endpointCount)
	for e := range ms {
		ep := endpoint(e)
		ms[e] = ctnetlink.Selector{
			Proto:       ctnetlink.Protocol(unix.IPPROTO_UDP),
			OrigDst:     ctnetlink.HostIs(ep.Addr()),
			OrigDstPort: ctnetlink.Port(ep.Port()),
		}
	}
	return ms
}

// The mark workload deletes the flows whose mark ANDed with markMask is
// markValue. Marks also vary outside the mask, so a tool that ignored the
// mask would delete a third of the flows it should.
const (
	markValue = 0x300
	markMask  = 0xff00
)

// markSpecs returns n flows, half TCP and half UDP, with marks
// (i%10)<<8 | i%3: a tenth of them are selected.
func markSpecs(n int) []flowSpec {
	s := make([]flowSpec, n)
	for i := range s {
		proto := uint8(unix.IPPROTO_TCP)
		if i%2 == 0 {
			proto = unix.IPPROTO_UDP
		}
		s[i] = specOf(i, proto, uint32(i%10)<<8|uint32(i%3))
	}
	return s
}

func markSelected(f *ctnetlink.Flow) bool { return f.Mark&markMask == markValue }

// stateSpecs returns n flows in mixed states: per ten, three UDP, two
// established, two TIME_WAIT, and one each of FIN_WAIT, CLOSE_WAIT and
// SYN_SENT. A fifth are in TIME_WAIT.
func stateSpecs(n int) []flowSpec {
	states := [10]ctnetlink.TCPState{
		0, 0, 0,
		ctnetlink.TCPStateEstablished, ctnetlink.TCPStateEstablished,
		ctnetlink.TCPStateTimeWait, ctnetlink.TCPStateTimeWait,
		ctnetlink.TCPStateFinWait, ctnetlink.TCPStateCloseWait, ctnetlink.TCPStateSynSent,
	}
	s := make([]flowSpec, n)
	for i := range s {
		st := states[i%10]
		if st == 0 {
			s[i] = specOf(i, unix.IPPROTO_UDP, 0)
			continue
		}
		s[i] = specOf(i, unix.IPPROTO_TCP, 0)
		s[i].tcpState = st
	}
	return s
}

func stateSelected(f *ctnetlink.Flow) bool {
	return f.TupleOrig.Proto.Num == unix.IPPROTO_TCP && f.ProtoInfo.TCP.State == ctnetlink.TCPStateTimeWait
}

// cleanupWorkload is one table of cleanupSize flows and the flows to
// delete from it.
type cleanupWorkload struct {
	name  string
	specs func(n int) []flowSpec
	// selected tells, in Go, whether a flow is one to delete; want is how
	// many of the table's flows are.
	selected func(*ctnetlink.Flow) bool
	want     int
	// matchers are ctspec's Cleanup arguments. They are built apart from
	// the table so that the peak-rss child holds only them.
	matchers func() []ctnetlink.Selector
	// scan adds a Cleanup run with NoKernelFilters, one shared dump.
	scan bool
	// cliSample, when not zero, is how many of the conntrack commands run;
	// sampleSelected selects the flows they delete.
	cliSample      int
	sampleSelected func(*ctnetlink.Flow) bool
}

// endpointCLISample is how many of the 1,000 services conntrack deletes in
// the suite. Every conntrack -D reads the whole table and filters it in
// user space, 0.6 to 1.2 s for 250k flows on a 2-core machine, so all
// 1,000 would take 10 to 20 minutes; the time of the sample is scaled up to
// the 1,000. One conntrack -R of the 1,000 -D lines is no faster per line.
const endpointCLISample = 10

var (
	endpointsWorkload = cleanupWorkload{
		name:     "endpoints",
		specs:    endpointSpecs,
		selected: endpointSelected,
		want:     endpointCount * endpointFlows,
		matchers: endpointMatchers,
		scan:     true,

		cliSample: endpointCLISample,
		sampleSelected: func(f *ctnetlink.Flow) bool {
			d := f.TupleOrig.Dst().As4()
			return endpointSelected(f) && int(d[2])<<8|int(d[3]) < endpointCLISample
		},
	}
	markWorkload = cleanupWorkload{
		name:     "mark",
		specs:    markSpecs,
		selected: markSelected,
		want:     cleanupSize / 10,
		matchers: func() []ctnetlink.Selector {
			return []ctnetlink.Selector{{Mark: ctnetlink.Is(ctnetlink.MarkMatch{Mark: markValue, Mask: markMask})}}
		},
	}
	stateWorkload = cleanupWorkload{
		name:     "tcp-state",
		specs:    stateSpecs,
		selected: stateSelected,
		want:     cleanupSize / 5,
		matchers: func() []ctnetlink.Selector {
			return []ctnetlink.Selector{{Proto: ctnetlink.Protocol(unix.IPPROTO_TCP), TCPStates: ctnetlink.Is(ctnetlink.TCPStateTimeWait)}}
		},
	}
	cleanupWorkloads = []*cleanupWorkload{&endpointsWorkload, &markWorkload, &stateWorkload}
)

func cleanupWorkloadNamed(name string) (*cleanupWorkload, bool) {
	for _, w := range cleanupWorkloads {
		if w.name == name {
			return w, true
		}
	}
	return nil, false
}

// vishFunc is a vishvananda/netlink filter written as a function, for what
// its ConntrackFilter cannot express (mark, mask, TCP state).
type vishFunc func(f *vish.ConntrackFlow) bool

func (fn vishFunc) MatchConntrackFlow(f *vish.ConntrackFlow) bool { return fn(f) }

// vishFilters returns the vishvananda/netlink filters of a workload.
func vishFilters(tb testing.TB, w *cleanupWorkload) []vish.CustomConntrackFilter {
	tb.Helper()
	switch w.name {
	case "endpoints":
		fs := make([]vish.CustomConntrackFilter, endpointCount)
		for e := range fs {
			ep := endpoint(e)
			f := &vish.ConntrackFilter{}
			if err := f.AddProtocol(unix.IPPROTO_UDP); err != nil {
				tb.Fatal(err)
			}
			if err := f.AddIP(vish.ConntrackOrigDstIP, net.IP(ep.Addr().AsSlice())); err != nil {
				tb.Fatal(err)
			}
			if err := f.AddPort(vish.ConntrackOrigDstPort, ep.Port()); err != nil {
				tb.Fatal(err)
			}
			fs[e] = f
		}
		return fs
	case "mark":
		return []vish.CustomConntrackFilter{vishFunc(func(f *vish.ConntrackFlow) bool { return f.Mark&markMask == markValue })}
	case "tcp-state":
		return []vish.CustomConntrackFilter{vishFunc(func(f *vish.ConntrackFlow) bool {
			p, ok := f.ProtoInfo.(*vish.ProtoInfoTCP)
			return f.Forward.Protocol == unix.IPPROTO_TCP && ok && p.State == uint8(ctnetlink.TCPStateTimeWait)
		})}
	}
	tb.Fatalf("no vishvananda filters for %s", w.name)
	return nil
}

// cliDeletes returns the conntrack -D arguments of a workload, one command
// per element.
func cliDeletes(w *cleanupWorkload) [][]string {
	switch w.name {
	case "endpoints":
		cmds := make([][]string, endpointCount)
		for e := range cmds {
			ep := endpoint(e)
			cmds[e] = []string{"-D", "-p", "udp", "--orig-dst", ep.Addr().String(), "--dport", strconv.Itoa(int(ep.Port()))}
		}
		return cmds
	case "mark":
		return [][]string{{"-D", "-m", fmt.Sprintf("%#x/%#x", markValue, markMask)}}
	case "tcp-state":
		return [][]string{{"-D", "-p", "tcp", "--state", "TIME_WAIT"}}
	}
	return nil
}

// BenchmarkCleanupEndpoints deletes the 20k flows of 1,000 UDP services
// (original destination address and port) from a table of 250k flows, the
// other 230k being UDP and TCP flows, some to the same addresses. ctspec
// makes one Cleanup call with a Matcher per service, once as planned (one
// kernel flush per matcher) and once with NoKernelFilters (ctspec-scan: the
// 1,000 matchers evaluated over one dump). vishvananda/netlink's
// ConntrackDeleteFilters gets the same 1,000 filters. conntrack takes one
// conntrack -D -p udp --orig-dst ADDR --dport PORT per service; the suite
// runs endpointCLISample of them and reports the time scaled to 1,000 (see
// benchCleanup).
func BenchmarkCleanupEndpoints(b *testing.B) { benchCleanup(b, &endpointsWorkload) }

// BenchmarkCleanupMark deletes the 25k flows whose mark is 0x300 under the
// mask 0xff00 from a table of 250k: ctspec's Cleanup with one Matcher,
// which the kernel evaluates in a filtered flush; conntrack -D -m
// 0x300/0xff00; and vishvananda/netlink, whose ConntrackFilter has no mark,
// with a filter function.
func BenchmarkCleanupMark(b *testing.B) { benchCleanup(b, &markWorkload) }

// BenchmarkCleanupState deletes the 50k TCP flows in TIME_WAIT from a
// table of 250k flows in mixed TCP states and UDP: ctspec's Cleanup with
// one Matcher, evaluated over one dump since no kernel filter has the
// state; conntrack -D -p tcp --state TIME_WAIT; and vishvananda/netlink,
// whose ConntrackFilter has no state, with a filter function.
func BenchmarkCleanupState(b *testing.B) { benchCleanup(b, &stateWorkload) }

// benchCleanup runs a cleanup workload with each tool. vishvananda/netlink's
// ConntrackDeleteFilters dumps the whole table, matches in Go and deletes
// one flow per request. conntrack runs each of its commands, or the first
// cliSample of them: then it reports the time of those scaled up to all of
// them in ns/op and flows/s, and the sample's size in cli-sample.
//
// After every run the table must hold exactly the flows not selected: the
// count must be right and no selected flow may be left. flows/s counts the
// deleted flows. peak-rss/ctspec runs ctspec's Cleanup in a child process
// and reports its peak resident set size; for the endpoints it is the
// ctspec-scan one, which dumps the table, where the planned flushes hold
// nothing per flow.
func benchCleanup(b *testing.B, w *cleanupWorkload) {
	ctx := context.Background()
	t := newTable(b)
	vh, err := vishHandle(t.ns)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(vh.Close)

	flows := ctspecFlows(w.specs(cleanupSize))
	matchers := w.matchers()
	filters := vishFilters(b, w)
	setup := func(tb testing.TB) {
		t.flush(tb)
		t.fill(tb, flows, cleanupSize)
	}
	verify := func(tb testing.TB) { t.expectCleaned(tb, w.want, w.selected) }
	cleanup := func(opts *ctnetlink.CleanupOptions) func(testing.TB) {
		return func(tb testing.TB) {
			res, err := t.c.Cleanup(ctx, matchers, opts)
			if err != nil || res.Failed > 0 {
				tb.Fatalf("Cleanup: %v, %d failed, samples %v", err, res.Failed, res.Samples)
			}
		}
	}
	noKernel := &ctnetlink.CleanupOptions{NoKernelFilters: true}
	muts := []mutation{{"ctspec", true, cleanup(nil)}}
	if w.scan {
		muts = append(muts, mutation{"ctspec-scan", true, cleanup(noKernel)})
	}
	muts = append(muts, mutation{"vishvananda", true, func(tb testing.TB) {
		n, err := vh.ConntrackDeleteFilters(vish.ConntrackTable, vish.FAMILY_V4, filters...)
		if err != nil || int(n) != w.want {
			tb.Fatalf("ConntrackDeleteFilters: deleted %d, want %d: %v", n, w.want, err)
		}
	}})
	cli := cliDeletes(w)
	if w.cliSample == 0 {
		muts = append(muts, mutation{"conntrack-cli", false, func(tb testing.TB) {
			for _, args := range cli {
				runQuiet(tb, t.ns, "conntrack", args...)
			}
		}})
	}
	runMutations(b, t, w.want, setup, verify, muts)

	if w.cliSample > 0 {
		sample := cli[:w.cliSample]
		scale := len(cli) / len(sample)
		sampleWant := w.want / scale
		b.Run("conntrack-cli", func(b *testing.B) {
			m := newMeter(b, sampleWant)
			for i := 0; i < b.N; i++ {
				setup(b)
				m.start()
				for _, args := range sample {
					runQuiet(b, t.ns, "conntrack", args...)
				}
				m.stop()
				t.expectCleaned(b, sampleWant, w.sampleSelected)
			}
			scaled := m.median() * time.Duration(scale)
			b.ReportMetric(float64(scaled.Nanoseconds()), "ns/op")
			b.ReportMetric(float64(w.want)/scaled.Seconds(), "flows/s")
			b.ReportMetric(float64(len(sample)), "cli-sample")
		})
	}

	rssTool := "ctspec"
	if w.scan {
		rssTool = "ctspec-scan"
	}
	b.Run("peak-rss/"+rssTool, func(b *testing.B) {
		var peak, peakNs int64
		for i := 0; i < b.N; i++ {
			setup(b)
			kib, ns, err := childCleanupPeakRSS(t.ns, w.name, w.scan)
			if err != nil {
				b.Fatal(err)
			}
			verify(b)
			if kib > peak {
				peak, peakNs = kib, ns
			}
		}
		b.ReportMetric(float64(peak)/1024, "peak-MiB")
		// The time of the run whose peak RSS is reported, in the child.
		b.ReportMetric(float64(peakNs), "ns/op")
	})
}

// expectCleaned fails the benchmark unless the table holds exactly the
// flows that selected does not select: cleanupSize-want of them, none
// selected.
func (t *table) expectCleaned(tb testing.TB, want int, selected func(*ctnetlink.Flow) bool) {
	tb.Helper()
	t.expect(tb, cleanupSize-want)
	left := 0
	for f, err := range t.c.Dump(context.Background(), nil) {
		if err != nil {
			tb.Fatalf("dump: %v", err)
		}
		if selected(f) {
			left++
		}
	}
	if left > 0 {
		tb.Fatalf("%d selected flows are left", left)
	}
}

// childCleanupEnv names the cleanup workload a child process runs for
// peak-rss, followed by "/scan" for a Cleanup with NoKernelFilters; the
// namespace is in childNetNSEnv.
const childCleanupEnv = "CTSPEC_BENCH_CLEANUP"

// childCleanupPeakRSS runs ctspec's Cleanup of workload w, with
// NoKernelFilters if scan, in a new process and returns the process's peak
// resident set size (VmHWM) in KiB.
func childCleanupPeakRSS(ns *nstest.NS, w string, scan bool) (kib, nanos int64, err error) {
	if scan {
		w += "/scan"
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), childCleanupEnv+"="+w, childNetNSEnv+"="+ns.Path())
	var out string
	kib, out, err = childMaxRSSOutput(cmd, "cleanup "+w, true)
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "ns "); ok {
			nanos, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return kib, nanos, err
		}
	}
	return 0, 0, fmt.Errorf("peak-rss cleanup %s: no time in %q", w, out)
}

// runChildCleanup is the child side of childCleanupPeakRSS: it builds the
// workload's matchers, dials into the namespace the parent names and runs
// one Cleanup. TestMain then prints the peak RSS.
func runChildCleanup(arg string) error {
	name, mode, _ := strings.Cut(arg, "/")
	w, ok := cleanupWorkloadNamed(name)
	if !ok {
		return fmt.Errorf("no cleanup workload %q", name)
	}
	path := os.Getenv(childNetNSEnv)
	ns, err := nstest.Open(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	c, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: ns.FD()})
	if err != nil {
		return err
	}
	defer c.Close()
	opts := &ctnetlink.CleanupOptions{NoKernelFilters: mode == "scan"}
	t0 := time.Now()
	res, err := c.Cleanup(context.Background(), w.matchers(), opts)
	took := time.Since(t0)
	if err != nil || res.Failed > 0 {
		return fmt.Errorf("Cleanup: %v, %d failed, samples %v", err, res.Failed, res.Samples)
	}
	// The time of the same run whose peak RSS TestMain prints next.
	fmt.Printf("ns %d\n", took.Nanoseconds())
	return nil
}
