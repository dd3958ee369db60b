package mirror_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/ctnetlink/mirror"
	"github.com/ctspec/ctspec/internal/nstest"
)

func tupleString(t *ctnetlink.Tuple) string {
	return fmt.Sprintf("%v:%d->%v:%d", t.Src(), t.Proto.SrcPort, t.Dst(), t.Proto.DstPort)
}

// exampleMirror mirrors the flows to UDP port 53 of the network namespace
// netns and prints every change to w until ctx ends.
func exampleMirror(ctx context.Context, netns int, w io.Writer) error {
	m, err := mirror.New(ctx, &mirror.Config{
		NetNS:  netns,
		Filter: &ctnetlink.Selector{Proto: ctnetlink.Protocol(unix.IPPROTO_UDP), OrigDstPort: ctnetlink.Port(53)},
		OnChange: func(c mirror.Change) {
			orig := c.Entry.Orig()
			fmt.Fprintf(w, "%v %v synthetic=%v\n", c.Kind, tupleString(&orig), c.Synthetic)
		},
	})
	if err != nil {
		return err
	}
	defer m.Close()
	// The mirror stops by itself when ctx ends. Meanwhile any goroutine
	// may read it: m.Len(), m.Get(key), m.Range, and m.Stats() for the
	// overruns it repaired.
	<-m.Done()
	return m.Err()
}

// ExampleMirror follows the DNS flows of the caller's network namespace
// until interrupted.
func ExampleMirror() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := exampleMirror(ctx, 0, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// exampleCollect prints, at every tick, the flows of the network namespace
// netns that were active since the previous tick, those that ended
// meanwhile included, until ctx ends.
func exampleCollect(ctx context.Context, netns int, tick <-chan time.Time, w io.Writer) error {
	m, err := mirror.New(ctx, &mirror.Config{NetNS: netns})
	if err != nil {
		return err
	}
	defer m.Close()
	c := m.NewCollector(0)
	defer c.Close()
	for {
		select {
		case <-tick:
		case <-m.Done():
			return m.Err()
		}
		var lines []string
		for _, a := range c.Collect() {
			orig := a.Entry.Orig()
			lines = append(lines, fmt.Sprintf("%v ended=%v mark=%d", tupleString(&orig), a.Ended, a.Entry.Mark()))
		}
		slices.Sort(lines)
		fmt.Fprintf(w, "%d active\n", len(lines))
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
}

// ExampleCollector prints every ten seconds the connections that were
// active since the previous report, including those that opened and closed
// in between, until interrupted.
func ExampleCollector() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	if err := exampleCollect(ctx, 0, tick.C, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// udpFlow is a UDP flow from src:4000 to 192.0.2.53:53.
func udpFlow(src string) *ctnetlink.Flow {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr("192.0.2.53")
	var f ctnetlink.Flow
	f.SetTupleOrig(ctnetlink.NewTuple(unix.IPPROTO_UDP, netip.AddrPortFrom(s, 4000), netip.AddrPortFrom(d, 53)))
	f.SetTupleReply(ctnetlink.NewTuple(unix.IPPROTO_UDP, netip.AddrPortFrom(d, 53), netip.AddrPortFrom(s, 4000)))
	f.SetTimeout(300)
	return &f
}

// waitOutput waits until out holds want.
func waitOutput(t *testing.T, out *nstest.Buffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); out.String() != want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := out.String(); got != want {
		t.Fatalf("example printed %q, want %q", got, want)
	}
}

// nextReport waits for a whole report of exampleCollect to follow
// position pos of out ("N active" and N lines) and returns it.
func nextReport(t *testing.T, out *nstest.Buffer, pos int) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		r := out.String()[pos:]
		lines := strings.SplitAfter(r, "\n")
		var n int
		if _, err := fmt.Sscanf(lines[0], "%d active\n", &n); err != nil || len(lines) < n+2 {
			continue
		}
		return strings.Join(lines[:n+1], "")
	}
	t.Fatalf("no whole report after %q", out.String()[:pos])
	return ""
}

// exampleNS makes a namespace for an example's code and a Conn in it.
func exampleNS(t *testing.T) (*nstest.NS, *ctnetlink.Conn) {
	ns := nstest.New(t)
	ns.Sysctl(t, "net.netfilter.nf_conntrack_events", "1")
	c, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ns, c
}

// TestExampleMirror runs the example's code in a namespace.
func TestExampleMirror(t *testing.T) {
	ns, c := exampleNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Create(ctx, udpFlow("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	var out nstest.Buffer
	done := make(chan error, 1)
	go func() { done <- exampleMirror(ctx, ns.FD(), &out) }()
	want := "added 10.0.0.1:4000->192.0.2.53:53 synthetic=true\n"
	waitOutput(t, &out, want)
	if err := c.Create(ctx, udpFlow("10.0.0.0")); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, udpFlow("10.0.0.0")); err != nil {
		t.Fatal(err)
	}
	want += "added 10.0.0.0:4000->192.0.2.53:53 synthetic=false\nremoved 10.0.0.0:4000->192.0.2.53:53 synthetic=false\n"
	waitOutput(t, &out, want)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("example: %v", err)
	}
}

// TestExampleCollector runs the example's code in a namespace: a flow
// that lived between two ticks is printed once, ended, and an idle flow
// only at the first tick.
func TestExampleCollector(t *testing.T) {
	ns, c := exampleNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Create(ctx, udpFlow("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	var out nstest.Buffer
	tick := make(chan time.Time)
	done := make(chan error, 1)
	go func() { done <- exampleCollect(ctx, ns.FD(), tick, &out) }()
	tick <- time.Now()
	want := "1 active\n10.0.0.1:4000->192.0.2.53:53 ended=false mark=0\n"
	waitOutput(t, &out, want)

	brief := udpFlow("10.0.0.2")
	brief.SetMark(7)
	if err := c.Create(ctx, brief); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, brief); err != nil {
		t.Fatal(err)
	}
	// The example has no barrier to wait for the flow's events: until
	// the mirror has applied them, a report shows the flow not yet seen
	// or not yet ended. It must then be reported ended, once.
	pos := len(want)
	ended := "1 active\n10.0.0.2:4000->192.0.2.53:53 ended=true mark=7\n"
	for i := 0; ; i++ {
		tick <- time.Now()
		r := nextReport(t, &out, pos)
		pos += len(r)
		if r == ended {
			break
		}
		if (r != "0 active\n" && r != "1 active\n10.0.0.2:4000->192.0.2.53:53 ended=false mark=7\n") || i == 50 {
			t.Fatalf("report %d after the short flow: %q, want %q", i, r, ended)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tick <- time.Now()
	if r := nextReport(t, &out, pos); r != "0 active\n" {
		t.Fatalf("report after the ended flow: %q, want %q", r, "0 active\n")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("example: %v", err)
	}
}
