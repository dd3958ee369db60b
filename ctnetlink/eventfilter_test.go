package ctnetlink

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

var eventFilterSeed = flag.Int64("event-filter-seed", 0, "seed of the randomised event filter tests; 0 picks one")

// filterRand returns the random source of a randomised test and logs its
// seed.
func filterRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := *eventFilterSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d: rerun with -event-filter-seed=%d", seed, seed)
	return rand.New(rand.NewSource(seed))
}

// runFilter runs a classic BPF program on a netlink message as the
// kernel's socket filter does (net/core/filter.c), with the netlink
// attribute helpers ld #nla and ld #nlan. Only the instructions the
// compiler emits are known; any other fails the test.
func runFilter(t *testing.T, prog []bpf.RawInstruction, pkt []byte) uint32 {
	t.Helper()
	const adOff = 0xfffff000 // SKF_AD_OFF
	var a, x uint32
	var mem [16]uint32
	load := func(off uint32, size int) (uint32, bool) {
		if uint64(off)+uint64(size) > uint64(len(pkt)) {
			return 0, false
		}
		switch size {
		case 1:
			return uint32(pkt[off]), true
		case 2:
			return uint32(binary.BigEndian.Uint16(pkt[off:])), true
		}
		return binary.BigEndian.Uint32(pkt[off:]), true
	}
	sizes := map[uint16]int{unix.BPF_W: 4, unix.BPF_H: 2, unix.BPF_B: 1}
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch op := in.Op; {
		case op&0x07 == unix.BPF_LD && op&0xe0 == unix.BPF_ABS && in.K >= adOff:
			switch in.K - adOff {
			case 12: // SKF_AD_NLATTR
				a = nlaFind(pkt, a, x, false)
			case 16: // SKF_AD_NLATTR_NEST
				a = nlaFind(pkt, a, x, true)
			default:
				t.Fatalf("instruction %d: unknown ancillary load %#x", pc, in.K)
			}
		case op&0x07 == unix.BPF_LD && op&0xe0 == unix.BPF_ABS:
			v, ok := load(in.K, sizes[op&0x18])
			if !ok {
				return 0
			}
			a = v
		case op&0x07 == unix.BPF_LD && op&0xe0 == unix.BPF_IND:
			v, ok := load(x+in.K, sizes[op&0x18])
			if !ok {
				return 0
			}
			a = v
		case op == unix.BPF_LD|unix.BPF_IMM:
			a = in.K
		case op == unix.BPF_LDX|unix.BPF_IMM:
			x = in.K
		case op == unix.BPF_LD|unix.BPF_MEM:
			a = mem[in.K]
		case op == unix.BPF_ST:
			mem[in.K] = a
		case op == unix.BPF_ALU|unix.BPF_AND|unix.BPF_K:
			a &= in.K
		case op == unix.BPF_JMP|unix.BPF_JA:
			pc += int(in.K)
		case op == unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, op == unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K:
			ok := a == in.K
			if op&0xf0 == unix.BPF_JSET {
				ok = a&in.K != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case op == unix.BPF_RET|unix.BPF_K:
			return in.K
		case op == unix.BPF_MISC|unix.BPF_TAX:
			x = a
		case op == unix.BPF_MISC|unix.BPF_TXA:
			a = x
		default:
			t.Fatalf("instruction %d: unknown opcode %#x", pc, op)
		}
	}
	t.Fatalf("program ran off its end")
	return 0
}

// nlaFind is the kernel's bpf_skb_get_nlattr (nested false) and
// bpf_skb_get_nlattr_nest (nested true): the offset of the first attribute
// of type typ among those at offset a, or nested in the attribute at
// offset a, or 0.
func nlaFind(pkt []byte, a, typ uint32, nested bool) uint32 {
	n := uint32(len(pkt))
	if n < 4 || a > n-4 {
		return 0
	}
	start, end := a, n
	if nested {
		l := uint32(binary.NativeEndian.Uint16(pkt[a:]))
		if l < 4 || l > n-a {
			return 0
		}
		start, end = a+4, a+l
	}
	for off := start; end-off >= 4; {
		l := uint32(binary.NativeEndian.Uint16(pkt[off:]))
		if l < 4 || l > end-off {
			return 0
		}
		if uint32(binary.NativeEndian.Uint16(pkt[off+2:])&0x3fff) == typ {
			return off
		}
		off += (l + 3) &^ 3
	}
	return 0
}

// eventMsg encodes an event of type typ for flow f, or for expectation e,
// as the kernel sends it.
func eventMsg(typ EventType, f *Flow, e *Expect) []byte {
	var mt MsgType
	var flags netlink.HeaderFlags
	switch typ {
	case EventNew:
		mt, flags = MsgNew, netlink.Create|netlink.Excl
	case EventUpdate:
		mt = MsgNew
	case EventDestroy:
		mt = MsgDelete
	case EventExpNew:
		mt, flags = MsgExpNew, netlink.Create|netlink.Excl
	case EventExpDestroy:
		mt = MsgExpDelete
	}
	if e != nil {
		return appendRequest(nil, mt, flags, 0, e.Tuple.Family(), e.AppendAttributes)
	}
	return appendRequest(nil, mt, flags, 0, flowFamily(f), f.AppendAttributes)
}

// decodeEvent decodes msg as Events does.
func decodeEvent(t *testing.T, msg []byte) *Event {
	t.Helper()
	l := &Listener{rest: msg}
	ev, err := l.next()
	if err != nil || ev == nil {
		t.Fatalf("decode: %v, %v", ev, err)
	}
	return ev
}

// checkProgram runs f's program on msg and compares its verdict with
// f.Match on the decoded event. The kernel program is exact for messages
// that have a tuple-orig with addresses and a protocol number, and keeps
// every other one.
func checkProgram(t *testing.T, f *Selector, prog []bpf.RawInstruction, msg []byte, want bool) {
	t.Helper()
	keep := runFilter(t, prog, msg)
	if keep != 0 && keep != keepMsg {
		t.Fatalf("program returned %#x", keep)
	}
	if (keep != 0) != want {
		insns, _ := f.Program()
		t.Fatalf("filter %+v: program keeps %v, Match says %v\nprogram:\n%s", f, keep != 0, want, programText(insns))
	}
}

func programText(insns []bpf.Instruction) string {
	var b strings.Builder
	for i, in := range insns {
		fmt.Fprintf(&b, "%4d  %v\n", i, in)
	}
	return b.String()
}

func assemble(t *testing.T, f *Selector) []bpf.RawInstruction {
	t.Helper()
	insns, err := f.Program()
	if err != nil {
		t.Fatalf("program of %+v: %v", f, err)
	}
	raw, err := bpf.Assemble(insns)
	if err != nil {
		t.Fatalf("assemble: %v", err)
	}
	return raw
}

func prefixes(s ...string) OneOf[netip.Prefix] {
	var c OneOf[netip.Prefix]
	for _, p := range s {
		c.Values = append(c.Values, netip.MustParsePrefix(p))
	}
	return c
}

func negated[T comparable](c OneOf[T]) OneOf[T] {
	c.Negate = true
	return c
}

func oneOf[T comparable](v ...T) OneOf[T] { return OneOf[T]{Values: v} }

// icmpFlow is an ICMP echo flow, which has no ports.
func icmpFlow(src, dst string) *Flow {
	var f Flow
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	proto, req, rep := uint8(unix.IPPROTO_ICMP), uint8(8), uint8(0)
	if s.Is6() {
		proto, req, rep = unix.IPPROTO_ICMPV6, 128, 129
	}
	f.SetTupleOrig(NewTuple(proto, netip.AddrPortFrom(s, 0), netip.AddrPortFrom(d, 0)))
	f.SetTupleReply(NewTuple(proto, netip.AddrPortFrom(d, 0), netip.AddrPortFrom(s, 0)))
	f.TupleOrig.SetICMP(req, 0, 7)
	f.TupleReply.SetICMP(rep, 0, 7)
	f.SetTimeout(30)
	return &f
}

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

// evKey identifies an event in a comparison of streams.
type evKey struct {
	Type EventType
	ID   uint32
	Orig string
}

func keyOf(ev *Event) evKey {
	return evKey{Type: ev.Type, ID: ev.Flow.ID, Orig: fmt.Sprintf("%d %s", ev.Flow.TupleOrig.Proto.Num, tupleString(&ev.Flow.TupleOrig))}
}

// queued returns the events queued on l: all events the kernel queued
// before the call, as the operations that cause them return only once
// their events are queued.
func queued(t *testing.T, l *Listener) []Event {
	t.Helper()
	var evs []Event
	readIdle(t, l, 100*time.Millisecond, 30*time.Second, func(ev *Event, err error) bool {
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		e := *ev
		if ev.Flow != nil {
			f := *ev.Flow
			e.Flow = &f
		}
		if ev.Expect != nil {
			x := *ev.Expect
			e.Expect = &x
		}
		evs = append(evs, e)
		return true
	})
	return evs
}

// checkComplete fails the test if l lost or discarded events: a
// comparison of streams is valid only without.
func checkComplete(t *testing.T, name string, l *Listener) {
	t.Helper()
	if n := l.Overruns(); n != 0 {
		t.Fatalf("%s: %d receive buffer overruns (buffer %d bytes): the comparison is void", name, n, l.ReadBuffer())
	}
	d, err := l.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	if d != 0 {
		t.Fatalf("%s: the kernel dropped %d events: the comparison is void", name, d)
	}
	if n := l.Discarded(); n != 0 {
		t.Errorf("%s: the kernel program let %d events through that Match rejects", name, n)
	}
}

// TestKernelEventFilterRandom listens with random filters next to an
// unfiltered listener, generates thousands of events, and checks that
// each filtered listener receives exactly the events of the unfiltered
// stream that Match selects, in the same order.
func TestKernelEventFilterRandom(t *testing.T) {
	ns, c := dialNS(t)
	reserveLabels(t, ns)
	ctx := ctx(t)
	r := filterRand(t)
	rounds, perRound, flows := 3, 10, 500
	if testing.Short() {
		rounds, flows = 1, 200
	}
	const readBuffer = 16 << 20
	var total, selective, none, every int
	for round := range rounds {
		table := randomTable(r, flows)
		for i := range table {
			if r.Intn(3) == 0 {
				table[i].SetStatus(StatusConfirmed | []Status{StatusAssured, StatusSeenReply, StatusAssured | StatusSeenReply}[r.Intn(3)])
			}
		}
		all := listenNS(t, ns, ListenConfig{ReadBuffer: readBuffer})
		filters := make([]*Selector, perRound)
		ls := make([]*Listener, perRound)
		for i := range filters {
			filters[i] = randomEventFilter(r, table)
			ls[i] = listenNS(t, ns, ListenConfig{ReadBuffer: readBuffer, Filter: filters[i]})
		}

		want := len(table)
		if res, err := c.CreateMany(ctx, table); err != nil || len(res.Errors) > 0 {
			t.Fatalf("create: %v, %d errors, first %v", err, len(res.Errors), res.Errors[:min(1, len(res.Errors))])
		}
		for range 2 {
			ups := randomUpdates(r, table)
			if res, err := c.UpdateMany(ctx, ups); err != nil || len(res.Errors) > 0 {
				t.Fatalf("update: %v, %d errors, first %v", err, len(res.Errors), res.Errors[:min(1, len(res.Errors))])
			}
			want += len(ups)
		}
		r.Shuffle(len(table), func(i, j int) { table[i], table[j] = table[j], table[i] })
		if res, err := c.DeleteMany(ctx, table); err != nil || len(res.Errors) > 0 || res.NotFound > 0 {
			t.Fatalf("delete: %v, %+v", err, res)
		}
		want += len(table)

		stream := queued(t, all)
		checkComplete(t, "unfiltered", all)
		if len(stream) != want {
			t.Fatalf("round %d: the unfiltered listener received %d events, want %d", round, len(stream), want)
		}
		total += len(stream)
		for i, f := range filters {
			var wantKeys, gotKeys []evKey
			for j := range stream {
				if f.MatchEvent(&stream[j]) {
					wantKeys = append(wantKeys, keyOf(&stream[j]))
				}
			}
			for _, ev := range queued(t, ls[i]) {
				gotKeys = append(gotKeys, keyOf(&ev))
			}
			checkComplete(t, fmt.Sprintf("filter %d", i), ls[i])
			if diff := cmp.Diff(wantKeys, gotKeys); diff != "" {
				insns, _ := f.Program()
				t.Fatalf("round %d, filter %+v: events (-Match on the unfiltered stream +filtered listener):\n%s\nprogram:\n%s",
					round, f, diff, programText(insns))
			}
			switch len(wantKeys) {
			case 0:
				none++
			case len(stream):
				every++
			default:
				selective++
			}
		}
		for _, l := range append(ls, all) {
			l.Close()
		}
	}
	t.Logf("%d events in %d rounds; of %d random filters %d selected some, %d none, %d every event",
		total, rounds, rounds*perRound, selective, none, every)
	if selective < rounds*perRound/4 {
		t.Errorf("only %d of %d filters selected a proper part of the events: the test proves little", selective, rounds*perRound)
	}
}

// filterCase runs ops in a fresh namespace with one listener per filter
// and returns the events each received, as (type, original source).
func filterCase(t *testing.T, filters []*Selector, ops func(ctx context.Context, c *Conn)) [][]string {
	t.Helper()
	ns, c := dialNS(t)
	ls := make([]*Listener, len(filters))
	for i, f := range filters {
		ls[i] = listenNS(t, ns, ListenConfig{Filter: f})
	}
	ops(ctx(t), c)
	out := make([][]string, len(filters))
	for i, l := range ls {
		for _, ev := range queued(t, l) {
			out[i] = append(out[i], fmt.Sprintf("%v %v", ev.Type, ev.Flow.TupleOrig.Src()))
		}
		checkComplete(t, fmt.Sprintf("listener %d", i), l)
	}
	return out
}

// lifecycle creates, updates (mark) and deletes each flow, one after the
// other.
func lifecycle(t *testing.T, flows ...*Flow) func(context.Context, *Conn) {
	return func(ctx context.Context, c *Conn) {
		for _, f := range flows {
			if err := c.Create(ctx, f); err != nil {
				t.Fatalf("create: %v", err)
			}
			u := lookupKey(f)
			u.SetMark(f.Mark + 1)
			if err := c.Update(ctx, &u); err != nil {
				t.Fatalf("update: %v", err)
			}
			if err := c.Delete(ctx, f); err != nil {
				t.Fatalf("delete: %v", err)
			}
		}
	}
}

func life(src string) []string {
	return []string{"new " + src, "update " + src, "destroy " + src}
}

// TestKernelEventFilterIPv6KeepsIPv4 is the regression test for a negated
// IPv6 address filter that hid every IPv4 event (florianl/go-conntrack#53):
// an IPv4 address is in no IPv6 prefix, so a negated IPv6 prefix keeps
// every IPv4 event and a plain one selects none.
func TestKernelEventFilterIPv6KeepsIPv4(t *testing.T) {
	filters := []*Selector{
		{OrigSrc: prefixes("2001:db8::1/128")},
		{OrigSrc: negated(prefixes("2001:db8::1/128"))},
		{OrigSrc: prefixes("2001:db8::/120"), Family: unix.AF_INET6},
	}
	got := filterCase(t, filters, lifecycle(t,
		testFlow("192.0.2.1", "192.0.2.2", 1000, 80),
		testFlow("2001:db8::1", "2001:db8::2", 1000, 80),
		testFlow("2001:db8:1::1", "2001:db8::2", 1000, 80),
	))
	want := [][]string{
		life("2001:db8::1"),
		append(life("192.0.2.1"), life("2001:db8:1::1")...),
		life("2001:db8::1"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events per filter (-want +got):\n%s", diff)
	}
}

// TestKernelEventFilterNegated is the regression test for negated filters
// that did not work (florianl/go-conntrack#46): drop loopback traffic.
func TestKernelEventFilterNegated(t *testing.T) {
	filters := []*Selector{
		{OrigSrc: negated(prefixes("127.0.0.0/8", "::1/128"))},
		{Types: negated(oneOf(EventUpdate)), OrigDstPort: negated(oneOf[uint16](22, 53))},
		{Proto: negated(oneOf[uint8](unix.IPPROTO_TCP))},
	}
	got := filterCase(t, filters, lifecycle(t,
		testFlow("127.0.0.1", "127.0.0.1", 1000, 22),
		testFlow("10.0.0.1", "10.0.0.2", 1000, 80),
		testFlow("::1", "::1", 1000, 53),
		testFlow("2001:db8::1", "2001:db8::2", 1000, 443),
		testFlow("127.0.0.2", "10.0.0.2", 1000, 443),
	))
	want := [][]string{
		append(life("10.0.0.1"), life("2001:db8::1")...),
		{"new 10.0.0.1", "destroy 10.0.0.1", "new 2001:db8::1", "destroy 2001:db8::1", "new 127.0.0.2", "destroy 127.0.0.2"},
		nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events per filter (-want +got):\n%s", diff)
	}
}

// TestKernelEventFilterMark is the regression test for a mark filter that
// did not work (florianl/go-conntrack#54), including flows without mark,
// which the kernel sends without CTA_MARK, and an update to mark 0, which
// it sends with one.
func TestKernelEventFilterMark(t *testing.T) {
	filters := []*Selector{
		{Mark: oneOf(MarkMatch{Mark: 0x100, Mask: 0xff00})},
		{Mark: oneOf(MarkMatch{Mark: 0x100, Mask: 0xff00}, MarkMatch{Mark: 7})},
		{Mark: negated(oneOf(MarkMatch{Mark: 0x100, Mask: 0xff00}))},
		{Mark: oneOf(MarkMatch{})},
	}
	flows := []*Flow{
		testFlow("10.0.0.1", "10.0.0.9", 1, 2), // mark 0x1ff, then 0
		testFlow("10.0.0.2", "10.0.0.9", 1, 2), // mark 0x2ff, then 0x100
		testFlow("10.0.0.3", "10.0.0.9", 1, 2), // no mark, then 7
		testFlow("10.0.0.4", "10.0.0.9", 1, 2), // mark 0x101, unchanged
	}
	flows[0].SetMark(0x1ff)
	flows[1].SetMark(0x2ff)
	flows[3].SetMark(0x101)
	updates := []uint32{0, 0x100, 7}
	got := filterCase(t, filters, func(ctx context.Context, c *Conn) {
		for _, f := range flows {
			if err := c.Create(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		for i, m := range updates {
			u := lookupKey(flows[i])
			u.SetMark(m)
			if err := c.Update(ctx, &u); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range flows {
			if err := c.Delete(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
	})
	want := [][]string{
		{"new 10.0.0.1", "new 10.0.0.4", "update 10.0.0.2", "destroy 10.0.0.2", "destroy 10.0.0.4"},
		{"new 10.0.0.1", "new 10.0.0.4", "update 10.0.0.2", "update 10.0.0.3", "destroy 10.0.0.2", "destroy 10.0.0.3", "destroy 10.0.0.4"},
		{"new 10.0.0.2", "new 10.0.0.3", "update 10.0.0.1", "update 10.0.0.3", "destroy 10.0.0.1", "destroy 10.0.0.3"},
		{"new 10.0.0.3", "update 10.0.0.1", "destroy 10.0.0.1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events per filter (-want +got):\n%s", diff)
	}
}

// TestKernelEventFilterExpect checks Types on expectation events, which
// the flow conditions do not touch.
func TestKernelEventFilterExpect(t *testing.T) {
	ns, c := dialNS(t)
	groups := []Group{GroupNew, GroupUpdate, GroupDestroy, GroupExpNew, GroupExpDestroy}
	filters := []*Selector{
		{Types: oneOf(EventExpNew), OrigSrc: prefixes("10.0.0.0/8"), Mark: oneOf(MarkMatch{Mark: 9})},
		{Types: negated(oneOf(EventExpNew, EventExpDestroy))},
		{OrigSrc: negated(prefixes("192.0.2.0/24"))},
	}
	all := listenNS(t, ns, ListenConfig{Groups: groups})
	ls := make([]*Listener, len(filters))
	for i, f := range filters {
		ls[i] = listenNS(t, ns, ListenConfig{Groups: groups, Filter: f})
	}
	ctx := ctx(t)
	master := createMaster(t, c, "192.0.2.1", "192.0.2.2", 40000, 21, "ftp")
	e := dataExpect(master, 50000)
	e.SetHelpName("ftp")
	e.SetTimeout(100)
	if err := c.CreateExpect(ctx, e); err != nil {
		t.Fatalf("create-expect: %v", err)
	}
	if err := c.DeleteExpect(ctx, e); err != nil {
		t.Fatalf("delete-expect: %v", err)
	}
	if err := c.Delete(ctx, master); err != nil {
		t.Fatalf("delete: %v", err)
	}
	stream := queued(t, all)
	var types []EventType
	for _, ev := range stream {
		types = append(types, ev.Type)
	}
	if !slices.Contains(types, EventExpNew) || !slices.Contains(types, EventExpDestroy) || !slices.Contains(types, EventNew) {
		t.Fatalf("unfiltered events %v lack a kind this test needs", types)
	}
	pick := []func(EventType) bool{
		func(typ EventType) bool { return typ == EventExpNew },
		func(typ EventType) bool { return typ != EventExpNew && typ != EventExpDestroy },
		func(typ EventType) bool { return typ == EventExpNew || typ == EventExpDestroy },
	}
	for i, l := range ls {
		var want, got []EventType
		for _, typ := range types {
			if pick[i](typ) {
				want = append(want, typ)
			}
		}
		for _, ev := range queued(t, l) {
			got = append(got, ev.Type)
		}
		checkComplete(t, fmt.Sprintf("filter %d", i), l)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("filter %+v: event types (-want +got):\n%s", filters[i], diff)
		}
	}
}

// TestKernelEventFilterLongProgram attaches programs near the kernel's
// limit, with many long jumps.
func TestKernelEventFilterLongProgram(t *testing.T) {
	host := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}) }
	var many []netip.Prefix
	for i := range 1200 {
		many = append(many, netip.PrefixFrom(host(i), 32))
	}
	filters := []*Selector{
		{OrigSrc: OneOf[netip.Prefix]{Values: many}},
		{OrigSrc: OneOf[netip.Prefix]{Values: many, Negate: true}},
	}
	for _, f := range filters {
		insns, err := f.Program()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("program of %d instructions", len(insns))
	}
	var flows []*Flow
	var in, out []string
	for i := 0; i < 1300; i += 37 {
		flows = append(flows, testFlow(host(i).String(), "192.0.2.1", 1, 2))
		if i < 1200 {
			in = append(in, life(host(i).String())...)
		} else {
			out = append(out, life(host(i).String())...)
		}
	}
	got := filterCase(t, filters, lifecycle(t, flows...))
	if diff := cmp.Diff([][]string{in, out}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// ExampleSelector_listen listens for the TCP and UDP flows that start or
// end in the caller's namespace, except those of loopback addresses, and
// prints them. The kernel runs the selector on the socket.
func ExampleSelector_listen() {
	l, err := Listen(&ListenConfig{
		Groups: []Group{GroupNew, GroupDestroy},
		Filter: &Selector{
			Proto:   AnyOf[uint8](unix.IPPROTO_TCP, unix.IPPROTO_UDP),
			OrigSrc: NoneOf(netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	for ev, err := range l.Events(context.Background()) {
		if err != nil {
			log.Print(err)
			continue
		}
		fmt.Fprintf(os.Stdout, "%v %v\n", ev.Type, tupleString(&ev.Flow.TupleOrig))
	}
}
