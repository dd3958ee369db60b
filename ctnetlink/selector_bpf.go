package ctnetlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/bpfasm"
)

// The lowering of a Selector to the classic BPF program that Listen
// attaches to its socket. internal/bpfasm assembles it.

// validate checks the values the kernel program cannot express.
func (f *Selector) validate() error {
	for _, t := range f.Types.Values {
		if t < EventNew || t > EventExpDestroy {
			return fmt.Errorf("types: unknown event type %d", uint8(t))
		}
	}
	if f.Family != 0 && f.Family != unix.AF_INET && f.Family != unix.AF_INET6 {
		return fmt.Errorf("family: %d is neither AF_INET nor AF_INET6", f.Family)
	}
	for _, a := range []struct {
		name string
		c    *OneOf[netip.Prefix]
	}{{"orig-src", &f.OrigSrc}, {"orig-dst", &f.OrigDst}, {"reply-src", &f.ReplySrc}, {"reply-dst", &f.ReplyDst}} {
		for _, p := range a.c.Values {
			if !p.IsValid() {
				return fmt.Errorf("%s: invalid prefix %v", a.name, p)
			}
		}
	}
	return nil
}

// maxProgramLen is BPF_MAXINSNS (include/uapi/linux/bpf_common.h), the most
// instructions the kernel takes in a classic BPF program.
const maxProgramLen = 4096

var errProgramTooLong = errors.New("program too long")

// Program returns the classic BPF program that Listen attaches to the
// socket for the selector. The program returns 0 to drop a message and
// 0xffffffff to keep it. It fails for an invalid filter (an unknown event
// type or family, an invalid prefix), and when the program would exceed
// the kernel's limit of 4096 instructions (BPF_MAXINSNS). The error is an
// *Error with Op "event-filter".
//
// A nil or empty selector compiles to a program that keeps every message.
//
// The program decides Types, Family, Proto, the four address fields,
// OrigSrcPort, OrigDstPort, Mark, Status and Zone for every flow and
// expectation event the kernel sends. It keeps, undecided, what it cannot
// judge: messages that are neither flow nor expectation events, flow
// events whose original tuple, reply tuple, addresses or protocol it
// cannot find, and the conditions it does not evaluate (reply ports, ICMP
// fields, the zones of one direction, labels, states, helper, Func), which
// Listener.Events leaves to MatchEvent. It grows with the lists: 2 or 3
// instructions per IPv4 prefix and per 32 bits of an IPv6 prefix, 1 to 3
// per other value, one more for a jump further than 255 instructions, and
// up to 200 for the rest; the kernel takes at most 4096 (BPF_MAXINSNS).
func (f *Selector) Program() ([]bpf.Instruction, error) {
	p, err := f.program()
	if err != nil {
		return nil, &Error{Op: "event-filter", Err: err}
	}
	return p, nil
}

func (f *Selector) program() ([]bpf.Instruction, error) {
	if f.empty() {
		return []bpf.Instruction{bpf.RetConstant{Val: keepMsg}}, nil
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	if !bpfLoadable(schema) {
		return []bpf.Instruction{bpf.RetConstant{Val: keepMsg}}, nil
	}
	var c filterCompiler
	c.compile(f)
	p, err := c.b.Assemble(nil)
	if err != nil {
		return nil, err
	}
	if len(p) > maxProgramLen {
		return nil, fmt.Errorf("%w: %d instructions, the kernel takes at most %d (BPF_MAXINSNS)",
			errProgramTooLong, len(p), maxProgramLen)
	}
	return p, nil
}

// Verdicts of the program.
const (
	dropMsg = 0
	keepMsg = 0xffffffff
)

// Offsets in a message: the nlmsghdr, then the nfgenmsg, then the
// attributes (include/uapi/linux/netlink.h, linux/netfilter/nfnetlink.h).
const (
	msgTypeOff  = 4  // nlmsg_type, host byte order
	msgFlagsOff = 6  // nlmsg_flags, host byte order
	msgAttrsOff = 20 // NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg))
	nlaHdrLen   = 4
)

// hostByteOff returns the offset of the high or low byte of the host-order
// u16 at off: BPF loads bytes, and loads words in network order.
func hostByteOff(off uint32, high bool) uint32 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	little := b[0] == 1
	if high == little {
		return off + 1
	}
	return off
}

// Scratch memory slots of the program.
const (
	slotOrig      = iota // offset of tuple-orig
	slotOrigIP           // offset of tuple-orig.tuple-ip
	slotOrigProto        // offset of tuple-orig.tuple-proto
	slotReplyIP          // offset of tuple-reply.tuple-ip
	slotFamily           // unix.AF_INET or unix.AF_INET6
)

// filterCompiler turns a Selector into a program.
//
// The program first sorts the message by subsystem, message type and
// flags, which settles Types, and then tests the flow conditions one after
// the other: a condition that fails jumps to drop, one that passes falls
// through to the next, and the last one falls through to keep. Attributes
// are found with the kernel's netlink helpers: ld #nla (SKF_AD_NLATTR)
// finds an attribute by type among those from offset A to the end of the
// message, ld #nlan (SKF_AD_NLATTR_NEST) among those nested in the
// attribute at offset A; both take the type in X and return the offset of
// the attribute's header, or 0. Offsets the conditions share are kept in
// scratch memory. Whatever the program cannot find, it keeps: Match
// decides.
//
// The compiler only lowers the filter to instructions and jumps to
// labels; internal/bpfasm resolves the labels. The size and byte order of
// every value it loads (mark, status, zone, protocol, ports, addresses)
// come from the generated schema table (selector_bpf_schema.go); a value
// that classic BPF cannot compare as loaded leaves the whole filter to
// MatchEvent.
type filterCompiler struct {
	b             bpfasm.Program
	keep, drop    bpfasm.Label
	needFamily    bool
	needOrigIP    bool
	needOrigProto bool
	needReplyIP   bool
}

func (c *filterCompiler) compile(f *Selector) {
	b := &c.b
	c.keep, c.drop = b.NewLabel("keep"), b.NewLabel("drop")
	flow, conds := b.NewLabel("flow"), b.NewLabel("conds")
	typeTo := func(t EventType, pass bpfasm.Label) bpfasm.Label {
		if f.Types.test(func(v EventType) bool { return v == t }) {
			return pass
		}
		return c.drop
	}
	subsys := hostByteOff(msgTypeOff, true)
	msg := hostByteOff(msgTypeOff, false)

	b.Emit(bpf.LoadAbsolute{Off: subsys, Size: 1})
	b.JumpIf(bpf.JumpEqual, uint32(MsgNew>>8), flow, bpfasm.Next)
	b.JumpIf(bpf.JumpEqual, uint32(MsgExpNew>>8), bpfasm.Next, c.keep)
	b.Emit(bpf.LoadAbsolute{Off: msg, Size: 1})
	b.JumpIf(bpf.JumpEqual, uint32(MsgExpNew&0xff), typeTo(EventExpNew, c.keep), bpfasm.Next)
	b.JumpIf(bpf.JumpEqual, uint32(MsgExpDelete&0xff), typeTo(EventExpDestroy, c.keep), c.keep)

	b.Define(flow)
	b.Emit(bpf.LoadAbsolute{Off: msg, Size: 1})
	b.JumpIf(bpf.JumpEqual, uint32(MsgDelete&0xff), typeTo(EventDestroy, conds), bpfasm.Next)
	b.JumpIf(bpf.JumpEqual, uint32(MsgNew&0xff), bpfasm.Next, c.keep)
	b.Emit(bpf.LoadAbsolute{Off: hostByteOff(msgFlagsOff, true), Size: 1})
	b.JumpIf(bpf.JumpBitsSet, unix.NLM_F_CREATE>>8, typeTo(EventNew, conds), typeTo(EventUpdate, conds))

	b.Define(conds)
	c.flowConditions(f)
	b.Define(c.keep)
	b.Emit(bpf.RetConstant{Val: keepMsg})
	b.Define(c.drop)
	b.Emit(bpf.RetConstant{Val: dropMsg})
}

func (c *filterCompiler) flowConditions(f *Selector) {
	addrs := len(f.OrigSrc.Values) > 0 || len(f.OrigDst.Values) > 0 || len(f.ReplySrc.Values) > 0 || len(f.ReplyDst.Values) > 0
	c.needFamily = f.Family != 0 || addrs
	c.needOrigIP = c.needFamily
	c.needOrigProto = len(f.Proto.Values) > 0 || len(f.OrigSrcPort.Values) > 0 || len(f.OrigDstPort.Values) > 0
	c.needReplyIP = len(f.ReplySrc.Values) > 0 || len(f.ReplyDst.Values) > 0

	// Conditions on single top-level attributes come first: they are the
	// cheapest.
	c.topConditions(f)
	c.tupleOffsets(f)
	c.portConditions(f)
	c.addrConditions(f)
}

// topConditions compiles the conditions on top-level attributes: mark,
// status and zone.
func (c *filterCompiler) topConditions(f *Selector) {
	b := &c.b
	c.field(f.Mark.Negate, len(f.Mark.Values) > 0, func(match bpfasm.Label) {
		masks := make([]uint32, len(f.Mark.Values))
		for i, m := range f.Mark.Values {
			masks[i] = m.mask()
		}
		c.loadTop(bpfMark)
		c.maskedEqual(masks, func(i int) uint32 { return f.Mark.Values[i].Mark & masks[i] }, match)
	})
	c.field(f.Status.Negate, len(f.Status.Values) > 0, func(match bpfasm.Label) {
		masks := make([]uint32, len(f.Status.Values))
		for i, s := range f.Status.Values {
			masks[i] = uint32(s.mask())
		}
		c.loadTop(bpfStatus)
		c.maskedEqual(masks, func(i int) uint32 { return uint32(f.Status.Values[i].Status) & masks[i] }, match)
	})
	c.field(f.Zone.Negate, len(f.Zone.Values) > 0, func(match bpfasm.Label) {
		c.loadZone()
		for _, z := range f.Zone.Values {
			b.JumpIf(bpf.JumpEqual, uint32(z), match, bpfasm.Next)
		}
	})
}

// tupleOffsets finds the nested attributes the tuple conditions read and
// keeps their offsets, and the family, in scratch memory; it compiles
// Family.
func (c *filterCompiler) tupleOffsets(f *Selector) {
	b := &c.b
	if c.needOrigIP || c.needOrigProto {
		b.Emit(bpf.LoadConstant{Dst: bpf.RegA, Val: msgAttrsOff})
		c.find(false, uint32(FlowAttrTupleOrig), c.keep)
		b.Emit(bpf.StoreScratch{Src: bpf.RegA, N: slotOrig})
		if c.needOrigIP {
			c.find(true, uint32(TupleAttrIP), c.keep)
			b.Emit(bpf.StoreScratch{Src: bpf.RegA, N: slotOrigIP})
		}
		if c.needOrigProto {
			b.Emit(bpf.LoadScratch{Dst: bpf.RegA, N: slotOrig})
			c.find(true, uint32(TupleAttrProto), c.keep)
			b.Emit(bpf.StoreScratch{Src: bpf.RegA, N: slotOrigProto})
		}
	}
	if c.needReplyIP {
		b.Emit(bpf.LoadConstant{Dst: bpf.RegA, Val: msgAttrsOff})
		c.find(false, uint32(FlowAttrTupleReply), c.keep)
		c.find(true, uint32(TupleAttrIP), c.keep)
		b.Emit(bpf.StoreScratch{Src: bpf.RegA, N: slotReplyIP})
	}
	if c.needFamily {
		c.family()
	}
	if f.Family != 0 {
		b.Emit(bpf.LoadScratch{Dst: bpf.RegA, N: slotFamily})
		b.JumpIf(bpf.JumpEqual, uint32(f.Family), bpfasm.Next, c.drop)
	}
}

// portConditions compiles the conditions on the original tuple's
// protocol and ports.
func (c *filterCompiler) portConditions(f *Selector) {
	b := &c.b
	c.field(f.Proto.Negate, len(f.Proto.Values) > 0, func(match bpfasm.Label) {
		b.Emit(bpf.LoadScratch{Dst: bpf.RegA, N: slotOrigProto})
		c.find(true, uint32(bpfProtoNum.attr), c.keep)
		b.Emit(bpf.TAX{})
		b.Emit(bpf.LoadIndirect{Off: nlaHdrLen, Size: bpfProtoNum.loadSize()})
		for _, p := range f.Proto.Values {
			b.JumpIf(bpf.JumpEqual, uint32(p), match, bpfasm.Next)
		}
	})
	for _, pf := range []struct {
		c    *OneOf[uint16]
		port bpfValue
	}{{&f.OrigSrcPort, bpfSrcPort}, {&f.OrigDstPort, bpfDstPort}} {
		c.field(pf.c.Negate, len(pf.c.Values) > 0, func(match bpfasm.Label) {
			nomatch := b.NewLabel("no-port")
			b.Emit(bpf.LoadScratch{Dst: bpf.RegA, N: slotOrigProto})
			c.find(true, uint32(pf.port.attr), nomatch) // no ports: no match
			b.Emit(bpf.TAX{})
			b.Emit(bpf.LoadIndirect{Off: nlaHdrLen, Size: pf.port.loadSize()})
			for _, p := range pf.c.Values {
				b.JumpIf(bpf.JumpEqual, uint32(p), match, bpfasm.Next)
			}
			b.Define(nomatch)
		})
	}
}

// addrConditions compiles the address conditions of both tuples.
func (c *filterCompiler) addrConditions(f *Selector) {
	for _, af := range []struct {
		c      *OneOf[netip.Prefix]
		slot   uint32
		v4, v6 TupleIPAttr
	}{
		{&f.OrigSrc, slotOrigIP, TupleIPAttrV4Src, TupleIPAttrV6Src},
		{&f.OrigDst, slotOrigIP, TupleIPAttrV4Dst, TupleIPAttrV6Dst},
		{&f.ReplySrc, slotReplyIP, TupleIPAttrV4Src, TupleIPAttrV6Src},
		{&f.ReplyDst, slotReplyIP, TupleIPAttrV4Dst, TupleIPAttrV6Dst},
	} {
		c.addrField(af.c, af.slot, af.v4, af.v6)
	}
}

// field compiles one condition. body jumps to match when the event's value
// is in the list and falls through when it is not.
func (c *filterCompiler) field(negate, set bool, body func(match bpfasm.Label)) {
	if !set {
		return
	}
	b := &c.b
	pass := b.NewLabel("pass")
	if negate {
		body(c.drop)
		b.Define(pass)
		return
	}
	body(pass)
	b.Jump(c.drop)
	b.Define(pass)
}

// family stores the address family of tuple-orig's addresses in
// slotFamily, as Flow.Family finds it, and keeps a message whose
// tuple-orig has no address.
func (c *filterCompiler) family() {
	b := &c.b
	v4, v6, store := b.NewLabel("v4"), b.NewLabel("v6"), b.NewLabel("store-family")
	for _, a := range []struct {
		attr TupleIPAttr
		to   bpfasm.Label
	}{{TupleIPAttrV4Src, v4}, {TupleIPAttrV4Dst, v4}, {TupleIPAttrV6Src, v6}, {TupleIPAttrV6Dst, v6}} {
		b.Emit(bpf.LoadScratch{Dst: bpf.RegA, N: slotOrigIP})
		b.Emit(bpf.LoadConstant{Dst: bpf.RegX, Val: uint32(a.attr)}, bpf.LoadExtension{Num: bpf.ExtNetlinkAttrNested})
		b.JumpIf(bpf.JumpEqual, 0, bpfasm.Next, a.to)
	}
	b.Jump(c.keep)
	b.Define(v4)
	b.Emit(bpf.LoadConstant{Dst: bpf.RegA, Val: unix.AF_INET})
	b.Jump(store)
	b.Define(v6)
	b.Emit(bpf.LoadConstant{Dst: bpf.RegA, Val: unix.AF_INET6})
	b.Define(store)
	b.Emit(bpf.StoreScratch{Src: bpf.RegA, N: slotFamily})
}
