package ctnetlink

import (
	"errors"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// manyFlows returns n distinct UDP flows.
func manyFlows(n int) []Flow {
	flows := make([]Flow, n)
	for i := range flows {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		dst := netip.MustParseAddr("192.0.2.53")
		f := &flows[i]
		f.SetTupleOrig(NewTuple(unix.IPPROTO_UDP, netip.AddrPortFrom(src, 4000), netip.AddrPortFrom(dst, 53)))
		f.SetTupleReply(NewTuple(unix.IPPROTO_UDP, netip.AddrPortFrom(dst, 53), netip.AddrPortFrom(src, 4000)))
		f.SetTimeout(300)
		f.SetMark(uint32(i % 4))
	}
	return flows
}

func TestKernelBulk(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	flows := manyFlows(5000)
	res, err := c.CreateMany(ctx, flows)
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != len(flows) || len(res.Errors) != 0 {
		t.Fatalf("create: %+v", res)
	}
	if st, err := c.Stats(ctx); err != nil || st.Entries != uint32(len(flows)) {
		t.Fatalf("stats after create: %+v %v", st, err)
	}
	// Creating again fails item by item, naming each index.
	res, err = c.CreateMany(ctx, flows[:10])
	if err != nil || res.Done != 0 || len(res.Errors) != 10 {
		t.Fatalf("second create: %+v %v", res, err)
	}
	for i, ie := range res.Errors {
		if ie.Index != i || !errors.Is(ie.Err, os.ErrExist) {
			t.Fatalf("item error %d: %+v", i, ie)
		}
	}
	// Update marks in bulk.
	upd := make([]Flow, 100)
	for i := range upd {
		upd[i].SetTupleOrig(flows[i].TupleOrig)
		upd[i].SetMark(99)
	}
	if res, err = c.UpdateMany(ctx, upd); err != nil || res.Done != 100 {
		t.Fatalf("update: %+v %v", res, err)
	}
	n := 0
	for _, err := range c.Dump(ctx, &Selector{Mark: Is(MarkMatch{Mark: 99})}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 100 {
		t.Fatalf("%d flows with mark 99, want 100", n)
	}
	// Delete all, plus flows that never existed: those count as not found.
	del := append(flows, manyFlows(5100)[5000:]...)
	res, err = c.DeleteMany(ctx, del)
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 5000 || res.NotFound != 100 || len(res.Errors) != 0 {
		t.Fatalf("delete: done=%d notfound=%d errors=%d", res.Done, res.NotFound, len(res.Errors))
	}
	if st, _ := c.Stats(ctx); st.Entries != 0 {
		t.Fatalf("%d flows left", st.Entries)
	}
}
