package ctnetlink

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// udpTraffic sends n datagrams over loopback inside ns with accounting on
// and a ruleset that makes the kernel track them, and returns the port the
// datagrams went to.
func udpTraffic(t *testing.T, ns *nstest.NS, n int) uint16 {
	t.Helper()
	nstest.RequireCommands(t, "nft")
	ns.Sysctl(t, "net.netfilter.nf_conntrack_acct", "1")
	ns.Run(t, "nft", "add table inet t")
	ns.Run(t, "nft", "add chain inet t out { type filter hook output priority 0 ; }")
	ns.Run(t, "nft", "add rule inet t out ct state new counter")
	var port uint16
	err := ns.Do(func() error {
		srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer srv.Close()
		port = uint16(srv.LocalAddr().(*net.UDPAddr).Port)
		cl, err := net.Dial("udp4", srv.LocalAddr().String())
		if err != nil {
			return err
		}
		defer cl.Close()
		buf := make([]byte, 16)
		srv.SetReadDeadline(time.Now().Add(10 * time.Second))
		for range n {
			if _, err := cl.Write([]byte("ping")); err != nil {
				return err
			}
			if _, _, err := srv.ReadFrom(buf); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("traffic: %v", err)
	}
	return port
}

func TestKernelDumpZero(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	const n = 5
	port := udpTraffic(t, ns, n)
	filter := &Selector{Proto: Protocol(unix.IPPROTO_UDP), OrigDst: HostIs(netip.MustParseAddr("127.0.0.1")), OrigDstPort: Is(port)}
	// The packets counted are the datagrams sent.
	packets := func(seq func(func(*Flow, error) bool)) []uint64 {
		t.Helper()
		var out []uint64
		for f, err := range seq {
			if err != nil {
				t.Fatal(err)
			}
			if !f.Has(FlowAttrCountersOrig) {
				t.Fatal("flow without counters although accounting is on")
			}
			out = append(out, f.CountersOrig.Packets)
		}
		return out
	}
	if got := packets(c.Dump(ctx, filter)); len(got) != 1 || got[0] != n {
		t.Fatalf("dump: packets %v, want [%d]", got, n)
	}
	// DumpZero returns the counters before the reset...
	if got := packets(c.DumpZero(ctx, filter)); len(got) != 1 || got[0] != n {
		t.Fatalf("dump-zero: packets %v, want [%d]", got, n)
	}
	// ... and the next dump sees them zeroed.
	if got := packets(c.Dump(ctx, filter)); len(got) != 1 || got[0] != 0 {
		t.Fatalf("dump after dump-zero: packets %v, want [0]", got)
	}
	// conntrack(8) agrees.
	if out := ns.Run(t, "conntrack", "-L", "-p", "udp", "--dport", itoa(int(port))); !containsAll(out, "packets=0") {
		t.Fatalf("conntrack -L after dump-zero:\n%s", out)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestKernelDumpDying keeps deleted flows on the dying list: their destroy
// events cannot reach a listener that asked for reliable delivery and
// whose receive buffer is full, so the kernel holds them until it can
// deliver.
func TestKernelDumpDying(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	if n := count(t, c.DumpDying(ctx)); n != 0 {
		t.Fatalf("dying list of a new namespace: %d flows", n)
	}
	l, err := Listen(&ListenConfig{NetNS: ns.FD(), Groups: []Group{GroupDestroy}, ReliableDestroy: true, ReadBuffer: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 200
	flows := manyFlows(n)
	if res, err := c.CreateMany(ctx, flows); err != nil || res.Done != n {
		t.Fatalf("create: %+v, %v", res, err)
	}
	if res, err := c.DeleteMany(ctx, flows); err != nil || res.Done != n {
		t.Fatalf("delete: %+v, %v", res, err)
	}
	dying := 0
	for f, err := range c.DumpDying(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if f.TupleOrig.Proto.DstPort != 53 || f.TupleOrig.Dst() != netip.MustParseAddr("192.0.2.53") {
			t.Fatalf("dying flow %v is not one of the deleted", f.TupleOrig)
		}
		dying++
	}
	if dying == 0 || dying > n {
		t.Fatalf("%d dying flows, want between 1 and %d", dying, n)
	}
	if live := count(t, c.Dump(ctx, nil)); live != 0 {
		t.Fatalf("%d flows still in the table", live)
	}
	t.Logf("%d of %d deleted flows wait on the dying list", dying, n)
}

func count(t *testing.T, seq func(func(*Flow, error) bool)) int {
	t.Helper()
	n := 0
	for _, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

func TestKernelDumpUnconfirmed(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	if res, err := c.CreateMany(ctx, manyFlows(10)); err != nil || res.Done != 10 {
		t.Fatalf("create: %+v, %v", res, err)
	}
	// Created flows are confirmed; current kernels keep no unconfirmed list.
	if n := count(t, c.DumpUnconfirmed(ctx)); n != 0 {
		t.Fatalf("%d unconfirmed flows", n)
	}
}

// TestFakeDumpLists checks the message each list dump sends.
func TestFakeDumpLists(t *testing.T) {
	tests := []struct {
		typ  MsgType
		dump func(*Conn, context.Context) func(func(*Flow, error) bool)
	}{
		{MsgGetDying, func(c *Conn, ctx context.Context) func(func(*Flow, error) bool) { return c.DumpDying(ctx) }},
		{MsgGetUnconfirmed, func(c *Conn, ctx context.Context) func(func(*Flow, error) bool) { return c.DumpUnconfirmed(ctx) }},
		{MsgGetCtrZero, func(c *Conn, ctx context.Context) func(func(*Flow, error) bool) { return c.DumpZero(ctx, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String(), func(t *testing.T) {
			c, _ := dialFake(t, checkRequest(t, tt.typ, netlink.Dump, dumpFlows(2, 0)))
			ports, err := sports(tt.dump(c, fakeCtx(t)))
			if err != nil || len(ports) != 2 {
				t.Fatalf("got %v, %v; want two flows", ports, err)
			}
		})
	}
}
