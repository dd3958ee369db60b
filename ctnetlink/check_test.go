package ctnetlink

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// checkCase is a request the kernel refuses as malformed. send makes it
// through the Conn's API; raw, if not nil, sends the same request without
// the client's checks, to show what the kernel answers.
type checkCase struct {
	name string
	op   string
	want string
	send func(context.Context, *Conn) error
	raw  func(context.Context, *Conn) error
}

func u16(v uint16) *uint16 { return &v }
func u8(v uint8) *uint8    { return &v }

// editedFlow builds a TCP flow from two tuples, edited by edit.
func editedFlow(edit func(f *Flow)) *Flow {
	f := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)
	edit(f)
	return f
}

func checkCases() []checkCase {
	addr := netip.MustParseAddr
	ap := func(a string, p uint16) netip.AddrPort { return netip.AddrPortFrom(addr(a), p) }
	flow := editedFlow
	rawNew := func(f *Flow, flags netlink.HeaderFlags) func(context.Context, *Conn) error {
		return func(ctx context.Context, c *Conn) error {
			return c.do(ctx, "create", MsgNew, netlink.Acknowledge|flags, flowFamily(f), schemaFlow, f.AppendAttributes, nil)
		}
	}
	rawGet := func(f *Flow) func(context.Context, *Conn) error {
		return func(ctx context.Context, c *Conn) error {
			k := lookupKey(f)
			return c.do(ctx, "get", MsgGet, netlink.Acknowledge, flowFamily(f), schemaFlow, k.AppendAttributes, nil)
		}
	}
	rawDump := func(df *Selector) func(context.Context, *Conn) error {
		return func(ctx context.Context, c *Conn) error {
			fam, q := df.kernelRequest()
			return c.do(ctx, "dump", MsgGet, netlink.Dump, fam, schemaFlow, q.AppendAttributes, nil)
		}
	}
	create := func(f *Flow) func(context.Context, *Conn) error {
		return func(ctx context.Context, c *Conn) error { return c.Create(ctx, f) }
	}
	dump := func(df *Selector) func(context.Context, *Conn) error {
		return func(ctx context.Context, c *Conn) error {
			for _, err := range c.Dump(ctx, df) {
				if err != nil {
					return err
				}
			}
			return nil
		}
	}

	portNoProto := flow(func(f *Flow) {
		f.TupleOrig.Proto = TupleProto{}
		f.TupleOrig.Proto.SetSrcPort(1000)
		f.TupleOrig.Proto.SetDstPort(80)
	})
	icmpWithTCP := flow(func(f *Flow) { f.TupleOrig.Proto.SetICMPType(8) })
	mixed := flow(func(f *Flow) {
		f.TupleOrig.IP = TupleIP{}
		f.TupleOrig.SetSrc(addr("192.0.2.1"))
		f.TupleOrig.SetDst(addr("2001:db8::2"))
	})
	replyV6 := flow(func(f *Flow) {
		f.SetTupleReply(NewTuple(unix.IPPROTO_TCP, ap("2001:db8::2", 80), ap("2001:db8::1", 1000)))
	})
	noProto := flow(func(f *Flow) { f.TupleOrig.Proto = TupleProto{} })
	oneAddr := flow(func(f *Flow) { f.TupleOrig.IP = TupleIP{}; f.TupleOrig.SetSrc(addr("192.0.2.1")) })
	oneAddr.TupleOrig.SetSrc(addr("192.0.2.1"))
	oneAddr.TupleOrig.IP.SetV4Src(addr("192.0.2.1"))
	noDport := flow(func(f *Flow) {
		f.TupleOrig.Proto = TupleProto{}
		f.TupleOrig.Proto.SetNum(unix.IPPROTO_TCP)
		f.TupleOrig.Proto.SetSrcPort(1000)
	})
	icmpFlow := func(typ uint8, withID bool) *Flow {
		var f Flow
		f.SetTupleOrig(NewTuple(unix.IPPROTO_ICMP, ap("192.0.2.1", 0), ap("192.0.2.2", 0)))
		f.TupleOrig.Proto.SetICMPType(typ)
		f.TupleOrig.Proto.SetICMPCode(0)
		if withID {
			f.TupleOrig.Proto.SetICMPID(7)
		}
		f.SetTimeout(30)
		return &f
	}
	portWithICMP := icmpFlow(8, true)
	portWithICMP.TupleOrig.Proto.SetSrcPort(1)
	zoneTwice := flow(func(f *Flow) { f.SetZone(2); f.TupleOrig.SetZone(3) })

	cases := []checkCase{
		{name: "create: port without protocol", op: "create", want: "tuple-orig: port without a protocol number", send: create(portNoProto), raw: rawNew(portNoProto, netlink.Create|netlink.Excl)},
		{name: "create: ICMP fields with TCP", op: "create", want: "tuple-orig: ICMP fields with protocol 6, not ICMP", send: create(icmpWithTCP)},
		{name: "create: source and destination of different families", op: "create", want: "tuple-orig: source and destination addresses of different families", send: create(mixed), raw: rawNew(mixed, netlink.Create|netlink.Excl)},
		{name: "create: tuples of different families", op: "create", want: "tuple-orig and tuple-reply of different families", send: create(replyV6), raw: rawNew(replyV6, netlink.Create|netlink.Excl)},
		{name: "create: no protocol", op: "create", want: "tuple-orig: no protocol number", send: create(noProto), raw: rawNew(noProto, netlink.Create|netlink.Excl)},
		{name: "create: one address", op: "create", want: "tuple-orig: needs both a source and a destination address", send: create(oneAddr), raw: rawNew(oneAddr, netlink.Create|netlink.Excl)},
		{name: "create: TCP without destination port", op: "create", want: "tuple-orig: protocol 6 needs both ports", send: create(noDport), raw: rawNew(noDport, netlink.Create|netlink.Excl)},
		{name: "create: ICMP without id", op: "create", want: "tuple-orig: ICMP needs type, code and id", send: create(icmpFlow(8, false)), raw: rawNew(icmpFlow(8, false), netlink.Create|netlink.Excl)},
		{name: "create: ICMP type without reply", op: "create", want: "tuple-orig: ICMP type 3 has no reply type the kernel tracks", send: create(icmpFlow(3, true)), raw: rawNew(icmpFlow(3, true), netlink.Create|netlink.Excl)},
		{name: "create: port with ICMP", op: "create", want: "tuple-orig: port with protocol 1, which has none", send: create(portWithICMP)},
		{name: "create: zone twice", op: "create", want: "zone set for the flow and in a tuple", send: create(zoneTwice), raw: rawNew(zoneTwice, netlink.Create|netlink.Excl)},
		{name: "update: port without protocol", op: "update", want: "tuple-orig: port without a protocol number",
			send: func(ctx context.Context, c *Conn) error { return c.Update(ctx, portNoProto) }, raw: rawNew(portNoProto, 0)},
		{name: "get: port without protocol", op: "get", want: "tuple-orig: port without a protocol number",
			send: func(ctx context.Context, c *Conn) error { _, err := c.Get(ctx, portNoProto); return err }, raw: rawGet(portNoProto)},
		{name: "get: no tuple", op: "get", want: "tuple-reply: no addresses",
			send: func(ctx context.Context, c *Conn) error { _, err := c.Get(ctx, &Flow{}); return err }, raw: rawGet(&Flow{})},
		{name: "delete: mixed families", op: "delete", want: "tuple-orig: source and destination addresses of different families",
			send: func(ctx context.Context, c *Conn) error { return c.Delete(ctx, mixed) }},
		{name: "dump: port without protocol", op: "dump", want: "orig: port without a protocol number",
			send: dump(&Selector{OrigDstPort: Is[uint16](53)})},
		{name: "dump: ICMP fields with UDP", op: "dump", want: "orig: ICMP fields with protocol 17, not ICMP",
			send: dump(&Selector{Proto: Protocol(unix.IPPROTO_UDP), ICMPType: Is[uint8](8)})},
		{name: "dump: source and destination of different families", op: "dump", want: "orig: source and destination addresses of different families",
			send: dump(&Selector{OrigSrc: HostIs(addr("192.0.2.1")), OrigDst: HostIs(addr("2001:db8::1"))}), raw: rawDump(&Selector{OrigSrc: HostIs(addr("192.0.2.1")), OrigDst: HostIs(addr("2001:db8::1"))})},
		{name: "dump: address of the other family", op: "dump", want: "orig: address of family 2 in a filter of family 10",
			send: dump(&Selector{Family: unix.AF_INET6, OrigSrc: HostIs(addr("192.0.2.1"))}), raw: rawDump(&Selector{Family: unix.AF_INET6, OrigSrc: HostIs(addr("192.0.2.1"))})},
		{name: "dump: reply port without protocol", op: "dump", want: "reply: port without a protocol number",
			send: dump(&Selector{ReplySrcPort: Is[uint16](53)})},
		{name: "dump-zero: port without protocol", op: "dump-zero", want: "orig: port without a protocol number",
			send: func(ctx context.Context, c *Conn) error {
				for _, err := range c.DumpZero(ctx, &Selector{OrigSrcPort: Is[uint16](53)}) {
					return err
				}
				return nil
			}},
		{name: "flush: port without protocol", op: "flush", want: "orig: port without a protocol number",
			send: func(ctx context.Context, c *Conn) error {
				return c.Flush(ctx, &Selector{OrigDstPort: Is[uint16](53)})
			}},
		{name: "flush: ICMP fields with TCP", op: "flush", want: "orig: ICMP fields with protocol 6, not ICMP",
			send: func(ctx context.Context, c *Conn) error {
				return c.Flush(ctx, &Selector{Proto: Protocol(unix.IPPROTO_TCP), ICMPType: Is[uint8](8)})
			}},
		{name: "create-expect: port without protocol", op: "create-expect", want: "tuple: port without a protocol number",
			send: func(ctx context.Context, c *Conn) error {
				var e Expect
				e.SetTuple(portNoProto.TupleOrig)
				e.SetMaster(testFlow("192.0.2.1", "192.0.2.2", 1000, 21).TupleOrig)
				e.SetMask(NewExpectMask(unix.IPPROTO_TCP, addr("192.0.2.1"), 0xffff))
				return c.CreateExpect(ctx, &e)
			},
			raw: func(ctx context.Context, c *Conn) error {
				var e Expect
				e.SetTuple(portNoProto.TupleOrig)
				e.SetMaster(testFlow("192.0.2.1", "192.0.2.2", 1000, 21).TupleOrig)
				e.SetMask(NewExpectMask(unix.IPPROTO_TCP, addr("192.0.2.1"), 0xffff))
				return c.do(ctx, "create-expect", MsgExpNew, netlink.Acknowledge|netlink.Create|netlink.Excl, unix.AF_INET, schemaExpect, e.AppendAttributes, nil)
			}},
		{name: "create-expect: master of another family", op: "create-expect", want: "tuple and master of different families",
			send: func(ctx context.Context, c *Conn) error {
				var e Expect
				e.SetTuple(testFlow("192.0.2.2", "192.0.2.1", 20, 5000).TupleOrig)
				e.SetMaster(testFlow("2001:db8::1", "2001:db8::2", 1000, 21).TupleOrig)
				e.SetMask(NewExpectMask(unix.IPPROTO_TCP, addr("192.0.2.2"), 0xffff))
				return c.CreateExpect(ctx, &e)
			}},
		{name: "get-expect: mixed families", op: "get-expect", want: "tuple: source and destination addresses of different families",
			send: func(ctx context.Context, c *Conn) error {
				var e Expect
				e.SetTuple(mixed.TupleOrig)
				_, err := c.GetExpect(ctx, &e)
				return err
			}},
		{name: "delete-expect: no protocol", op: "delete-expect", want: "tuple: no protocol number",
			send: func(ctx context.Context, c *Conn) error {
				var e Expect
				e.SetTuple(noProto.TupleOrig)
				return c.DeleteExpect(ctx, &e)
			}},
		{name: "create-many: one bad item", op: "create", want: "item 1: tuple-orig: port without a protocol number",
			send: func(ctx context.Context, c *Conn) error {
				_, err := c.CreateMany(ctx, []Flow{*testFlow("192.0.2.1", "192.0.2.2", 1, 80), *portNoProto})
				return err
			}},
		{name: "delete-many: one bad item", op: "delete", want: "item 0: tuple-orig: no protocol number",
			send: func(ctx context.Context, c *Conn) error {
				_, err := c.DeleteMany(ctx, []Flow{*noProto})
				return err
			}},
	}
	return append(cases, strayCases()...)
}

// strayCases are requests holding a field written directly instead of with
// its Set method: not present, it would not be sent, so the request is
// refused.
func strayCases() []checkCase {
	stray := editedFlow
	mark := stray(func(f *Flow) { f.Mark = 5 })
	zone := stray(func(f *Flow) { f.Zone = 3 })
	// A present field written directly is still present, and sent; one
	// that was never set is not.
	port := stray(func(f *Flow) { f.TupleOrig.Proto.DstPort = 8080; f.TupleReply.Zone = 4 })
	help := stray(func(f *Flow) { f.SetHelp(&Help{Name: "ftp"}) })
	return []checkCase{
		{name: "create: mark written directly", op: "create", want: "Flow.Mark was written directly and would not be sent: set it with SetMark",
			send: func(ctx context.Context, c *Conn) error { return c.Create(ctx, mark) }},
		{name: "update: nested field written directly", op: "update", want: "Flow.TupleReply.Zone was written directly",
			send: func(ctx context.Context, c *Conn) error { return c.Update(ctx, port) }},
		{name: "create: pointer nest from a literal", op: "create", want: "Flow.Help.Name was written directly and would not be sent: set it with SetName",
			send: func(ctx context.Context, c *Conn) error { return c.Create(ctx, help) }},
		{name: "get: zone written directly", op: "get", want: "Flow.Zone was written directly",
			send: func(ctx context.Context, c *Conn) error { _, err := c.Get(ctx, zone); return err }},
		{name: "delete: zone written directly", op: "delete", want: "Flow.Zone was written directly",
			send: func(ctx context.Context, c *Conn) error { return c.Delete(ctx, zone) }},
		{name: "create-many: mark written directly", op: "create", want: "item 1: Flow.Mark was written directly",
			send: func(ctx context.Context, c *Conn) error {
				_, err := c.CreateMany(ctx, []Flow{*testFlow("192.0.2.1", "192.0.2.2", 1, 80), *mark})
				return err
			}},
		{name: "delete-many: zone written directly", op: "delete", want: "item 0: Flow.Zone was written directly",
			send: func(ctx context.Context, c *Conn) error {
				_, err := c.DeleteMany(ctx, []Flow{*zone})
				return err
			}},
		{name: "delete-expect: helper written directly", op: "delete-expect", want: "Expect.HelpName was written directly and would not be sent: set it with SetHelpName",
			send: func(ctx context.Context, c *Conn) error { return c.DeleteExpect(ctx, &Expect{HelpName: "ftp"}) }},
	}
}

// TestCheckBeforeSend checks that each malformed request fails with an
// error saying what is wrong, and that nothing reaches the kernel.
func TestCheckBeforeSend(t *testing.T) {
	for _, tt := range checkCases() {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := dialFake(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
				t.Errorf("request type %#x reached the kernel", uint16(reqs[0].Header.Type))
				return nil, errors.New("unexpected request")
			})
			err := tt.send(fakeCtx(t), c)
			var ce *Error
			if !errors.As(err, &ce) || ce.Op != tt.op || !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a %s error with %q that matches EINVAL", err, tt.op, tt.want)
			}
		})
	}
}

// TestKernelRefusesUnchecked sends the same malformed requests without the
// client's checks and shows that the kernel answers them with a bare EINVAL.
func TestKernelRefusesUnchecked(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	for _, tt := range checkCases() {
		if tt.raw == nil {
			continue
		}
		err := tt.raw(ctx, c)
		var oe *netlink.OpError
		if !errors.Is(err, unix.EINVAL) || !errors.As(err, &oe) {
			t.Errorf("%s: the kernel answered %v, want EINVAL", tt.name, err)
			continue
		}
		t.Logf("%s: kernel: %v (message %q)", tt.name, err, oe.Message)
	}
}
