package ctnetlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// exampleListenFiltered prints the TCP and UDP flows that start or end in
// the network namespace netns (0 for the caller's), except those from
// loopback addresses, until ctx ends. The kernel runs the selector on the
// socket, so it never queues the other events.
func exampleListenFiltered(ctx context.Context, netns int, w io.Writer) error {
	l, err := Listen(&ListenConfig{
		NetNS:  netns,
		Groups: []Group{GroupNew, GroupDestroy},
		Filter: &Selector{
			Proto:   AnyOf[uint8](unix.IPPROTO_TCP, unix.IPPROTO_UDP),
			OrigSrc: NoneOf(netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")),
		},
	})
	if err != nil {
		return err
	}
	defer l.Close()
	for ev, err := range l.Events(ctx) {
		switch {
		case err != nil && ctx.Err() == nil:
			log.Print(err)
		case err == nil:
			fmt.Fprintf(w, "%v %v -> %v\n", ev.Type, ev.Flow.TupleOrig.SrcAddrPort(), ev.Flow.TupleOrig.DstAddrPort())
		}
	}
	return ctx.Err()
}

// Listen for the TCP and UDP flows that start or end, except those of
// loopback addresses, with the selector run by the kernel on the socket.
func ExampleListen_filter() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := exampleListenFiltered(ctx, 0, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

func TestExampleListenFiltered(t *testing.T) {
	ns, c := dialNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out nstest.Buffer
	done := make(chan error, 1)
	go func() { done <- exampleListenFiltered(ctx, ns.FD(), &out) }()
	waitSubscribers(t, ns, 1)
	for _, f := range []*Flow{testFlow("127.0.0.1", "127.0.0.1", 1, 2), testFlow("192.0.2.1", "192.0.2.2", 1, 2)} {
		if err := c.Create(ctx, f); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	want := "new 192.0.2.1:1 -> 192.0.2.2:2\ndestroy 192.0.2.1:1 -> 192.0.2.2:2\n"
	for deadline := time.Now().Add(10 * time.Second); out.String() != want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("example: %v", err)
	}
	if got := out.String(); got != want {
		t.Errorf("example printed %q, want %q", got, want)
	}
}

// exampleCleanup plans, then runs, the deletion of two kinds of flows
// with c: the UDP flows to one DNS server, which the kernel can flush by
// itself, and the unmarked TCP flows in TIME_WAIT, which the client finds
// in one dump.
func exampleCleanup(ctx context.Context, c *Conn, w io.Writer) error {
	selectors := []Selector{
		{Proto: Protocol(unix.IPPROTO_UDP), OrigDst: HostIs(netip.MustParseAddr("192.0.2.53")), OrigDstPort: Port(53)},
		{Proto: Protocol(unix.IPPROTO_TCP), Mark: Is(MarkMatch{}), TCPStates: Is(TCPStateTimeWait)},
	}
	dry, err := c.Cleanup(ctx, selectors, &CleanupOptions{DryRun: true})
	if err != nil {
		return err
	}
	fmt.Fprint(w, dry.Plan.String())
	res, err := c.Cleanup(ctx, selectors, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d kernel flushes; %d flows scanned, %d deleted\n", res.Flushes, res.Scanned, res.Deleted)
	return nil
}

// Delete the flows that any of several selectors selects, after printing
// the plan: which selectors the kernel flushes by itself, and which the
// client evaluates over one shared dump.
func ExampleConn_Cleanup() {
	c, err := Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := exampleCleanup(context.Background(), c, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func TestExampleCleanup(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	udp := func(dst string, dport uint16) *Flow {
		var f Flow
		ap := netip.MustParseAddrPort
		f.SetTupleOrig(NewTuple(unix.IPPROTO_UDP, ap("192.0.2.1:5000"), netip.AddrPortFrom(netip.MustParseAddr(dst), dport)))
		f.SetTupleReply(NewTuple(unix.IPPROTO_UDP, netip.AddrPortFrom(netip.MustParseAddr(dst), dport), ap("192.0.2.1:5000")))
		f.SetTimeout(120)
		return &f
	}
	timeWait := func(src string, mark uint32) *Flow {
		f := testFlow(src, "192.0.2.2", 1000, 80)
		f.ProtoInfo.TCP.SetState(TCPStateTimeWait)
		if mark != 0 {
			f.SetMark(mark)
		}
		return f
	}
	flows := []*Flow{udp("192.0.2.53", 53), udp("192.0.2.54", 53), timeWait("192.0.2.10", 0), timeWait("192.0.2.11", 7),
		testFlow("192.0.2.12", "192.0.2.2", 1000, 80)}
	for _, f := range flows {
		if err := c.Create(ctx, f); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	var out strings.Builder
	if err := exampleCleanup(ctx, c, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("example output:\n%s", out.String())
	for _, line := range []string{"kernel flushes: ", "scan: one dump", "flows scanned, "} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
	left, err := c.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range left {
		got = append(got, left[i].TupleOrig.Src().String()+">"+left[i].TupleOrig.Dst().String())
	}
	want := []string{"192.0.2.1>192.0.2.54", "192.0.2.11>192.0.2.2", "192.0.2.12>192.0.2.2"}
	if len(got) != len(want) {
		t.Fatalf("left %v, want %v", got, want)
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(got, " "), w) {
			t.Errorf("left %v, want %v", got, want)
		}
	}
}
