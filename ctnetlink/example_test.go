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

	dport := uint16(53)
	filter := &ctnetlink.DumpFilter{
		Orig: &ctnetlink.TupleFilter{Proto: unix.IPPROTO_UDP, DstPort: &dport},
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

	stale, err := c.List(ctx, &ctnetlink.DumpFilter{Mark: 0x10, MarkMask: 0xff})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.DeleteMany(ctx, stale)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("deleted %d, already gone %d, failed %d\n", res.Done, res.NotFound, len(res.Errors))
}
