package ctnetlink

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/bpfasm"
)

// The instructions the BPF lowering of a Selector emits for one condition:
// finding and loading attributes, and comparing values and prefixes.

// find looks up the attribute of type typ: among the attributes from
// offset A on, or, if nested, among those nested in the attribute at
// offset A. It leaves the attribute's offset in A, and jumps to missing if
// there is none.
func (c *filterCompiler) find(nested bool, typ uint32, missing bpfasm.Label) {
	ext := bpf.ExtNetlinkAttr
	if nested {
		ext = bpf.ExtNetlinkAttrNested
	}
	c.b.Emit(bpf.LoadConstant{Dst: bpf.RegX, Val: typ}, bpf.LoadExtension{Num: ext})
	c.b.JumpIf(bpf.JumpEqual, 0, missing, bpfasm.Next)
}

// loadTop loads the value of the top-level attribute v into A, or 0 if
// the message has no such attribute.
func (c *filterCompiler) loadTop(v bpfValue) {
	b := &c.b
	have := b.NewLabel("have")
	b.Emit(bpf.LoadConstant{Dst: bpf.RegA, Val: msgAttrsOff})
	c.find(false, uint32(v.attr), have) // A is 0
	b.Emit(bpf.TAX{}, bpf.LoadIndirect{Off: nlaHdrLen, Size: v.loadSize()})
	b.Define(have)
}

// maskedEqual jumps to match if A ANDed with masks[i] equals want(i) for
// some i.
func (c *filterCompiler) maskedEqual(masks []uint32, want func(int) uint32, match bpfasm.Label) {
	b := &c.b
	b.Emit(bpf.TAX{})
	dirty := false
	for i, m := range masks {
		if dirty {
			b.Emit(bpf.TXA{})
		}
		dirty = m != ^uint32(0)
		if dirty {
			b.Emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: m})
		}
		b.JumpIf(bpf.JumpEqual, want(i), match, bpfasm.Next)
	}
}

// loadZone loads the flow's zone id into A, as Flow.ZoneID reads it:
// CTA_ZONE, else the CTA_TUPLE_ZONE of tuple-orig, else that of
// tuple-reply, else 0.
func (c *filterCompiler) loadZone() {
	b := &c.b
	have, none, tuples := b.NewLabel("zone"), b.NewLabel("no-zone"), b.NewLabel("tuple-zone")
	b.Emit(bpf.LoadConstant{Dst: bpf.RegA, Val: msgAttrsOff})
	c.find(false, uint32(bpfZone.attr), tuples)
	b.Jump(have)
	b.Define(tuples)
	for _, t := range []FlowAttr{FlowAttrTupleOrig, FlowAttrTupleReply} {
		next := b.NewLabel("next-tuple")
		b.Emit(bpf.LoadConstant{Dst: bpf.RegA, Val: msgAttrsOff})
		c.find(false, uint32(t), next)
		c.find(true, uint32(bpfTupleZone.attr), next)
		b.Jump(have)
		b.Define(next)
	}
	b.Jump(none)
	b.Define(have)
	b.Emit(bpf.TAX{}, bpf.LoadIndirect{Off: nlaHdrLen, Size: bpfZone.loadSize()}) // bpfTupleZone's too
	b.Define(none)
}

// addrField compiles an address condition: the prefixes of the event's
// family decide, and a family without prefixes is in none.
func (c *filterCompiler) addrField(cond *OneOf[netip.Prefix], slot uint32, v4Attr, v6Attr TupleIPAttr) {
	if len(cond.Values) == 0 {
		return
	}
	b := &c.b
	var p4, p6 []netip.Prefix
	for _, p := range cond.Values {
		if p.Addr().Is4() {
			p4 = append(p4, p.Masked())
		} else {
			p6 = append(p6, p.Masked())
		}
	}
	pass := b.NewLabel("addr-pass")
	match, nomatch := pass, c.drop
	if cond.Negate {
		match, nomatch = c.drop, pass
	}
	// An address is in no prefix of the other family.
	v4, v6 := nomatch, nomatch
	if len(p4) > 0 {
		v4 = b.NewLabel("addr-v4")
	}
	if len(p6) > 0 {
		v6 = b.NewLabel("addr-v6")
	}
	b.Emit(bpf.LoadScratch{Dst: bpf.RegA, N: slotFamily})
	b.JumpIf(bpf.JumpEqual, unix.AF_INET, v4, v6)
	if len(p6) > 0 {
		b.Define(v6)
		c.v6Prefixes(p6, slot, v6Attr, match)
		b.Jump(nomatch)
	}
	if len(p4) > 0 {
		b.Define(v4)
		c.v4Prefixes(p4, slot, v4Attr, match)
		b.Jump(nomatch)
	}
	b.Define(pass)
}

// v6Prefixes loads the IPv6 address attr of the tuple-ip at scratch slot
// and jumps to match if one of the masked prefixes ps contains it; else it
// falls through. A message without the address is kept. Each 32-bit word
// of a prefix costs 2 or 3 instructions; the words are compared as classic
// BPF loads them, in network byte order, like the attribute's big-endian
// bytes.
func (c *filterCompiler) v6Prefixes(ps []netip.Prefix, slot uint32, attr TupleIPAttr, match bpfasm.Label) {
	b := &c.b
	b.Emit(bpf.LoadScratch{Dst: bpf.RegA, N: int(slot)})
	c.find(true, uint32(attr), c.keep)
	b.Emit(bpf.TAX{})
	for _, p := range ps {
		if p.Bits() == 0 {
			b.Jump(match)
			return
		}
		a := p.Addr().As16()
		words := (p.Bits() + 31) / 32
		nextPrefix := b.NewLabel("next-prefix")
		for w := 0; w < words; w++ {
			m := prefixMask(p.Bits() - 32*w)
			b.Emit(bpf.LoadIndirect{Off: uint32(nlaHdrLen + 4*w), Size: 4})
			if m != ^uint32(0) {
				b.Emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: m})
			}
			to := bpfasm.Next
			if w == words-1 {
				to = match
			}
			b.JumpIf(bpf.JumpEqual, binary.BigEndian.Uint32(a[4*w:]), to, nextPrefix)
		}
		b.Define(nextPrefix)
	}
}

// v4Prefixes is v6Prefixes for IPv4: one word per prefix.
func (c *filterCompiler) v4Prefixes(ps []netip.Prefix, slot uint32, attr TupleIPAttr, match bpfasm.Label) {
	b := &c.b
	b.Emit(bpf.LoadScratch{Dst: bpf.RegA, N: int(slot)})
	c.find(true, uint32(attr), c.keep)
	b.Emit(bpf.TAX{})
	for _, p := range ps {
		if p.Bits() == 0 {
			b.Jump(match)
			return
		}
		a := p.Addr().As4()
		b.Emit(bpf.LoadIndirect{Off: nlaHdrLen, Size: 4})
		if m := prefixMask(p.Bits()); m != ^uint32(0) {
			b.Emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: m})
		}
		b.JumpIf(bpf.JumpEqual, binary.BigEndian.Uint32(a[:]), match, bpfasm.Next)
	}
}

// prefixMask returns the mask of the first bits bits of a 32-bit word,
// for bits of 0 and less (no bit) up to 32 and more (every bit).
func prefixMask(bits int) uint32 {
	switch {
	case bits <= 0:
		return 0
	case bits >= 32:
		return ^uint32(0)
	}
	return ^uint32(0) << (32 - bits)
}
