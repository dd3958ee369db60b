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

	count := func(f *Selector) int {
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
		filter *Selector
		want   int
	}{
		{"all", nil, 3},
		{"ipv4", &Selector{Family: unix.AF_INET}, 2},
		{"ipv6", &Selector{Family: unix.AF_INET6}, 1},
		{"mark 2", &Selector{Mark: Is(MarkMatch{Mark: 2})}, 2},
		{"mark 1 in ipv6", &Selector{Family: unix.AF_INET6, Mark: Is(MarkMatch{Mark: 1})}, 0},
		{"orig udp dport 53", &Selector{Proto: Protocol(unix.IPPROTO_UDP), OrigDstPort: Is(port53)}, 2},
		{"orig src", &Selector{OrigSrc: HostIs(netip.MustParseAddr("192.0.2.3"))}, 1},
		{"reply src port 53", &Selector{Proto: Protocol(unix.IPPROTO_UDP), ReplySrcPort: Is(port53)}, 2},
		{"status assured", &Selector{Status: Is(StatusMatch{StatusAssured, StatusAssured})}, 0},
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

	if err := c.Flush(ctx, &Selector{Mark: Is(MarkMatch{Mark: 2})}); err != nil {
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

// TestKernelCancelBefore cancels the context before each call: every call
// fails with context.Canceled and the kernel never sees the request.
func TestKernelCancelBefore(t *testing.T) {
	_, c := dialNS(t)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)

	n := 0
	for _, err := range c.Dump(cctx, nil) {
		n++
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("dump: got %v, want context.Canceled", err)
		}
	}
	if n != 1 {
		t.Fatalf("dump yielded %d values, want one error", n)
	}
	if err := c.Create(cctx, f); !errors.Is(err, context.Canceled) {
		t.Fatalf("create: %v", err)
	}
	if _, err := c.Get(cctx, f); !errors.Is(err, context.Canceled) {
		t.Fatalf("get: %v", err)
	}
	if _, err := c.Stats(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("stats: %v", err)
	}
	if res, err := c.CreateMany(cctx, manyFlows(100)); !errors.Is(err, context.Canceled) || res.Done != 0 {
		t.Fatalf("create-many: %+v, %v", res, err)
	}
	if err := c.Flush(cctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("flush: %v", err)
	}
	// Nothing reached the kernel.
	if st, err := c.Stats(ctx(t)); err != nil || st.Entries != 0 {
		t.Fatalf("table after cancelled calls: %+v, %v", st, err)
	}
}

// TestKernelCancelDump cancels a dump of a large table from its loop body:
// the dump stops early with context.Canceled, and the Conn, whose socket
// still held the rest of the dump, works on with a fresh one.
func TestKernelCancelDump(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	const n = 5000
	if res, err := c.CreateMany(ctx, manyFlows(n)); err != nil || res.Done != n {
		t.Fatalf("fill: %+v, %v", res, err)
	}
	for _, stopAt := range []int{1, 100, 1000} {
		cctx, cancel := context.WithCancel(ctx)
		seen, errs := 0, 0
		var last error
		for _, err := range c.Dump(cctx, nil) {
			if err != nil {
				errs++
				last = err
				continue
			}
			seen++
			if seen == stopAt {
				cancel()
			}
		}
		cancel()
		if errs != 1 || !errors.Is(last, context.Canceled) {
			t.Fatalf("cancel after %d: %d errors, last %v; want one context.Canceled", stopAt, errs, last)
		}
		if seen != stopAt {
			t.Fatalf("cancel after %d: the dump went on to %d flows", stopAt, seen)
		}
		// The next dump sees the whole table.
		flows, err := c.List(ctx, nil)
		if err != nil || len(flows) != n {
			t.Fatalf("list after a cancelled dump: %d flows, %v", len(flows), err)
		}
	}
}

// TestKernelDeadline runs a dump that outlives its deadline.
func TestKernelDeadline(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	const n = 2000
	if res, err := c.CreateMany(ctx, manyFlows(n)); err != nil || res.Done != n {
		t.Fatalf("fill: %+v, %v", res, err)
	}
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	seen := 0
	var last error
	for _, err := range c.Dump(dctx, nil) {
		if err != nil {
			last = err
			break
		}
		seen++
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(last, context.DeadlineExceeded) || seen >= n {
		t.Fatalf("%d flows, then %v; want fewer than %d, then context.DeadlineExceeded", seen, last, n)
	}
	// A deadline already past fails a request before it is sent.
	pctx, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()
	if err := c.Create(pctx, testFlow("192.0.2.1", "192.0.2.2", 1, 80)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("create past its deadline: %v", err)
	}
	if flows, err := c.List(ctx, nil); err != nil || len(flows) != n {
		t.Fatalf("list: %d flows, %v", len(flows), err)
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
	if s.Port() == 0 {
		t.Fatal("socket without a port id")
	}
	msg := appendRequest(nil, MsgNew, netlink.Multi, s.Seq()+1, unix.AF_INET, testFlow("192.0.2.66", "192.0.2.2", 1, 80).AppendAttributes)
	err = ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: s.Port()})
	})
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("send from another socket to port %d: %v, want ECONNREFUSED", s.Port(), err)
	}
}

// TestKernelErrorReply sends requests whose top-level attribute breaks
// ct_nla_policy of nf_conntrack_netlink.c. nfnetlink parses the attributes
// with that policy and an extended ACK, so lib/nlattr.c's validate_nla
// answers: an attribute shorter than its type's minimum length (CTA_MARK is
// NLA_U32) or longer than the policy's len (CTA_LABELS is NLA_BINARY of at
// most NF_CT_LABELS_MAX_SIZE, 16 bytes) fails with ERANGE, the message
// "Attribute failed policy validation" and the attribute's offset.
func TestKernelErrorReply(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	const text = "Attribute failed policy validation"
	tests := []struct {
		name    string
		typ     uint16 // CTA_*
		payload int
		path    string
	}{
		{"short mark", 8, 2, "mark"},       // CTA_MARK
		{"long labels", 22, 20, "labels"},  // CTA_LABELS
		{"short timeout", 7, 1, "timeout"}, // CTA_TIMEOUT
		{"short zone", 18, 1, "zone"},      // CTA_ZONE, NLA_U16
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var key Flow
			key.SetTupleOrig(testFlow("192.0.2.1", "192.0.2.2", 1000, 80).TupleOrig)
			attrs := func(b []byte) []byte {
				b = key.AppendAttributes(b)
				n := 4 + tt.payload
				b = append(b, byte(n), byte(n>>8), byte(tt.typ), byte(tt.typ>>8))
				b = append(b, make([]byte, (n+3)&^3-4)...)
				return b
			}
			err := c.do(ctx, "update", MsgNew, netlink.Acknowledge, unix.AF_INET, schemaFlow, attrs, nil)
			var ce *Error
			var oe *netlink.OpError
			if !errors.As(err, &ce) || !errors.As(err, &oe) {
				t.Fatalf("got %v, want *Error wrapping *netlink.OpError", err)
			}
			if !errors.Is(err, unix.ERANGE) || oe.Message != text || ce.Attr != tt.path || ce.Op != "update" {
				t.Fatalf("got errno %v, message %q, attribute %q, op %q; want ERANGE, %q, %q, update", oe.Err, oe.Message, ce.Attr, ce.Op, text, tt.path)
			}
			// The offset is that of the bad attribute, the last one.
			var req []byte
			req = appendRequest(req, MsgNew, netlink.Acknowledge, 1, unix.AF_INET, attrs)
			if want := len(req) - (4+tt.payload+3)&^3; oe.Offset != want {
				t.Fatalf("offset %d, want %d", oe.Offset, want)
			}
		})
	}
}
