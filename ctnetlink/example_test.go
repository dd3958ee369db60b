package ctnetlink_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// Stream the conntrack table: memory stays constant whatever its size.
func ExampleConn_Dump() {
	c, err := ctnetlink.Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	filter := &ctnetlink.Selector{
		Proto:       ctnetlink.Protocol(unix.IPPROTO_UDP),
		OrigDstPort: ctnetlink.Port(53),
	}
	for f, err := range c.Dump(context.Background(), filter) {
		if errors.Is(err, ctnetlink.ErrDumpInterrupted) {
			log.Print("table changed during the dump; run it again for a consistent view")
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(f.TupleOrig.Src(), "->", f.TupleOrig.Dst(), f.Status)
	}
}

// Create a flow, read it back and delete it by tuple and id.
func ExampleConn_Create() {
	c, err := ctnetlink.Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	src := netip.MustParseAddrPort("192.0.2.1:40000")
	dst := netip.MustParseAddrPort("198.51.100.1:53")
	var f ctnetlink.Flow
	f.SetTupleOrig(ctnetlink.NewTuple(unix.IPPROTO_UDP, src, dst))
	f.SetTupleReply(ctnetlink.NewTuple(unix.IPPROTO_UDP, dst, src))
	f.SetTimeout(30)
	f.SetMark(0x10)
	if err := c.Create(ctx, &f); errors.Is(err, os.ErrExist) {
		log.Print("already there")
	} else if err != nil {
		log.Fatal(err)
	}

	got, err := c.Get(ctx, &f)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.ID, got.Mark, got.Timeout)

	// The id makes sure a flow re-created with the same tuple survives.
	if err := c.Delete(ctx, got); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Fatal(err)
	}
}

// Delete many flows in a few system calls; flows already gone are counted,
// not reported as errors.
func ExampleConn_DeleteMany() {
	c, err := ctnetlink.Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	stale, err := c.List(ctx, &ctnetlink.Selector{Mark: ctnetlink.Is(ctnetlink.MarkMatch{Mark: 0x10, Mask: 0xff})})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.DeleteMany(ctx, stale)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("deleted %d, already gone %d, failed %d\n", res.Done, res.NotFound, len(res.Errors))
}

// Read and reset the counters of flows to port 443, as for per-interval
// accounting (needs net.netfilter.nf_conntrack_acct=1).
func ExampleConn_DumpZero() {
	c, err := ctnetlink.Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	filter := &ctnetlink.Selector{Proto: ctnetlink.Protocol(unix.IPPROTO_TCP), OrigDstPort: ctnetlink.Port(443)}
	for f, err := range c.DumpZero(context.Background(), filter) {
		if err != nil {
			log.Fatal(err)
		}
		// The counters read before the reset.
		fmt.Println(f.TupleOrig.Src(), f.CountersOrig.Bytes, f.CountersReply.Bytes)
	}
}

// List flows that were deleted but whose destroy event the kernel still
// has to deliver to a listener.
func ExampleConn_DumpDying() {
	c, err := ctnetlink.Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for f, err := range c.DumpDying(context.Background()) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("dying:", f.TupleOrig.Src(), "->", f.TupleOrig.Dst())
	}
}

// Count unconfirmed flows; current kernels keep no such list and return
// none.
func ExampleConn_DumpUnconfirmed() {
	c, err := ctnetlink.Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	n := 0
	for _, err := range c.DumpUnconfirmed(context.Background()) {
		if err != nil {
			log.Fatal(err)
		}
		n++
	}
	fmt.Println(n, "unconfirmed")
}

// Work in the namespace that "ip netns add blue" made. The Conn keeps the
// namespace open until Close, so every socket it opens is in that namespace.
func ExampleDial_netNSPath() {
	c, err := ctnetlink.Dial(&ctnetlink.Config{NetNSPath: "blue"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	st, err := c.Stats(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Entries, "flows in namespace blue")
}

// Build a selector with the constructors and test a flow against it. An
// unset field is no condition; a mark with a zero mask compares all bits.
func ExampleSelector() {
	var f ctnetlink.Flow
	f.SetTupleOrig(ctnetlink.NewTuple(unix.IPPROTO_TCP,
		netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("198.51.100.7:443")))
	f.SetMark(0x10)

	s := ctnetlink.Selector{
		Proto:       ctnetlink.Protocol(unix.IPPROTO_TCP),
		OrigDst:     ctnetlink.HostIs(netip.MustParseAddr("198.51.100.7")),
		OrigDstPort: ctnetlink.AnyOf[uint16](80, 443),
		OrigSrc:     ctnetlink.NoneOf(netip.MustParsePrefix("10.0.0.0/8")),
		Mark:        ctnetlink.Is(ctnetlink.MarkMatch{Mark: 0x10, Mask: 0xf0}),
	}
	fmt.Println(s.Match(&f))
	fmt.Println(ctnetlink.ProtoName(f.TupleOrig.Proto.Num), f.TupleOrig.SrcAddrPort(), "->", f.TupleOrig.DstAddrPort())

	var all ctnetlink.Selector
	unmarked := ctnetlink.Selector{Mark: ctnetlink.Is(ctnetlink.MarkMatch{})}
	fmt.Println(all.Match(&f), unmarked.Match(&f))
	// Output:
	// true
	// tcp 192.0.2.1:40000 -> 198.51.100.7:443
	// true false
}
