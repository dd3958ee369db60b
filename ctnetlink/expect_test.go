package ctnetlink

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// expectCmp compares decoded values field by field, ignoring presence bits.
var expectCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmpopts.IgnoreUnexported(Expect{}, ExpectNAT{}, Tuple{}, TupleIP{}, TupleProto{}),
}

// ftpNS makes a namespace whose ruleset attaches the FTP helper to port 21,
// and a Conn inside it.
func ftpNS(t *testing.T) (*nstest.NS, *Conn) {
	t.Helper()
	ns, c := dialNS(t)
	ns.LoadFTPHelper(t)
	return ns, c
}

// ftpSession runs an FTP control connection that sends cmd inside ns (see
// nstest.NS.FTPSession) and returns its original tuple.
func ftpSession(t *testing.T, ns *nstest.NS, cmd string) Tuple {
	t.Helper()
	client, server := ns.FTPSession(t, cmd)
	return NewTuple(unix.IPPROTO_TCP, client, server)
}

// createMaster creates an established TCP flow from src to dst with helper
// attached, for expectations to hang off.
func createMaster(t *testing.T, c *Conn, src, dst string, sport, dport uint16, helper string) *Flow {
	t.Helper()
	f := testFlow(src, dst, sport, dport)
	if helper != "" {
		f.SetHelp(helpNamed(helper))
	}
	if err := c.Create(ctx(t), f); err != nil {
		t.Fatalf("create master flow %s:%d -> %s:%d: %v", src, sport, dst, dport, err)
	}
	return f
}

// dataExpect returns an expectation of master for a connection back from
// the master's server, from any port, to port dport of its client: the
// shape of an FTP active-mode data connection.
func dataExpect(master *Flow, dport uint16) *Expect {
	o := &master.TupleOrig
	ones := netip.MustParseAddr("255.255.255.255")
	if o.Family() == unix.AF_INET6 {
		ones = netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	}
	var e Expect
	e.SetMaster(*o)
	e.SetTuple(NewTuple(o.Proto.Num, netip.AddrPortFrom(o.Dst(), 0), netip.AddrPortFrom(o.Src(), dport)))
	e.SetMask(NewExpectMask(o.Proto.Num, ones, 0))
	return &e
}

// expectStatsSum adds up the per-CPU expectation statistics.
func expectStatsSum(t *testing.T, c *Conn) ExpectStatsCPU {
	t.Helper()
	cpus, err := c.ExpectStatsCPU(ctx(t))
	if err != nil {
		t.Fatalf("expect-stats-cpu: %v", err)
	}
	if len(cpus) == 0 {
		t.Fatal("expect-stats-cpu: no CPUs")
	}
	var sum ExpectStatsCPU
	for i, st := range cpus {
		if !st.Has(ExpectStatsCPUAttrNew) || !st.Has(ExpectStatsCPUAttrCreate) || !st.Has(ExpectStatsCPUAttrDelete) {
			t.Fatalf("cpu %d: counters missing: %+v", st.CPU, st)
		}
		if i > 0 && st.CPU <= cpus[i-1].CPU {
			t.Fatalf("cpu ids not increasing: %d after %d", st.CPU, cpus[i-1].CPU)
		}
		sum.New += st.New
		sum.Create += st.Create
		sum.Delete += st.Delete
	}
	return sum
}

// expectView is what both conntrack -L expect -o xml and our decoder tell
// about an expectation: addresses and ports of the tuple, mask and master.
type expectView struct {
	Proto               uint8
	Tuple, Mask, Master [4]string // src, dst, sport, dport
	Helper              string
	Class               uint32
	Timeout             uint32
}

func tupleView(t *Tuple) [4]string {
	port := func(p uint16) string { return strconv.Itoa(int(p)) }
	return [4]string{t.Src().String(), t.Dst().String(), port(t.Proto.SrcPort), port(t.Proto.DstPort)}
}

func viewOf(e *Expect) expectView {
	return expectView{
		Proto:   e.Tuple.Proto.Num,
		Tuple:   tupleView(&e.Tuple),
		Mask:    tupleView(&e.Mask),
		Master:  tupleView(&e.Master),
		Helper:  e.HelpName,
		Class:   e.Class,
		Timeout: e.Timeout,
	}
}

// conntrackXML is the output of conntrack -L expect -o xml.
type conntrackXML struct {
	Flows []struct {
		L3 struct {
			Expected xmlAddrs `xml:"expected"`
			Mask     xmlAddrs `xml:"mask"`
			Master   xmlAddrs `xml:"master"`
		} `xml:"layer3"`
		L4 struct {
			Proto    uint8    `xml:"protonum,attr"`
			Expected xmlPorts `xml:"expected"`
			Mask     xmlPorts `xml:"mask"`
			Master   xmlPorts `xml:"master"`
		} `xml:"layer4"`
		Meta struct {
			Helper  string `xml:"helper-name"`
			Timeout uint32 `xml:"timeout"`
			Class   uint32 `xml:"class"`
		} `xml:"meta"`
	} `xml:"flow"`
}

type xmlAddrs struct {
	Src string `xml:"src"`
	Dst string `xml:"dst"`
}

type xmlPorts struct {
	Sport string `xml:"sport"`
	Dport string `xml:"dport"`
}

// conntrackExpects lists the expectations of ns with conntrack-tools.
func conntrackExpects(t *testing.T, ns *nstest.NS) []expectView {
	t.Helper()
	out := ns.Run(t, "conntrack", "-L", "expect", "-o", "xml")
	var doc conntrackXML
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("parse conntrack -L expect -o xml: %v\n%s", err, out)
	}
	views := make([]expectView, 0, len(doc.Flows))
	for _, f := range doc.Flows {
		views = append(views, expectView{
			Proto:   f.L4.Proto,
			Tuple:   [4]string{f.L3.Expected.Src, f.L3.Expected.Dst, f.L4.Expected.Sport, f.L4.Expected.Dport},
			Mask:    [4]string{f.L3.Mask.Src, f.L3.Mask.Dst, f.L4.Mask.Sport, f.L4.Mask.Dport},
			Master:  [4]string{f.L3.Master.Src, f.L3.Master.Dst, f.L4.Master.Sport, f.L4.Master.Dport},
			Helper:  f.Meta.Helper,
			Class:   f.Meta.Class,
			Timeout: f.Meta.Timeout,
		})
	}
	return views
}

// compareWithConntrack checks that conntrack-tools lists the same
// expectations as ListExpect, with timeouts read a moment apart.
func compareWithConntrack(t *testing.T, ns *nstest.NS, c *Conn) {
	t.Helper()
	exps, err := c.ListExpect(ctx(t), unix.AF_UNSPEC)
	if err != nil {
		t.Fatalf("list-expect: %v", err)
	}
	ours := make([]expectView, 0, len(exps))
	for i := range exps {
		ours = append(ours, viewOf(&exps[i]))
	}
	theirs := conntrackExpects(t, ns)
	byTuple := cmpopts.SortSlices(func(a, b expectView) bool { return strings.Join(a.Tuple[:], " ") < strings.Join(b.Tuple[:], " ") })
	closeTimeout := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Timeout" },
		cmp.Comparer(func(a, b uint32) bool { return a <= b+2 && b <= a+2 }))
	if diff := cmp.Diff(theirs, ours, byTuple, closeTimeout); diff != "" {
		t.Errorf("conntrack -L expect and ListExpect differ (-conntrack +ours):\n%s", diff)
	}
}

func TestKernelExpectFromFTPHelper(t *testing.T) {
	ns, c := ftpNS(t)
	ctx := ctx(t)
	ctl := ftpSession(t, ns, "PORT 127,0,0,1,200,10")

	exps, err := c.ListExpect(ctx, unix.AF_INET)
	if err != nil {
		t.Fatalf("list-expect: %v", err)
	}
	if len(exps) != 1 {
		t.Fatalf("list-expect: %d expectations, want the FTP helper's one", len(exps))
	}
	got := &exps[0]
	var want Expect
	want.SetMaster(ctl)
	want.SetTuple(NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddrPort("127.0.0.1:51210")))
	want.SetMask(NewExpectMask(unix.IPPROTO_TCP, netip.MustParseAddr("255.255.255.255"), 0))
	want.SetHelpName("ftp")
	if diff := cmp.Diff(&want, got, expectCmp, cmpopts.IgnoreFields(Expect{}, "Timeout", "ID")); diff != "" {
		t.Errorf("expectation of the FTP helper (-want +got):\n%s", diff)
	}
	if got.Timeout == 0 || got.Timeout > 300 || got.ID == 0 {
		t.Errorf("timeout %d, id %d: want a timeout in (0, 300] and an id", got.Timeout, got.ID)
	}
	for _, a := range []ExpectAttr{ExpectAttrTimeout, ExpectAttrID, ExpectAttrFlags, ExpectAttrClass} {
		if !got.Has(a) {
			t.Errorf("the kernel always sends %v, but it was not decoded", a)
		}
	}
	if got.Has(ExpectAttrNAT) || got.Has(ExpectAttrFn) || got.Has(ExpectAttrZone) || got.Unknown != 0 {
		t.Errorf("unexpected attributes: nat %v, fn %q, zone %v, %d unknown", got.Has(ExpectAttrNAT), got.Fn, got.Has(ExpectAttrZone), got.Unknown)
	}
	if v6, err := c.ListExpect(ctx, unix.AF_INET6); err != nil || len(v6) != 0 {
		t.Errorf("list-expect of IPv6: %d expectations, %v; want none", len(v6), err)
	}
	compareWithConntrack(t, ns, c)

	// On loopback the helper sees the PORT segment twice, leaving and
	// arriving, and the second pass replaces the first expectation with an
	// identical one; so count what is left rather than what was made.
	before := expectStatsSum(t, c)
	if before.Create-before.Delete != 1 || before.New != 0 {
		t.Errorf("expect-stats-cpu: new %d create %d delete %d, want one expectation left and none matched", before.New, before.Create, before.Delete)
	}

	// Any tuple inside the mask finds the expectation; a wrong id does not.
	var q Expect
	q.SetTuple(NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort("127.0.0.1:2020"), netip.MustParseAddrPort("127.0.0.1:51210")))
	if e, err := c.GetExpect(ctx, &q); err != nil || e.ID != got.ID {
		t.Fatalf("get-expect by a tuple inside the mask: %+v, %v", e, err)
	}
	q.SetID(got.ID + 1)
	if _, err := c.GetExpect(ctx, &q); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("get-expect with a wrong id: got %v, want os.ErrNotExist", err)
	}

	// The data connection the PORT command announced consumes the
	// expectation and becomes a flow related to the control connection.
	var data net.Listener
	var dc net.Conn
	if err := ns.Do(func() (err error) {
		if data, err = net.Listen("tcp4", "127.0.0.1:51210"); err != nil {
			return err
		}
		dc, err = net.Dial("tcp4", "127.0.0.1:51210")
		return err
	}); err != nil {
		t.Fatalf("data connection: %v", err)
	}
	defer data.Close()
	defer dc.Close()
	var df Flow
	df.SetTupleOrig(NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort(dc.LocalAddr().String()), netip.MustParseAddrPort("127.0.0.1:51210")))
	related, err := c.Get(ctx, &df)
	if err != nil {
		t.Fatalf("get the data flow: %v", err)
	}
	if related.Status&StatusExpected == 0 {
		t.Errorf("data flow status %v, want expected", related.Status)
	}
	if related.TupleMaster == nil {
		t.Fatal("the data flow has no master tuple")
	}
	if diff := cmp.Diff(ctl, *related.TupleMaster, expectCmp); diff != "" {
		t.Errorf("data flow's master (-want +got):\n%s", diff)
	}
	if exps, err := c.ListExpect(ctx, unix.AF_UNSPEC); err != nil || len(exps) != 0 {
		t.Errorf("after the data connection: %d expectations, %v; want none", len(exps), err)
	}
	after := expectStatsSum(t, c)
	if after.New-before.New != 1 || after.Delete-before.Delete != 1 || after.Create != before.Create {
		t.Errorf("expect-stats-cpu after the data connection: new %+d create %+d delete %+d, want +1 +0 +1",
			after.New-before.New, after.Create-before.Create, after.Delete-before.Delete)
	}
}

func TestKernelExpectCreateGetUpdateDelete(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	master := createMaster(t, c, "192.0.2.1", "192.0.2.2", 40000, 21, "ftp")
	if m, err := c.Get(ctx, master); err != nil || helperOf(m) != "ftp" {
		t.Fatalf("master flow: %+v, %v; want helper ftp", m, err)
	}

	e := dataExpect(master, 50000)
	e.SetHelpName("ftp")
	e.SetFlags(ExpectFlagsPermanent)
	e.SetTimeout(100)
	if err := c.CreateExpect(ctx, e); err != nil {
		t.Fatalf("create-expect: %v", err)
	}
	err := c.CreateExpect(ctx, e)
	var ce *Error
	if !errors.Is(err, os.ErrExist) || !errors.As(err, &ce) || ce.Op != "create-expect" {
		t.Fatalf("second create-expect: got %v, want os.ErrExist from create-expect", err)
	}

	got, err := c.GetExpect(ctx, e)
	if err != nil {
		t.Fatalf("get-expect: %v", err)
	}
	if diff := cmp.Diff(e, got, expectCmp, cmpopts.IgnoreFields(Expect{}, "Timeout", "ID")); diff != "" {
		t.Errorf("get-expect (-created +got):\n%s", diff)
	}
	if got.Timeout < 98 || got.Timeout > 100 {
		t.Errorf("timeout %d, want the 100 seconds set rather than the helper's 300", got.Timeout)
	}
	out := ns.Run(t, "conntrack", "-L", "expect")
	if !strings.Contains(out, "dport=50000") || !strings.Contains(out, "PERMANENT") || !strings.Contains(out, "helper=ftp") {
		t.Errorf("conntrack -L expect does not show the expectation:\n%s", out)
	}
	compareWithConntrack(t, ns, c)

	var u Expect
	u.SetTuple(e.Tuple)
	u.SetTimeout(30)
	if err := c.UpdateExpect(ctx, &u); err != nil {
		t.Fatalf("update-expect: %v", err)
	}
	if got, err := c.GetExpect(ctx, e); err != nil || got.Timeout < 28 || got.Timeout > 30 {
		t.Fatalf("after update-expect: %+v, %v; want a timeout of 30", got, err)
	}
	u.SetTuple(dataExpect(master, 50001).Tuple)
	if err := c.UpdateExpect(ctx, &u); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("update-expect of a missing expectation: got %v, want os.ErrNotExist", err)
	}

	// Deleting by a stale id must not remove the expectation.
	stale := *got
	stale.SetID(got.ID + 1)
	if err := c.DeleteExpect(ctx, &stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("delete-expect with a wrong id: got %v, want os.ErrNotExist", err)
	}
	if err := c.DeleteExpect(ctx, got); err != nil {
		t.Fatalf("delete-expect: %v", err)
	}
	_, err = c.GetExpect(ctx, e)
	if !errors.Is(err, os.ErrNotExist) || !errors.As(err, &ce) || ce.Op != "get-expect" || !strings.HasPrefix(err.Error(), "ctnetlink: get-expect: ") {
		t.Fatalf("get-expect after delete: got %v, want os.ErrNotExist from get-expect", err)
	}
	if err := c.DeleteExpect(ctx, got); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("second delete-expect: got %v, want os.ErrNotExist", err)
	}
	if out := ns.Run(t, "conntrack", "-L", "expect"); strings.TrimSpace(out) != "" {
		t.Fatalf("conntrack -L expect after delete:\n%s", out)
	}
	if err := c.DeleteExpect(ctx, &Expect{}); err == nil || errors.Is(err, os.ErrNotExist) || !errors.As(err, &ce) || ce.Op != "delete-expect" {
		t.Fatalf("delete-expect without tuple or helper: got %v, want a client-side error", err)
	}
	if got := expectStatsSum(t, c); got.Create != 1 || got.Delete != 1 || got.New != 0 {
		t.Errorf("expect-stats-cpu: got new %d create %d delete %d, want 0 1 1", got.New, got.Create, got.Delete)
	}
}

func TestKernelExpectAllAttributes(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	master := createMaster(t, c, "192.0.2.1", "192.0.2.2", 40000, 21, "ftp")
	e := dataExpect(master, 50000)
	e.SetHelpName("ftp")
	e.SetClass(0)
	e.SetFlags(ExpectFlagsPermanent | ExpectFlagsInactive | ExpectFlagsUserspace)
	e.SetFn("nat-follow-master")
	var nat ExpectNAT
	nat.SetDir(DirectionReply)
	nat.SetTuple(NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort("198.51.100.1:2000"), netip.AddrPortFrom(netip.IPv4Unspecified(), 0)))
	e.SetNAT(nat)
	if err := c.CreateExpect(ctx, e); err != nil {
		t.Fatalf("create-expect: %v", err)
	}
	got, err := c.GetExpect(ctx, e)
	if err != nil {
		t.Fatalf("get-expect: %v", err)
	}
	want := *e
	want.SetFlags(ExpectFlagsPermanent | ExpectFlagsInactive) // the kernel clears userspace
	if diff := cmp.Diff(&want, got, expectCmp, cmpopts.IgnoreFields(Expect{}, "Timeout", "ID")); diff != "" {
		t.Errorf("get-expect (-want +got):\n%s", diff)
	}
	if got.Flags.String() != "permanent|inactive" {
		t.Errorf("flags print as %q", got.Flags)
	}
}

func TestKernelExpectCreateErrors(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	master := createMaster(t, c, "192.0.2.1", "192.0.2.2", 40000, 21, "ftp")
	plain := createMaster(t, c, "192.0.2.5", "192.0.2.6", 40000, 21, "")
	tests := []struct {
		name string
		edit func(e *Expect)
		want error
	}{
		{"master without helper", func(e *Expect) { e.SetMaster(plain.TupleOrig) }, unix.EOPNOTSUPP},
		{"no master flow", func(e *Expect) { e.SetMaster(testFlow("192.0.2.9", "192.0.2.2", 1, 21).TupleOrig) }, os.ErrNotExist},
		{"class the helper lacks", func(e *Expect) { e.SetHelpName("ftp"); e.SetClass(5) }, unix.EINVAL},
		{"unknown function", func(e *Expect) { e.SetFn("no-such-function") }, unix.EINVAL},
		{"no mask", func(e *Expect) { e.Clear(ExpectAttrMask) }, unix.EINVAL},
	}
	for _, tt := range tests {
		e := dataExpect(master, 50000)
		tt.edit(e)
		err := c.CreateExpect(ctx, e)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if exps, err := c.ListExpect(ctx, unix.AF_UNSPEC); err != nil || len(exps) != 0 {
		t.Errorf("after failed creates: %d expectations, %v", len(exps), err)
	}
	var e Expect
	if _, err := c.GetExpect(ctx, &e); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("get-expect without a tuple: got %v, want a client-side error", err)
	}
}

func TestKernelExpectZone(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	master := testFlow("192.0.2.1", "192.0.2.2", 40000, 21)
	master.SetHelp(helpNamed("ftp"))
	master.SetZone(7)
	if err := c.Create(ctx, master); err != nil {
		t.Fatalf("create master in zone 7: %v", err)
	}
	e := dataExpect(master, 50000)
	if err := c.CreateExpect(ctx, e); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("create-expect in zone 0: got %v, want os.ErrNotExist (the master is in zone 7)", err)
	}
	e.SetZone(7)
	if err := c.CreateExpect(ctx, e); err != nil {
		t.Fatalf("create-expect in zone 7: %v", err)
	}
	var q Expect
	q.SetTuple(e.Tuple)
	if _, err := c.GetExpect(ctx, &q); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("get-expect in zone 0: got %v, want os.ErrNotExist", err)
	}
	q.SetZone(7)
	got, err := c.GetExpect(ctx, &q)
	if err != nil {
		t.Fatalf("get-expect in zone 7: %v", err)
	}
	if got.Has(ExpectAttrZone) {
		t.Errorf("the kernel reported zone %d; it never reports one", got.Zone)
	}
	// A family flush reaches zone 0 only; a full flush reaches all.
	if err := c.FlushExpect(ctx, unix.AF_INET); err != nil {
		t.Fatalf("flush-expect ipv4: %v", err)
	}
	if _, err := c.GetExpect(ctx, &q); err != nil {
		t.Fatalf("get-expect in zone 7 after an IPv4 flush: %v", err)
	}
	if err := c.DeleteExpect(ctx, &q); err != nil {
		t.Fatalf("delete-expect in zone 7: %v", err)
	}
}

// conntrack-tools 1.4.7 sends the low byte of the network-order
// --tuple-port-* value as the protocol of the expectation's tuple
// (extensions/libct_proto_tcp.c); port 50000 becomes protocol 195 on x86. A
// port whose bytes are both 6, 0x0606, gives TCP on either byte order.
const conntrackToolPort = 0x0606

func TestKernelExpectFromConntrackTool(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	master := createMaster(t, c, "192.0.2.1", "192.0.2.2", 40000, 21, "ftp")
	ns.Run(t, "conntrack", "-I", "expect", "-p", "tcp",
		"-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "40000", "--dport", "21",
		"--tuple-src", "192.0.2.2", "--tuple-dst", "192.0.2.1",
		"--tuple-port-src", "0", "--tuple-port-dst", strconv.Itoa(conntrackToolPort),
		"--mask-src", "255.255.255.255", "--mask-dst", "255.255.255.255",
		"--mask-port-src", "0", "--mask-port-dst", "65535", "-t", "100")

	exps, err := c.ListExpect(ctx, unix.AF_INET)
	if err != nil || len(exps) != 1 {
		t.Fatalf("list-expect: %d expectations, %v; want the one conntrack created", len(exps), err)
	}
	want := dataExpect(master, conntrackToolPort)
	want.SetHelpName("ftp")
	if diff := cmp.Diff(want, &exps[0], expectCmp, cmpopts.IgnoreFields(Expect{}, "Timeout", "ID")); diff != "" {
		t.Errorf("expectation made by conntrack -I expect (-want +got):\n%s", diff)
	}
	compareWithConntrack(t, ns, c)
	if err := c.DeleteExpect(ctx, &exps[0]); err != nil {
		t.Fatalf("delete-expect: %v", err)
	}
	if out := ns.Run(t, "conntrack", "-L", "expect"); strings.TrimSpace(out) != "" {
		t.Fatalf("conntrack -L expect after delete-expect:\n%s", out)
	}
}

func TestKernelExpectDeleteByHelperAndFlush(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	ftp4 := createMaster(t, c, "192.0.2.1", "192.0.2.2", 40000, 21, "ftp")
	ftp6 := createMaster(t, c, "2001:db8::1", "2001:db8::2", 40000, 21, "ftp")
	irc := createMaster(t, c, "192.0.2.3", "192.0.2.4", 40000, 6667, "irc")
	create := func(m *Flow, port uint16) {
		t.Helper()
		if err := c.CreateExpect(ctx, dataExpect(m, port)); err != nil {
			t.Fatalf("create-expect: %v", err)
		}
	}
	count := func(family uint8) map[string]int {
		t.Helper()
		n := map[string]int{}
		for e, err := range c.DumpExpect(ctx, family) {
			if err != nil {
				t.Fatalf("dump-expect: %v", err)
			}
			if family != unix.AF_UNSPEC && e.Family() != family {
				t.Fatalf("dump-expect of family %d yielded family %d", family, e.Family())
			}
			n[fmt.Sprintf("%s/%d", e.HelpName, e.Family())]++
		}
		return n
	}
	create(ftp4, 50000)
	create(ftp6, 50000)
	create(irc, 50000)
	v4, v6 := fmt.Sprintf("ftp/%d", unix.AF_INET), fmt.Sprintf("ftp/%d", unix.AF_INET6)
	ircv4 := fmt.Sprintf("irc/%d", unix.AF_INET)
	steps := []struct {
		name string
		do   func() error
		want map[string]int
	}{
		{"created", func() error { return nil }, map[string]int{v4: 1, v6: 1, ircv4: 1}},
		{"delete helper irc", func() error { return c.DeleteExpect(ctx, expectOfHelper("irc")) }, map[string]int{v4: 1, v6: 1}},
		{"delete helper sip", func() error { return c.DeleteExpect(ctx, expectOfHelper("sip")) }, map[string]int{v4: 1, v6: 1}},
		{"flush ipv6", func() error { return c.FlushExpect(ctx, unix.AF_INET6) }, map[string]int{v4: 1}},
		{"recreate ipv6, flush ipv4", func() error {
			create(ftp6, 50000)
			return c.FlushExpect(ctx, unix.AF_INET)
		}, map[string]int{v6: 1}},
		{"flush all", func() error { return c.FlushExpect(ctx, unix.AF_UNSPEC) }, map[string]int{}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := cmp.Diff(s.want, count(unix.AF_UNSPEC)); diff != "" {
			t.Fatalf("%s: expectations by helper/family (-want +got):\n%s", s.name, diff)
		}
	}
	if n := count(unix.AF_INET6); len(n) != 0 {
		t.Fatalf("ipv6 dump after flush: %v", n)
	}
	// Breaking out of a dump leaves the Conn usable.
	create(ftp4, 50000)
	for range c.DumpExpect(ctx, unix.AF_UNSPEC) {
		break
	}
	if got := expectStatsSum(t, c); got.Create != 5 || got.Delete != 4 {
		t.Errorf("expect-stats-cpu: create %d delete %d, want 5 and 4", got.Create, got.Delete)
	}
}

func TestNewExpectMask(t *testing.T) {
	tests := []struct {
		name     string
		proto    uint8
		src      netip.Addr
		port     uint16
		want     [4]string
		wantICMP [3]uint16 // type, code, id for ICMP
	}{
		{"tcp any source port", unix.IPPROTO_TCP, netip.MustParseAddr("255.255.255.255"), 0,
			[4]string{"255.255.255.255", "255.255.255.255", "0", "65535"}, [3]uint16{}},
		{"udp any source", unix.IPPROTO_UDP, netip.IPv4Unspecified(), 0xffff,
			[4]string{"0.0.0.0", "255.255.255.255", "65535", "65535"}, [3]uint16{}},
		{"tcp ipv6 /64", unix.IPPROTO_TCP, netip.MustParseAddr("ffff:ffff:ffff:ffff::"), 0,
			[4]string{"ffff:ffff:ffff:ffff::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0", "65535"}, [3]uint16{}},
		{"icmp any id", unix.IPPROTO_ICMP, netip.MustParseAddr("255.255.255.255"), 0,
			[4]string{"255.255.255.255", "255.255.255.255", "0", "0"}, [3]uint16{0xff, 0xff, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewExpectMask(tt.proto, tt.src, tt.port)
			if diff := cmp.Diff(tt.want, tupleView(&m)); diff != "" {
				t.Errorf("mask (-want +got):\n%s", diff)
			}
			if m.Proto.Num != tt.proto {
				t.Errorf("protocol %d, want %d", m.Proto.Num, tt.proto)
			}
			if tt.proto == unix.IPPROTO_ICMP {
				got := [3]uint16{uint16(m.Proto.ICMPType), uint16(m.Proto.ICMPCode), m.Proto.ICMPID}
				if got != tt.wantICMP {
					t.Errorf("icmp type, code, id %v, want %v", got, tt.wantICMP)
				}
			}
			// The mask round-trips through the codec.
			var back Tuple
			if err := back.UnmarshalAttributes(m.AppendAttributes(nil)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(m, back, expectCmp); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}
