package bench

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// Table sizes of the dump workloads.
var dumpSizes = []int{10_000, 100_000, 250_000}

// bulkSize is the number of flows the create, delete and flush workloads
// handle.
const bulkSize = 100_000

// flowTimeout is long enough that no flow expires during a run.
const flowTimeout = 6 * 3600

// sizeName is the sub-benchmark name of a table size, such as "n=100k".
func sizeName(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("n=%dk", n/1000)
	}
	return fmt.Sprintf("n=%d", n)
}

// flowSpec describes flow i of a generated table. Every flow has a source
// address of its own, so tables of up to 2^24 flows have distinct tuples.
type flowSpec struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
	mark         uint32
	// tcpState is the state of a TCP flow; the zero value stands for
	// established.
	tcpState ctnetlink.TCPState
}

func specOf(i int, proto uint8, mark uint32) flowSpec {
	return flowSpec{
		src:   netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
		dst:   netip.AddrFrom4([4]byte{198, 51, 100, 1}),
		sport: uint16(32768 + i%28000),
		dport: 443,
		proto: proto,
		mark:  mark,
	}
}

// tcpSpecs returns n established TCP flows with mark 0.
func tcpSpecs(n int) []flowSpec {
	s := make([]flowSpec, n)
	for i := range s {
		s[i] = specOf(i, unix.IPPROTO_TCP, 0)
	}
	return s
}

// mixedSpecs returns 2n flows: n TCP flows with mark 1, interleaved with n
// UDP flows with mark 0. The filters "TCP" and "mark 1" select the same
// half of the table.
func mixedSpecs(n int) []flowSpec {
	s := make([]flowSpec, 2*n)
	for i := range s {
		if i%2 == 0 {
			s[i] = specOf(i, unix.IPPROTO_TCP, 1)
		} else {
			s[i] = specOf(i, unix.IPPROTO_UDP, 0)
		}
	}
	return s
}

// ctspecFlows converts specs to ctspec flows ready for CreateMany.
func ctspecFlows(specs []flowSpec) []ctnetlink.Flow {
	flows := make([]ctnetlink.Flow, len(specs))
	for i, s := range specs {
		f := &flows[i]
		orig := netip.AddrPortFrom(s.src, s.sport)
		reply := netip.AddrPortFrom(s.dst, s.dport)
		f.SetTupleOrig(ctnetlink.NewTuple(s.proto, orig, reply))
		f.SetTupleReply(ctnetlink.NewTuple(s.proto, reply, orig))
		f.SetTimeout(flowTimeout)
		if s.mark != 0 {
			f.SetMark(s.mark)
		}
		if s.proto == unix.IPPROTO_TCP {
			st := s.tcpState
			if st == ctnetlink.TCPStateNone {
				st = ctnetlink.TCPStateEstablished
			}
			f.ProtoInfo.TCP.SetState(st)
		}
	}
	return flows
}

// table is a namespace with a ctspec client dialed into it.
type table struct {
	ns *nstest.NS
	c  *ctnetlink.Conn
}

// newTable creates a namespace for one workload.
func newTable(tb testing.TB) *table {
	tb.Helper()
	ns := newNetNS(tb)
	c, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: ns.FD()})
	if err != nil {
		tb.Fatal(err)
	}
	t := &table{ns: ns, c: c}
	tb.Cleanup(func() {
		// Flushing here spares the kernel's namespace cleanup, which
		// would otherwise free the flows while the next workload runs.
		_ = c.Flush(context.Background(), nil)
		c.Close()
	})
	return t
}

// fill creates flows with ctspec and checks that the table holds want
// flows afterwards.
func (t *table) fill(tb testing.TB, flows []ctnetlink.Flow, want int) {
	tb.Helper()
	res, err := t.c.CreateMany(context.Background(), flows)
	if err != nil {
		tb.Fatalf("fill: %v", err)
	}
	if len(res.Errors) > 0 {
		tb.Fatalf("fill: %d of %d creates failed, first: %v", len(res.Errors), len(flows), res.Errors[0])
	}
	t.expect(tb, want)
}

// flush empties the table.
func (t *table) flush(tb testing.TB) {
	tb.Helper()
	if err := t.c.Flush(context.Background(), nil); err != nil {
		tb.Fatalf("flush: %v", err)
	}
	t.expect(tb, 0)
}

// count returns the number of flows in the table.
func (t *table) count(tb testing.TB) int {
	tb.Helper()
	st, err := t.c.Stats(context.Background())
	if err != nil {
		tb.Fatalf("stats: %v", err)
	}
	return int(st.Entries)
}

// expect fails the benchmark unless the table holds want flows.
func (t *table) expect(tb testing.TB, want int) {
	tb.Helper()
	if got := t.count(tb); got != want {
		tb.Fatalf("table holds %d flows, want %d", got, want)
	}
}

// meter measures the timed parts of a benchmark, so that setup between
// StopTimer and StartTimer is left out of allocs/flow as it is out of
// ns/op. Each timed part is one operation on flowsPerOp flows.
//
// ns/op and flows/s are of the median operation rather than the mean: the
// suite runs on small shared machines, and the median shrugs off the odd
// operation that another process slowed down.
type meter struct {
	b              *testing.B
	flowsPerOp     int
	ops            []time.Duration
	t0             time.Time
	mallocs, bytes uint64
	ms             runtime.MemStats
}

func newMeter(b *testing.B, flowsPerOp int) *meter {
	b.StopTimer()
	b.ReportAllocs()
	return &meter{b: b, flowsPerOp: flowsPerOp}
}

// start begins a timed operation.
func (m *meter) start() {
	runtime.ReadMemStats(&m.ms)
	m.mallocs -= m.ms.Mallocs
	m.bytes -= m.ms.TotalAlloc
	m.b.StartTimer()
	m.t0 = time.Now()
}

// stop ends a timed operation.
func (m *meter) stop() {
	d := time.Since(m.t0)
	m.b.StopTimer()
	m.ops = append(m.ops, d)
	runtime.ReadMemStats(&m.ms)
	m.mallocs += m.ms.Mallocs
	m.bytes += m.ms.TotalAlloc
}

// median returns the median operation's time.
func (m *meter) median() time.Duration {
	s := slices.Clone(m.ops)
	slices.Sort(s)
	return s[len(s)/2]
}

// perFlow returns the median operation's time per flow in nanoseconds.
func (m *meter) perFlow() float64 {
	return float64(m.median().Nanoseconds()) / float64(m.flowsPerOp)
}

// report sets ns/op and flows/s from the median operation and adds, for Go
// code, allocs/flow and B/flow over all operations.
func (m *meter) report(goAllocs bool) {
	if len(m.ops) == 0 {
		return
	}
	med := m.median()
	m.b.ReportMetric(float64(med.Nanoseconds()), "ns/op")
	m.b.ReportMetric(float64(m.flowsPerOp)/med.Seconds(), "flows/s")
	if goAllocs {
		flows := float64(len(m.ops) * m.flowsPerOp)
		m.b.ReportMetric(float64(m.mallocs)/flows, "allocs/flow")
		m.b.ReportMetric(float64(m.bytes)/flows, "B/flow")
	}
}
