package ctnetlink

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestKernelSelectorNegated lists flows with selectors whose one
// condition is negated, of the kinds the kernel's dump filter takes when
// positive. The kernel cannot evaluate a negation, so its dump alone must
// send every flow the oracle selects, and List exactly those.
func TestKernelSelectorNegated(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	flows := agreeFlows()
	var udp Flow
	s, d := netip.MustParseAddr("192.0.2.6"), netip.MustParseAddr("192.0.2.9")
	udp.SetTupleOrig(NewTuple(unix.IPPROTO_UDP, netip.AddrPortFrom(s, 2000), netip.AddrPortFrom(d, 53)))
	udp.SetTupleReply(NewTuple(unix.IPPROTO_UDP, netip.AddrPortFrom(d, 53), netip.AddrPortFrom(s, 2000)))
	udp.SetTimeout(120)
	flows = append(flows, &udp)
	for i, f := range flows {
		if err := c.Create(ctx, f); err != nil {
			t.Fatalf("create flow %d: %v", i, err)
		}
	}
	var u Flow
	u.SetTupleOrig(flows[1].TupleOrig)
	u.SetStatus(StatusConfirmed | StatusSeenReply)
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("update status: %v", err)
	}
	table, err := c.List(ctx, nil)
	if err != nil || len(table) != len(flows) {
		t.Fatalf("list: %d flows, %v", len(table), err)
	}
	selectors := []Selector{
		{Mark: NoneOf(MarkMatch{Mark: 5})},
		{Mark: NoneOf(MarkMatch{})},
		{Mark: NoneOf(MarkMatch{Mark: 5, Mask: 0xff})},
		{Status: NoneOf(StatusMatch{Status: StatusSeenReply})},
		{Zone: NoneOf[uint16](7)},
		{Zone: NoneOf[uint16](0)},
		{Proto: NoneOf[uint8](unix.IPPROTO_TCP)},
		{OrigSrc: NoneOf(Host(netip.MustParseAddr("192.0.2.1")))},
		{OrigDst: NoneOf(Host(netip.MustParseAddr("192.0.2.9")))},
		{Proto: Is[uint8](unix.IPPROTO_UDP), OrigDstPort: NoneOf[uint16](80)},
		{Proto: Is[uint8](unix.IPPROTO_UDP), OrigSrcPort: NoneOf[uint16](1000)},
	}
	for i := range selectors {
		s := &selectors[i]
		name := fmt.Sprintf("selector %d %+v", i, *s)
		var want []string
		for j := range table {
			if oracleSelects(s, &table[j]) {
				want = append(want, flowKey(&table[j]))
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s: the oracle selects nothing; the test proves nothing", name)
		}
		slices.Sort(want)
		listed, err := c.List(ctx, s)
		if err != nil {
			t.Fatalf("%s: list: %v", name, err)
		}
		var got []string
		for j := range listed {
			got = append(got, flowKey(&listed[j]))
		}
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: list (-oracle +got):\n%s", name, diff)
		}
		kernel := rawKernelDump(ctx, t, c, name, s)
		for _, k := range want {
			if !slices.Contains(kernel, k) {
				t.Errorf("%s: the kernel's dump, given the selector's attributes, left out %s", name, k)
			}
		}
	}
}

// rawKernelDump returns the keys of the flows the kernel alone sends for
// the dump attributes of s, without the client's check. A tuple filter
// without a family goes once per family, which the kernel requires.
func rawKernelDump(ctx context.Context, t *testing.T, c *Conn, name string, s *Selector) []string {
	t.Helper()
	fam, q := s.kernelRequest()
	fams := []uint8{fam}
	if fam == unix.AF_UNSPEC && q.Has(FlowAttrFilter) {
		fams = []uint8{unix.AF_INET, unix.AF_INET6}
	}
	var keys []string
	for _, fam := range fams {
		err := c.do(ctx, "dump", MsgGet, netlink.Dump, fam, schemaFlow, q.AppendAttributes, func(r *reply) error {
			var f Flow
			if err := f.UnmarshalAttributes(r.Attrs); err != nil {
				return err
			}
			keys = append(keys, flowKey(&f))
			return nil
		})
		if err != nil {
			t.Fatalf("%s: raw dump of family %d: %v", name, fam, err)
		}
	}
	return keys
}
