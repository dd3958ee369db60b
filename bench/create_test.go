package bench

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	mdnetlink "github.com/mdlayher/netlink"
	timo "github.com/ti-mo/conntrack"
	vish "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// mutation is one way to carry out a workload that changes the table.
type mutation struct {
	name   string
	goCode bool
	run    func(tb testing.TB)
}

// runMutations runs each mutation b.N times on a table that setup prepares
// outside the timer, and checks the table with verify afterwards. flows is
// the number of flows one run handles.
func runMutations(b *testing.B, t *table, flows int, setup, verify func(tb testing.TB), muts []mutation) {
	for _, mu := range muts {
		b.Run(mu.name, func(b *testing.B) {
			m := newMeter(b, flows)
			for i := 0; i < b.N; i++ {
				setup(b)
				m.start()
				mu.run(b)
				m.stop()
				verify(b)
			}
			m.report(mu.goCode)
		})
	}
}

// peers dials vishvananda/netlink and ti-mo/conntrack into the table's
// namespace.
func (t *table) peers(tb testing.TB) (*vish.Handle, *timo.Conn) {
	tb.Helper()
	vh, err := vishHandle(t.ns)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(vh.Close)
	tc, err := timo.Dial(&mdnetlink.Config{NetNS: t.ns.FD()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tc.Close() })
	return vh, tc
}

// vishFlow converts a spec to a vishvananda/netlink flow.
func vishFlow(s flowSpec) vish.ConntrackFlow {
	f := vish.ConntrackFlow{
		FamilyType: vish.FAMILY_V4,
		Forward: vish.IPTuple{
			SrcIP: net.IP(s.src.AsSlice()), DstIP: net.IP(s.dst.AsSlice()),
			SrcPort: s.sport, DstPort: s.dport, Protocol: s.proto,
		},
		Reverse: vish.IPTuple{
			SrcIP: net.IP(s.dst.AsSlice()), DstIP: net.IP(s.src.AsSlice()),
			SrcPort: s.dport, DstPort: s.sport, Protocol: s.proto,
		},
		Mark:    s.mark,
		TimeOut: flowTimeout,
	}
	if s.proto == unix.IPPROTO_TCP {
		f.ProtoInfo = &vish.ProtoInfoTCP{State: 3} // TCP_CONNTRACK_ESTABLISHED
	}
	return f
}

// timoFlow converts a spec to a ti-mo/conntrack flow.
func timoFlow(s flowSpec) timo.Flow {
	f := timo.NewFlow(s.proto, 0, s.src, s.dst, s.sport, s.dport, flowTimeout, s.mark)
	if s.proto == unix.IPPROTO_TCP {
		f.ProtoInfo.TCP = &timo.ProtoInfoTCP{State: 3} // TCP_CONNTRACK_ESTABLISHED
	}
	return f
}

// saveFile writes the table in conntrack's save format (conntrack -L -o
// save), which conntrack -R reads back.
func (t *table) saveFile(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "flows.save")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	cmd := t.ns.Command("conntrack", "-L", "-o", "save")
	cmd.Stdout = f
	if err := cmd.Run(); err != nil {
		tb.Fatalf("conntrack -L -o save: %v", err)
	}
	return p
}

// BenchmarkCreate creates 100k established TCP flows in an empty table:
// ctspec's pipelined CreateMany, conntrack -R of the same flows in save
// format, and one create request per flow with vishvananda/netlink and
// ti-mo/conntrack.
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	t := newTable(b)
	specs := tcpSpecs(bulkSize)
	flows := ctspecFlows(specs)

	t.fill(b, flows, bulkSize)
	save := t.saveFile(b)
	t.flush(b)

	vh, tc := t.peers(b)
	vflows := make([]vish.ConntrackFlow, len(specs))
	tflows := make([]timo.Flow, len(specs))
	for i, s := range specs {
		vflows[i] = vishFlow(s)
		tflows[i] = timoFlow(s)
	}

	setup := func(tb testing.TB) { t.flush(tb) }
	verify := func(tb testing.TB) { t.expect(tb, bulkSize) }
	runMutations(b, t, bulkSize, setup, verify, []mutation{
		{"ctspec-createmany", true, func(tb testing.TB) {
			res, err := t.c.CreateMany(ctx, flows)
			if err != nil || len(res.Errors) > 0 {
				tb.Fatalf("CreateMany: %v, %d item errors", err, len(res.Errors))
			}
		}},
		{"conntrack-cli", false, func(tb testing.TB) {
			runQuiet(tb, t.ns, "conntrack", "-R", save)
		}},
		{"vishvananda", true, func(tb testing.TB) {
			for i := range vflows {
				if err := vh.ConntrackCreate(vish.ConntrackTable, vish.FAMILY_V4, &vflows[i]); err != nil {
					tb.Fatalf("ConntrackCreate: %v", err)
				}
			}
		}},
		{"ti-mo", true, func(tb testing.TB) {
			for i := range tflows {
				if err := tc.Create(tflows[i]); err != nil {
					tb.Fatalf("Create: %v", err)
				}
			}
		}},
	})
}
