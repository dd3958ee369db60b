package ctnetlink

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

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
