package ctnetlink

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// dialNS makes a fresh network namespace and a Conn inside it.
func dialNS(t *testing.T) (*nstest.NS, *Conn) {
	t.Helper()
	ns := nstest.New(t)
	c, err := Dial(&Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return ns, c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// testFlow is a TCP flow from src:sport to dst:dport in ESTABLISHED state.
func testFlow(src, dst string, sport, dport uint16) *Flow {
	var f Flow
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	f.SetTupleOrig(NewTuple(unix.IPPROTO_TCP, netip.AddrPortFrom(s, sport), netip.AddrPortFrom(d, dport)))
	f.SetTupleReply(NewTuple(unix.IPPROTO_TCP, netip.AddrPortFrom(d, dport), netip.AddrPortFrom(s, sport)))
	f.ProtoInfo.TCP.SetState(TCPStateEstablished)
	f.SetTimeout(120)
	return &f
}

func TestKernelCreateGetUpdateDelete(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	f := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)
	f.SetMark(7)
	if err := c.Create(ctx, f); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.Create(ctx, f); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second create: got %v, want os.ErrExist", err)
	}
	got, err := c.Get(ctx, f)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Mark != 7 || got.ProtoInfo.TCP.State != TCPStateEstablished || got.TupleOrig.Src() != netip.MustParseAddr("192.0.2.1") || got.ID == 0 {
		t.Fatalf("get returned mark=%d state=%v src=%v id=%d", got.Mark, got.ProtoInfo.TCP.State, got.TupleOrig.Src(), got.ID)
	}
	// The reference peer sees the flow with the values set.
	out := ns.Run(t, "conntrack", "-L", "-p", "tcp")
	if !strings.Contains(out, "src=192.0.2.1 dst=192.0.2.2 sport=1000 dport=80") || !strings.Contains(out, "mark=7") {
		t.Fatalf("conntrack -L does not show the flow:\n%s", out)
	}

	var u Flow
	u.SetTupleOrig(f.TupleOrig)
	u.SetMark(9)
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("update: %v", err)
	}
	if got, err = c.Get(ctx, f); err != nil || got.Mark != 9 {
		t.Fatalf("after update: mark=%v err=%v", got, err)
	}

	// Deleting by a stale id must not remove the flow.
	stale := lookupKey(got)
	stale.SetID(got.ID + 1)
	if err := c.Delete(ctx, &stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("delete with wrong id: got %v, want os.ErrNotExist", err)
	}
	if err := c.Delete(ctx, got); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = c.Get(ctx, f)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("get after delete: got %v, want os.ErrNotExist", err)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Op != "get" || !strings.HasPrefix(err.Error(), "ctnetlink: get: ") {
		t.Fatalf("error does not name the operation: %v", err)
	}
}

func TestKernelDumpAndFilters(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	ns.Run(t, "conntrack", "-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "1", "--dport", "2", "--state", "ESTABLISHED", "-t", "100", "-m", "1")
	ns.Run(t, "conntrack", "-I", "-p", "udp", "-s", "192.0.2.3", "-d", "192.0.2.4", "--sport", "3", "--dport", "53", "-t", "100", "-m", "2")
	ns.Run(t, "conntrack", "-I", "-p", "udp", "-s", "2001:db8::1", "-d", "2001:db8::2", "--sport", "5", "--dport", "53", "-t", "100", "-m", "2")

	count := func(f *DumpFilter) int {
		t.Helper()
		n := 0
		for fl, err := range c.Dump(ctx, f) {
			if err != nil {
				t.Fatalf("dump %+v: %v", f, err)
			}
			if !f.Match(fl) {
				t.Fatalf("dump yielded a flow outside the filter")
			}
			n++
		}
		return n
	}
	port53 := uint16(53)
	tests := []struct {
		name   string
		filter *DumpFilter
		want   int
	}{
		{"all", nil, 3},
		{"ipv4", &DumpFilter{Family: unix.AF_INET}, 2},
		{"ipv6", &DumpFilter{Family: unix.AF_INET6}, 1},
		{"mark 2", &DumpFilter{Mark: 2}, 2},
		{"mark 1 in ipv6", &DumpFilter{Family: unix.AF_INET6, Mark: 1}, 0},
		{"orig udp dport 53", &DumpFilter{Orig: &TupleFilter{Proto: unix.IPPROTO_UDP, DstPort: &port53}}, 2},
		{"orig src", &DumpFilter{Orig: &TupleFilter{Src: netip.MustParseAddr("192.0.2.3")}}, 1},
		{"reply src port 53", &DumpFilter{Reply: &TupleFilter{Proto: unix.IPPROTO_UDP, SrcPort: &port53}}, 2},
		{"status assured", &DumpFilter{Status: StatusAssured, StatusMask: StatusAssured}, 0},
	}
	for _, tt := range tests {
		if got := count(tt.filter); got != tt.want {
			t.Errorf("%s: %d flows, want %d", tt.name, got, tt.want)
		}
	}
	flows, err := c.List(ctx, nil)
	if err != nil || len(flows) != 3 {
		t.Fatalf("list: %d flows, err %v", len(flows), err)
	}
	// Breaking out of a dump leaves the Conn usable.
	for range c.Dump(ctx, nil) {
		break
	}
	if st, err := c.Stats(ctx); err != nil || st.Entries != 3 {
		t.Fatalf("stats: %+v, %v", st, err)
	}
	cpus, err := c.StatsCPU(ctx)
	if err != nil || len(cpus) == 0 {
		t.Fatalf("stats-cpu: %d entries, %v", len(cpus), err)
	}

	if err := c.Flush(ctx, &FlushFilter{Mark: 2}); err != nil {
		t.Fatalf("flush by mark: %v", err)
	}
	if n := count(nil); n != 1 {
		t.Fatalf("after flush by mark: %d flows, want 1", n)
	}
	if err := c.Flush(ctx, nil); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if n := count(nil); n != 0 {
		t.Fatalf("after flush: %d flows", n)
	}
}

func TestKernelCancel(t *testing.T) {
	_, c := dialNS(t)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range c.Dump(cctx, nil) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	}
}

// TestKernelForeignSender checks that another socket of the namespace
// cannot send into a Conn's socket: the kernel refuses it, since the socket
// is connected to the kernel.
func TestKernelForeignSender(t *testing.T) {
	ns, c := dialNS(t)
	s, err := c.get()
	if err != nil {
		t.Fatal(err)
	}
	defer c.put(s)
	if s.port == 0 {
		t.Fatal("socket without a port id")
	}
	msg := appendRequest(nil, MsgNew, netlink.Multi, s.seq+1, unix.AF_INET, testFlow("192.0.2.66", "192.0.2.2", 1, 80).AppendAttributes)
	err = ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: s.port})
	})
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("send from another socket to port %d: %v, want ECONNREFUSED", s.port, err)
	}
}
