package ctnetlink

import (
	"errors"
	"math/rand"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

func TestEventFilterMatch(t *testing.T) {
	v4 := testFlow("10.0.0.1", "192.0.2.2", 1000, 80)
	v4.SetStatus(StatusConfirmed | StatusAssured)
	v4.SetMark(0x1234)
	v4.SetZone(3)
	v6 := testFlow("2001:db8::1", "2001:db8:1::2", 2000, 443)
	v6.SetStatus(StatusConfirmed | StatusSeenReply)
	local := testFlow("127.0.0.1", "127.0.0.1", 3000, 22)
	local6 := testFlow("::1", "::1", 3000, 22)
	ping := icmpFlow("10.0.0.1", "192.0.2.2")
	var exp Expect
	exp.SetTuple(NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort("192.0.2.1:0"), netip.MustParseAddrPort("192.0.2.2:21")))
	exp.SetMask(NewExpectMask(unix.IPPROTO_TCP, netip.MustParseAddr("255.255.255.255"), 0))
	exp.SetTimeout(30)

	type event struct {
		typ  EventType
		flow *Flow
		exp  *Expect
	}
	newV4 := event{EventNew, v4, nil}
	updV4 := event{EventUpdate, v4, nil}
	delV4 := event{EventDestroy, v4, nil}
	newV6 := event{EventNew, v6, nil}
	newLocal := event{EventNew, local, nil}
	newLocal6 := event{EventNew, local6, nil}
	newPing := event{EventNew, ping, nil}
	expNew := event{EventExpNew, nil, &exp}
	expDel := event{EventExpDestroy, nil, &exp}
	all := []event{newV4, updV4, delV4, newV6, newLocal, newLocal6, newPing, expNew, expDel}

	tests := []struct {
		name   string
		filter Selector
		want   []event // the events of all that the filter selects
	}{
		{"zero filter", Selector{}, all},
		{"empty negated lists", Selector{Proto: negated(oneOf[uint8]()), OrigSrc: negated(prefixes())}, all},
		{"types new", Selector{Types: oneOf(EventNew)}, []event{newV4, newV6, newLocal, newLocal6, newPing}},
		{"types not new", Selector{Types: negated(oneOf(EventNew))}, []event{updV4, delV4, expNew, expDel}},
		{"types update or destroy", Selector{Types: oneOf(EventUpdate, EventDestroy)}, []event{updV4, delV4}},
		{"types exp-destroy", Selector{Types: oneOf(EventExpDestroy)}, []event{expDel}},
		{"family ipv6", Selector{Family: unix.AF_INET6}, []event{newV6, newLocal6, expNew, expDel}},
		{"proto icmp", Selector{Proto: oneOf[uint8](unix.IPPROTO_ICMP)}, []event{newPing, expNew, expDel}},
		{"proto not tcp", Selector{Proto: negated(oneOf[uint8](unix.IPPROTO_TCP))}, []event{newPing, expNew, expDel}},

		// An address is in no prefix of the other family: an IPv6 prefix
		// selects no IPv4 event, and negated keeps every IPv4 event.
		{"ipv6 source only", Selector{OrigSrc: prefixes("2001:db8::/64")}, []event{newV6, expNew, expDel}},
		{"ipv6 source only negated", Selector{OrigSrc: negated(prefixes("2001:db8::/64"))}, []event{newV4, updV4, delV4, newLocal, newLocal6, newPing, expNew, expDel}},
		{"ipv4 source only", Selector{OrigSrc: prefixes("10.0.0.0/8")}, []event{newV4, updV4, delV4, newPing, expNew, expDel}},
		{"ipv6 source and family", Selector{Family: unix.AF_INET6, OrigSrc: prefixes("2001:db8::/64")}, []event{newV6, expNew, expDel}},
		{"both families", Selector{OrigSrc: prefixes("10.0.0.1/32", "::1/128")}, []event{newV4, updV4, delV4, newLocal6, newPing, expNew, expDel}},
		{"not localhost", Selector{OrigSrc: negated(prefixes("127.0.0.0/8", "::1/128"))}, []event{newV4, updV4, delV4, newV6, newPing, expNew, expDel}},
		{"default routes", Selector{OrigDst: prefixes("0.0.0.0/0", "::/0")}, all},
		{"default routes negated", Selector{OrigDst: negated(prefixes("0.0.0.0/0", "::/0"))}, []event{expNew, expDel}},
		{"host bits ignored", Selector{OrigDst: prefixes("192.0.2.255/24")}, []event{newV4, updV4, delV4, newPing, expNew, expDel}},
		{"reply source", Selector{ReplySrc: prefixes("2001:db8:1::/48", "192.0.2.2/32")}, []event{newV4, updV4, delV4, newV6, newPing, expNew, expDel}},
		{"reply destination", Selector{ReplyDst: prefixes("2001:db8::1/128")}, []event{newV6, expNew, expDel}},

		// Ports: ICMP has none.
		{"source port", Selector{OrigSrcPort: oneOf[uint16](1000, 3000)}, []event{newV4, updV4, delV4, newLocal, newLocal6, expNew, expDel}},
		{"destination port", Selector{OrigDstPort: oneOf[uint16](443)}, []event{newV6, expNew, expDel}},
		{"destination port negated", Selector{OrigDstPort: negated(oneOf[uint16](443))}, []event{newV4, updV4, delV4, newLocal, newLocal6, newPing, expNew, expDel}},
		{"port 0", Selector{OrigSrcPort: oneOf[uint16](0)}, []event{expNew, expDel}},

		// Mark: absent is 0.
		{"mark", Selector{Mark: oneOf(MarkMatch{Mark: 0x1234})}, []event{newV4, updV4, delV4, expNew, expDel}},
		{"mark 0", Selector{Mark: oneOf(MarkMatch{})}, []event{newV6, newLocal, newLocal6, newPing, expNew, expDel}},
		{"mark under mask", Selector{Mark: oneOf(MarkMatch{Mark: 0x1200, Mask: 0xff00})}, []event{newV4, updV4, delV4, expNew, expDel}},
		{"mark bits outside mask ignored", Selector{Mark: oneOf(MarkMatch{Mark: 0xff34, Mask: 0xff})}, []event{newV4, updV4, delV4, expNew, expDel}},
		{"mark not under mask", Selector{Mark: oneOf(MarkMatch{Mark: 0x1300, Mask: 0xff00})}, []event{expNew, expDel}},
		{"mark negated", Selector{Mark: negated(oneOf(MarkMatch{Mark: 0x1234}, MarkMatch{Mark: 5}))}, []event{newV6, newLocal, newLocal6, newPing, expNew, expDel}},

		// Zone: absent is 0.
		{"zone", Selector{Zone: oneOf[uint16](3)}, []event{newV4, updV4, delV4, expNew, expDel}},
		{"zone 0", Selector{Zone: oneOf[uint16](0)}, []event{newV6, newLocal, newLocal6, newPing, expNew, expDel}},

		// Status: a zero mask means the bits of Status.
		{"status assured", Selector{Status: oneOf(StatusMatch{Status: StatusAssured})}, []event{newV4, updV4, delV4, expNew, expDel}},
		{"status not assured", Selector{Status: oneOf(StatusMatch{Mask: StatusAssured})}, []event{newV6, newLocal, newLocal6, newPing, expNew, expDel}},
		{"status negated", Selector{Status: negated(oneOf(StatusMatch{Status: StatusAssured}))}, []event{newV6, newLocal, newLocal6, newPing, expNew, expDel}},
		{"status both bits", Selector{Status: oneOf(StatusMatch{Status: StatusAssured | StatusSeenReply})}, []event{expNew, expDel}},
		{"status either bit", Selector{Status: oneOf(StatusMatch{Status: StatusAssured}, StatusMatch{Status: StatusSeenReply})}, []event{newV4, updV4, delV4, newV6, expNew, expDel}},
		{"zero status match", Selector{Status: oneOf(StatusMatch{})}, all},

		// Fields combine with AND.
		{"and", Selector{Types: oneOf(EventNew, EventDestroy), Proto: oneOf[uint8](unix.IPPROTO_TCP), OrigSrc: negated(prefixes("127.0.0.0/8", "::1/128")), OrigDstPort: oneOf[uint16](80, 443)},
			[]event{newV4, delV4, newV6}},
		{"and exp", Selector{Types: oneOf(EventExpNew, EventNew), Family: unix.AF_INET, Mark: oneOf(MarkMatch{Mark: 1})}, []event{expNew}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog := assemble(t, &tt.filter)
			var got []int
			for i, e := range all {
				msg := eventMsg(e.typ, e.flow, e.exp)
				ev := decodeEvent(t, msg)
				m := tt.filter.MatchEvent(ev)
				checkProgram(t, &tt.filter, prog, msg, m)
				if m {
					got = append(got, i)
				}
			}
			var want []int
			for i, e := range all {
				for _, w := range tt.want {
					if e == w {
						want = append(want, i)
					}
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("selected events by index in all (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventFilterMatchNil(t *testing.T) {
	var f *Selector
	if !f.MatchEvent(&Event{Type: EventNew, Flow: testFlow("10.0.0.1", "10.0.0.2", 1, 2)}) {
		t.Error("nil filter rejected an event")
	}
}

// TestEventFilterMissingAttributes checks messages the kernel does not
// send: the program keeps those it cannot judge and Match decides.
func TestEventFilterMissingAttributes(t *testing.T) {
	f := &Selector{
		Proto:       oneOf[uint8](unix.IPPROTO_TCP),
		OrigSrc:     prefixes("10.0.0.0/8"),
		ReplySrc:    negated(prefixes("10.9.0.0/16")),
		OrigDstPort: oneOf[uint16](80),
	}
	prog := assemble(t, f)
	full := testFlow("10.0.0.1", "10.0.0.2", 1000, 80)
	noOrig := *full
	noOrig.TupleOrig = Tuple{}
	noOrig.present &^= 1 << FlowAttrTupleOrig
	noReply := *full
	noReply.TupleReply = Tuple{}
	noReply.present &^= 1 << FlowAttrTupleReply
	noProto := *full
	noProto.TupleOrig.Proto = TupleProto{}
	noProto.TupleOrig.present &^= 1 << TupleAttrProto
	tests := []struct {
		name string
		flow *Flow
		keep bool
	}{
		{"complete", full, true},
		{"no tuple-orig", &noOrig, true},
		{"no tuple-reply", &noReply, true},
		{"no tuple-orig.tuple-proto", &noProto, true},
	}
	for _, tt := range tests {
		msg := eventMsg(EventNew, tt.flow, nil)
		if got := runFilter(t, prog, msg) != 0; got != tt.keep {
			t.Errorf("%s: program keeps %v, want %v", tt.name, got, tt.keep)
		}
	}
	// Messages that are not events reach Events, which reports them.
	for _, mt := range []MsgType{MsgGetStats, MsgExpGet, 0x0300} {
		msg := appendRequest(nil, mt, 0, 0, unix.AF_INET, nil)
		if runFilter(t, prog, msg) == 0 {
			t.Errorf("program drops message type %#x", uint16(mt))
		}
	}
	if runFilter(t, prog, appendRequest(nil, MsgType(netlink.Error), 0, 0, 0, nil)) == 0 {
		t.Error("program drops NLMSG_ERROR")
	}
}

// TestEventFilterDiscarded checks that the decoder drops and counts the
// events the filter rejects.
func TestEventFilterDiscarded(t *testing.T) {
	f := &Selector{OrigSrc: prefixes("10.0.0.0/8")}
	var dgram []byte
	for _, src := range []string{"10.0.0.1", "192.0.2.1", "10.0.0.2", "2001:db8::1", "192.0.2.2"} {
		dst := "192.0.2.9"
		if strings.Contains(src, ":") {
			dst = "2001:db8::9"
		}
		dgram = append(dgram, eventMsg(EventNew, testFlow(src, dst, 1, 2), nil)...)
	}
	l := &Listener{rest: dgram, filter: f}
	var got []string
	for len(l.rest) > 0 {
		ev, err := l.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev != nil {
			got = append(got, ev.Flow.TupleOrig.Src().String())
		}
	}
	if diff := cmp.Diff([]string{"10.0.0.1", "10.0.0.2"}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if l.Discarded() != 3 {
		t.Errorf("Discarded() = %d, want 3", l.Discarded())
	}
}

func TestEventFilterInvalid(t *testing.T) {
	tests := []struct {
		name   string
		filter Selector
		want   string
	}{
		{"event type", Selector{Types: oneOf(EventNew, EventType(9))}, "unknown event type 9"},
		{"family", Selector{Family: unix.AF_UNIX}, "family: 1 is neither"},
		{"prefix", Selector{ReplyDst: OneOf[netip.Prefix]{Values: []netip.Prefix{{}}}}, "reply-dst: invalid prefix"},
	}
	for _, tt := range tests {
		_, err := tt.filter.Program()
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Program: got %v, want an *Error containing %q", tt.name, err, tt.want)
		}
		// Listen refuses the filter before it opens a socket.
		_, err = Listen(&ListenConfig{Filter: &tt.filter})
		if !errors.As(err, &ce) || ce.Op != "listen" || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Listen: got %v, want a listen *Error containing %q", tt.name, err, tt.want)
		}
	}
}

// TestEventFilterProgramSize checks long jumps and the kernel's limit.
func TestEventFilterProgramSize(t *testing.T) {
	// 1000 IPv4 hosts: the first comparisons jump far to the match.
	var many []netip.Prefix
	for i := range 1000 {
		many = append(many, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32))
	}
	for _, negate := range []bool{false, true} {
		f := &Selector{OrigSrc: OneOf[netip.Prefix]{Values: many, Negate: negate}, Mark: oneOf(MarkMatch{Mark: 1, Mask: 1})}
		prog := assemble(t, f)
		if len(prog) < 2000 {
			t.Fatalf("program of %d instructions for 1000 prefixes", len(prog))
		}
		for _, i := range []int{0, 1, 254, 255, 256, 500, 998, 999, 1000, 1001} {
			fl := testFlow(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String(), "192.0.2.1", 1, 2)
			for _, mark := range []uint32{0, 1, 3} {
				fl.SetMark(mark)
				msg := eventMsg(EventUpdate, fl, nil)
				checkProgram(t, f, prog, msg, f.MatchEvent(decodeEvent(t, msg)))
			}
		}
	}

	// 600 IPv6 hosts need 8 instructions each: too many.
	var v6 []netip.Prefix
	for i := range 600 {
		v6 = append(v6, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}), 128))
	}
	_, err := (&Selector{OrigDst: OneOf[netip.Prefix]{Values: v6}}).Program()
	if !errors.Is(err, errProgramTooLong) || !strings.Contains(err.Error(), "4096") {
		t.Fatalf("program for 600 IPv6 hosts: got %v, want an error naming the limit of 4096", err)
	}
	_, err = Listen(&ListenConfig{Filter: &Selector{OrigDst: OneOf[netip.Prefix]{Values: v6}}})
	if !errors.Is(err, errProgramTooLong) {
		t.Fatalf("Listen with 600 IPv6 hosts: got %v", err)
	}
}

func TestEventFilterEmptyProgram(t *testing.T) {
	for _, f := range []*Selector{nil, {}, {Proto: negated(oneOf[uint8]())}} {
		p, err := f.Program()
		if err != nil || len(p) != 1 || p[0] != (bpf.RetConstant{Val: keepMsg}) {
			t.Errorf("Program of %+v = %v, %v; want one ret #%#x", f, p, err, uint32(keepMsg))
		}
	}
}

// The random filters draw from the values randomTable and randomUpdates
// use, so that they select some events and not others.
var (
	filterMarks    = []uint32{0, 1, 2, 3, 0x100, 0x101, 0x1ff, 0xff00, 0x80000001, 0xdeadbeef}
	filterMarkMask = []uint32{0, 0xff, 0xff00, 1, 0x100, 0xffff0000, 0xffffffff}
	filterStatus   = []StatusMatch{
		{Status: StatusAssured}, {Status: StatusSeenReply}, {Status: StatusAssured | StatusSeenReply},
		{Mask: StatusAssured}, {Mask: StatusSeenReply}, {Status: StatusConfirmed},
		{Status: StatusSeenReply, Mask: StatusSeenReply | StatusAssured},
	}
)

// randomEventFilter draws a filter of up to five conditions over the
// values of flows, each negated with a probability of 1/3. One filter in
// ten has an address list of hundreds of prefixes.
func randomEventFilter(r *rand.Rand, flows []Flow) *Selector {
	var f Selector
	flow := func() *Flow { return &flows[r.Intn(len(flows))] }
	n := func() int { return 1 + r.Intn(3) }
	neg := func() bool { return r.Intn(3) == 0 }
	prefix := func(a netip.Addr) netip.Prefix {
		if a.Is4() {
			bits := []int{0, 8, 16, 24, 29, 30, 31, 32, 32, r.Intn(33)}[r.Intn(10)]
			return netip.PrefixFrom(a, bits)
		}
		bits := []int{0, 32, 64, 96, 112, 116, 120, 125, 126, 127, 128, 128, r.Intn(129)}[r.Intn(13)]
		return netip.PrefixFrom(a, bits)
	}
	randomAddr := func(v6 bool) netip.Addr {
		var b [16]byte
		r.Read(b[:])
		if v6 {
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	addrs := func(get func(*Flow) netip.Addr) OneOf[netip.Prefix] {
		var c OneOf[netip.Prefix]
		count := n()
		if r.Intn(10) == 0 {
			count = 100 + r.Intn(200)
		}
		for range count {
			a := get(flow())
			if r.Intn(4) == 0 {
				a = randomAddr(r.Intn(2) == 0)
			}
			c.Values = append(c.Values, prefix(a))
		}
		c.Negate = neg()
		return c
	}
	for _, field := range r.Perm(12)[:r.Intn(6)] {
		switch field {
		case 0:
			for _, t := range []EventType{EventNew, EventUpdate, EventDestroy, EventExpNew, EventExpDestroy} {
				if r.Intn(2) == 0 {
					f.Types.Values = append(f.Types.Values, t)
				}
			}
			f.Types.Negate = neg()
		case 1:
			f.Family = []uint8{unix.AF_INET, unix.AF_INET6}[r.Intn(2)]
		case 2:
			for range n() {
				f.Proto.Values = append(f.Proto.Values, []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6, unix.IPPROTO_GRE}[r.Intn(6)])
			}
			f.Proto.Negate = neg()
		case 3:
			f.OrigSrc = addrs(func(f *Flow) netip.Addr { return f.TupleOrig.Src() })
		case 4:
			f.OrigDst = addrs(func(f *Flow) netip.Addr { return f.TupleOrig.Dst() })
		case 5:
			f.ReplySrc = addrs(func(f *Flow) netip.Addr { return f.TupleReply.Src() })
		case 6:
			f.ReplyDst = addrs(func(f *Flow) netip.Addr { return f.TupleReply.Dst() })
		case 7:
			for range n() {
				f.OrigSrcPort.Values = append(f.OrigSrcPort.Values, flow().TupleOrig.Proto.SrcPort)
			}
			f.OrigSrcPort.Negate = neg()
		case 8:
			for range n() {
				f.OrigDstPort.Values = append(f.OrigDstPort.Values, []uint16{0, 53, 80, 443, 5060, flow().TupleOrig.Proto.DstPort}[r.Intn(6)])
			}
			f.OrigDstPort.Negate = neg()
		case 9:
			for range n() {
				m := MarkMatch{Mark: filterMarks[r.Intn(len(filterMarks))], Mask: filterMarkMask[r.Intn(len(filterMarkMask))]}
				if r.Intn(2) == 0 {
					m.Mark = flow().Mark
				}
				if r.Intn(8) == 0 {
					m.Mask = r.Uint32()
				}
				f.Mark.Values = append(f.Mark.Values, m)
			}
			f.Mark.Negate = neg()
		case 10:
			for range n() {
				f.Zone.Values = append(f.Zone.Values, uint16(r.Intn(4)))
			}
			f.Zone.Negate = neg()
		case 11:
			for range n() {
				f.Status.Values = append(f.Status.Values, filterStatus[r.Intn(len(filterStatus))])
			}
			f.Status.Negate = neg()
		}
	}
	return &f
}

// randomUpdates changes the mark of about half of flows and sets status
// bits on some. The kernel refuses to clear confirmed, seen-reply and
// assured, so the status sent keeps them. It returns the update requests.
func randomUpdates(r *rand.Rand, flows []Flow) []Flow {
	var ups []Flow
	for i := range flows {
		f := &flows[i]
		if r.Intn(2) == 0 {
			continue
		}
		var u Flow
		u.SetTupleOrig(f.TupleOrig)
		if f.Zone != 0 {
			u.SetZone(f.Zone)
		}
		if r.Intn(4) != 0 {
			f.SetMark(filterMarks[r.Intn(len(filterMarks))])
			u.SetMark(f.Mark)
		}
		if r.Intn(3) == 0 {
			f.SetStatus(StatusConfirmed | f.Status | []Status{StatusAssured, StatusSeenReply}[r.Intn(2)])
			u.SetStatus(f.Status)
		}
		ups = append(ups, u)
	}
	return ups
}

// TestEventFilterProgramRandom runs the programs of random filters on
// random events, in the test's own interpreter, and compares each verdict
// with Match.
func TestEventFilterProgramRandom(t *testing.T) {
	r := filterRand(t)
	table := randomTable(r, 200)
	var e Expect
	e.SetTuple(NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort("10.1.0.1:0"), netip.MustParseAddrPort("10.2.0.1:21")))
	e.SetTimeout(30)
	types := []EventType{EventNew, EventUpdate, EventDestroy}
	iterations := 3000
	if testing.Short() {
		iterations = 300
	}
	kept := 0
	for range iterations {
		f := randomEventFilter(r, table)
		prog := assemble(t, f)
		for range 10 {
			one := []Flow{table[r.Intn(len(table))]}
			randomUpdates(r, one)
			fl := &one[0]
			if r.Intn(4) == 0 {
				fl.Mark, fl.present = 0, fl.present&^(1<<FlowAttrMark) // the kernel leaves mark 0 out
			}
			msg := eventMsg(types[r.Intn(3)], fl, nil)
			if r.Intn(10) == 0 {
				msg = eventMsg([]EventType{EventExpNew, EventExpDestroy}[r.Intn(2)], nil, &e)
			}
			want := f.MatchEvent(decodeEvent(t, msg))
			checkProgram(t, f, prog, msg, want)
			if want {
				kept++
			}
		}
	}
	t.Logf("%d of %d random events kept", kept, 10*iterations)
}
