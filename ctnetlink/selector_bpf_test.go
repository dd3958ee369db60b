package ctnetlink

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// testEvent is an event of TestEventFilterMatch: a flow or an
// expectation with its event type.
type testEvent struct {
	typ  EventType
	flow *Flow
	exp  *Expect
}

// eventFixture holds the events the Match tables choose from.
type eventFixture struct {
	newV4, updV4, delV4, newV6, newLocal, newLocal6, newPing, expNew, expDel testEvent
	all                                                                      []testEvent
}

func newEventFixture() *eventFixture {
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

	e := &eventFixture{
		newV4: testEvent{EventNew, v4, nil}, updV4: testEvent{EventUpdate, v4, nil}, delV4: testEvent{EventDestroy, v4, nil},
		newV6: testEvent{EventNew, v6, nil}, newLocal: testEvent{EventNew, local, nil}, newLocal6: testEvent{EventNew, local6, nil},
		newPing: testEvent{EventNew, ping, nil}, expNew: testEvent{EventExpNew, nil, &exp}, expDel: testEvent{EventExpDestroy, nil, &exp},
	}
	e.all = []testEvent{e.newV4, e.updV4, e.delV4, e.newV6, e.newLocal, e.newLocal6, e.newPing, e.expNew, e.expDel}
	return e
}

// eventMatchRow is a row of the Match tables: the events of the fixture
// that filter selects.
type eventMatchRow struct {
	name   string
	filter Selector
	want   []testEvent
}

// runEventMatch checks each row's filter with MatchEvent and with its
// program on the events of all.
func runEventMatch(t *testing.T, all []testEvent, tests []eventMatchRow) {
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

func TestEventFilterMatch(t *testing.T) {
	e := newEventFixture()
	runEventMatch(t, e.all, []eventMatchRow{
		{"zero filter", Selector{}, e.all},
		{"empty negated lists", Selector{Proto: negated(oneOf[uint8]()), OrigSrc: negated(prefixes())}, e.all},
		{"types new", Selector{Types: oneOf(EventNew)}, []testEvent{e.newV4, e.newV6, e.newLocal, e.newLocal6, e.newPing}},
		{"types not new", Selector{Types: negated(oneOf(EventNew))}, []testEvent{e.updV4, e.delV4, e.expNew, e.expDel}},
		{"types update or destroy", Selector{Types: oneOf(EventUpdate, EventDestroy)}, []testEvent{e.updV4, e.delV4}},
		{"types exp-destroy", Selector{Types: oneOf(EventExpDestroy)}, []testEvent{e.expDel}},
		{"family ipv6", Selector{Family: unix.AF_INET6}, []testEvent{e.newV6, e.newLocal6, e.expNew, e.expDel}},
		{"proto icmp", Selector{Proto: oneOf[uint8](unix.IPPROTO_ICMP)}, []testEvent{e.newPing, e.expNew, e.expDel}},
		{"proto not tcp", Selector{Proto: negated(oneOf[uint8](unix.IPPROTO_TCP))}, []testEvent{e.newPing, e.expNew, e.expDel}},

		// An address is in no prefix of the other family: an IPv6 prefix
		// selects no IPv4 event, and negated keeps every IPv4 event.
		{"ipv6 source only", Selector{OrigSrc: prefixes("2001:db8::/64")}, []testEvent{e.newV6, e.expNew, e.expDel}},
		{"ipv6 source only negated", Selector{OrigSrc: negated(prefixes("2001:db8::/64"))}, []testEvent{e.newV4, e.updV4, e.delV4, e.newLocal, e.newLocal6, e.newPing, e.expNew, e.expDel}},
		{"ipv4 source only", Selector{OrigSrc: prefixes("10.0.0.0/8")}, []testEvent{e.newV4, e.updV4, e.delV4, e.newPing, e.expNew, e.expDel}},
		{"ipv6 source and family", Selector{Family: unix.AF_INET6, OrigSrc: prefixes("2001:db8::/64")}, []testEvent{e.newV6, e.expNew, e.expDel}},
		{"both families", Selector{OrigSrc: prefixes("10.0.0.1/32", "::1/128")}, []testEvent{e.newV4, e.updV4, e.delV4, e.newLocal6, e.newPing, e.expNew, e.expDel}},
		{"not localhost", Selector{OrigSrc: negated(prefixes("127.0.0.0/8", "::1/128"))}, []testEvent{e.newV4, e.updV4, e.delV4, e.newV6, e.newPing, e.expNew, e.expDel}},
		{"default routes", Selector{OrigDst: prefixes("0.0.0.0/0", "::/0")}, e.all},
		{"default routes negated", Selector{OrigDst: negated(prefixes("0.0.0.0/0", "::/0"))}, []testEvent{e.expNew, e.expDel}},
		{"host bits ignored", Selector{OrigDst: prefixes("192.0.2.255/24")}, []testEvent{e.newV4, e.updV4, e.delV4, e.newPing, e.expNew, e.expDel}},
		{"reply source", Selector{ReplySrc: prefixes("2001:db8:1::/48", "192.0.2.2/32")}, []testEvent{e.newV4, e.updV4, e.delV4, e.newV6, e.newPing, e.expNew, e.expDel}},
		{"reply destination", Selector{ReplyDst: prefixes("2001:db8::1/128")}, []testEvent{e.newV6, e.expNew, e.expDel}},

		// Ports: ICMP has none.
		{"source port", Selector{OrigSrcPort: oneOf[uint16](1000, 3000)}, []testEvent{e.newV4, e.updV4, e.delV4, e.newLocal, e.newLocal6, e.expNew, e.expDel}},
		{"destination port", Selector{OrigDstPort: oneOf[uint16](443)}, []testEvent{e.newV6, e.expNew, e.expDel}},
		{"destination port negated", Selector{OrigDstPort: negated(oneOf[uint16](443))}, []testEvent{e.newV4, e.updV4, e.delV4, e.newLocal, e.newLocal6, e.newPing, e.expNew, e.expDel}},
		{"port 0", Selector{OrigSrcPort: oneOf[uint16](0)}, []testEvent{e.expNew, e.expDel}},
	})
}

// TestEventFilterMatchMeta is TestEventFilterMatch for mark, zone, status
// and their combinations.
func TestEventFilterMatchMeta(t *testing.T) {
	e := newEventFixture()
	runEventMatch(t, e.all, []eventMatchRow{
		// Mark: absent is 0.
		{"mark", Selector{Mark: oneOf(MarkMatch{Mark: 0x1234})}, []testEvent{e.newV4, e.updV4, e.delV4, e.expNew, e.expDel}},
		{"mark 0", Selector{Mark: oneOf(MarkMatch{})}, []testEvent{e.newV6, e.newLocal, e.newLocal6, e.newPing, e.expNew, e.expDel}},
		{"mark under mask", Selector{Mark: oneOf(MarkMatch{Mark: 0x1200, Mask: 0xff00})}, []testEvent{e.newV4, e.updV4, e.delV4, e.expNew, e.expDel}},
		{"mark bits outside mask ignored", Selector{Mark: oneOf(MarkMatch{Mark: 0xff34, Mask: 0xff})}, []testEvent{e.newV4, e.updV4, e.delV4, e.expNew, e.expDel}},
		{"mark not under mask", Selector{Mark: oneOf(MarkMatch{Mark: 0x1300, Mask: 0xff00})}, []testEvent{e.expNew, e.expDel}},
		{"mark negated", Selector{Mark: negated(oneOf(MarkMatch{Mark: 0x1234}, MarkMatch{Mark: 5}))}, []testEvent{e.newV6, e.newLocal, e.newLocal6, e.newPing, e.expNew, e.expDel}},

		// Zone: absent is 0.
		{"zone", Selector{Zone: oneOf[uint16](3)}, []testEvent{e.newV4, e.updV4, e.delV4, e.expNew, e.expDel}},
		{"zone 0", Selector{Zone: oneOf[uint16](0)}, []testEvent{e.newV6, e.newLocal, e.newLocal6, e.newPing, e.expNew, e.expDel}},

		// Status: a zero mask means the bits of Status.
		{"status assured", Selector{Status: oneOf(StatusMatch{Status: StatusAssured})}, []testEvent{e.newV4, e.updV4, e.delV4, e.expNew, e.expDel}},
		{"status not assured", Selector{Status: oneOf(StatusMatch{Mask: StatusAssured})}, []testEvent{e.newV6, e.newLocal, e.newLocal6, e.newPing, e.expNew, e.expDel}},
		{"status negated", Selector{Status: negated(oneOf(StatusMatch{Status: StatusAssured}))}, []testEvent{e.newV6, e.newLocal, e.newLocal6, e.newPing, e.expNew, e.expDel}},
		{"status both bits", Selector{Status: oneOf(StatusMatch{Status: StatusAssured | StatusSeenReply})}, []testEvent{e.expNew, e.expDel}},
		{"status either bit", Selector{Status: oneOf(StatusMatch{Status: StatusAssured}, StatusMatch{Status: StatusSeenReply})}, []testEvent{e.newV4, e.updV4, e.delV4, e.newV6, e.expNew, e.expDel}},
		{"zero status match", Selector{Status: oneOf(StatusMatch{})}, e.all},

		// Fields combine with AND.
		{"and", Selector{Types: oneOf(EventNew, EventDestroy), Proto: oneOf[uint8](unix.IPPROTO_TCP), OrigSrc: negated(prefixes("127.0.0.0/8", "::1/128")), OrigDstPort: oneOf[uint16](80, 443)},
			[]testEvent{e.newV4, e.delV4, e.newV6}},
		{"and exp", Selector{Types: oneOf(EventExpNew, EventNew), Family: unix.AF_INET, Mark: oneOf(MarkMatch{Mark: 1})}, []testEvent{e.expNew}},
	})
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
