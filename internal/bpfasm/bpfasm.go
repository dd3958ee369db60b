// Package bpfasm assembles classic BPF programs whose jumps name symbolic
// labels instead of instruction counts, in the manner of cilium/ebpf's asm
// package for eBPF.
//
// A Program collects instructions (golang.org/x/net/bpf values), jumps
// that name labels, and the places of the labels. Assemble resolves every
// label into the skip counts classic BPF encodes:
//
//   - A label is defined once, at an instruction: a label defined twice,
//     and a jump to a label that is never defined or defined after the
//     last instruction, are errors.
//   - Classic BPF jumps only forward: a jump to an earlier instruction is
//     an error.
//   - A conditional jump encodes each target in 8 bits, so it reaches at
//     most 255 instructions past the next one. By default Assemble gives a
//     jump that reaches further a trampoline: the conditional jump skips to
//     an unconditional jump right after it, whose offset has 32 bits.
//     Options.NoLongJumps refuses such a jump instead.
//
// The kernel's own limits (4096 instructions, BPF_MAXINSNS) are the
// caller's to check on the result.
package bpfasm

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
)

// Label names an instruction of a Program. It is a plain string, safe to
// copy and share.
type Label string

// Next is the instruction right after a jump. A conditional jump with Next
// as a target falls through on that outcome; an unconditional jump to Next
// assembles to a jump of 0.
const Next Label = ""

// maxShortSkip is the furthest a conditional jump reaches by itself: its
// skip counts have 8 bits.
const maxShortSkip = 255

var (
	errUndefinedLabel = errors.New("undefined label")
	errDuplicateLabel = errors.New("duplicate label")
	errBackwardJump   = errors.New("backward jump")
	errOutOfRange     = errors.New("jump out of range")
)

// Program is a classic BPF program under construction. The zero Program is
// empty and ready to use. A Program is not safe for concurrent use.
type Program struct {
	ins    []item
	labels map[Label]int // index in ins of each defined label
	fresh  int           // labels handed out by NewLabel
	err    error         // the first error of Define
}

// item is one instruction, or a jump whose targets are labels.
type item struct {
	op     bpf.Instruction // nil for a jump
	cond   bool            // conditional jump: test, val, jt, jf
	test   bpf.JumpTest
	val    uint32
	jt, jf Label // targets; an unconditional jump goes to jt
}

// NewLabel returns a label that no earlier call returned, named after
// name. Labels from NewLabel never collide with one another; they may
// collide with a label the caller spells out, such as "L1.drop".
func (p *Program) NewLabel(name string) Label {
	p.fresh++
	return Label(fmt.Sprintf("L%d.%s", p.fresh, name))
}

// Emit appends instructions that do not jump. A bpf.Jump or bpf.JumpIf
// passed here keeps its numeric skip counts, which the labels do not
// adjust: use Jump and JumpIf instead.
func (p *Program) Emit(ops ...bpf.Instruction) {
	for _, op := range ops {
		p.ins = append(p.ins, item{op: op})
	}
}

// JumpIf appends a conditional jump: to jt if the test of A against val
// holds, else to jf. Either may be Next.
func (p *Program) JumpIf(test bpf.JumpTest, val uint32, jt, jf Label) {
	p.ins = append(p.ins, item{cond: true, test: test, val: val, jt: jt, jf: jf})
}

// Jump appends an unconditional jump to l. Define drops it if l is
// defined right after it.
func (p *Program) Jump(l Label) {
	p.ins = append(p.ins, item{jt: l})
}

// Define places l at the next instruction appended. An unconditional jump
// to l right before it is dropped, since it would skip nothing. Defining
// Next or a label already defined makes Assemble fail.
func (p *Program) Define(l Label) {
	if l == Next {
		p.fail(fmt.Errorf("define: %w: the empty label is Next", errDuplicateLabel))
		return
	}
	if _, ok := p.labels[l]; ok {
		p.fail(fmt.Errorf("define %q: %w", l, errDuplicateLabel))
		return
	}
	if n := len(p.ins); n > 0 {
		if last := p.ins[n-1]; last.op == nil && !last.cond && last.jt == l {
			p.ins = p.ins[:n-1]
		}
	}
	if p.labels == nil {
		p.labels = map[Label]int{}
	}
	p.labels[l] = len(p.ins)
}

func (p *Program) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// Options tune Assemble. The zero Options are the defaults. Assemble only
// reads them, so one Options value may serve concurrent calls.
type Options struct {
	// NoLongJumps makes a conditional jump that reaches further than 255
	// instructions an error, instead of giving it a trampoline.
	NoLongJumps bool
}

// Assemble resolves the labels and returns the program. It fails, naming
// the instruction and the label, for an undefined or duplicate label, a
// label after the last instruction, a backward jump, and with
// opts.NoLongJumps a conditional jump out of the 8-bit range. A nil opts
// means the defaults.
func (p *Program) Assemble(opts *Options) ([]bpf.Instruction, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if p.err != nil {
		return nil, fmt.Errorf("assemble: %w", p.err)
	}
	if err := p.checkLabels(); err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	l := p.layout(o.NoLongJumps)
	if err := l.check(o.NoLongJumps); err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	return l.emit(), nil
}

// checkLabels checks that every label a jump names is defined at an
// instruction.
func (p *Program) checkLabels() error {
	for i, in := range p.ins {
		for _, t := range in.targets() {
			if t == Next {
				continue
			}
			at, ok := p.labels[t]
			if !ok {
				return fmt.Errorf("item %d: jump to %w %q", i, errUndefinedLabel, t)
			}
			if at >= len(p.ins) {
				return fmt.Errorf("item %d: jump to %w %q: defined after the last instruction", i, errUndefinedLabel, t)
			}
		}
	}
	return nil
}

// targets returns the labels a jump names: none for an instruction, one
// for an unconditional jump, two for a conditional one.
func (in *item) targets() []Label {
	switch {
	case in.op != nil:
		return nil
	case !in.cond:
		return []Label{in.jt}
	}
	return []Label{in.jt, in.jf}
}

// layout places the items: pos holds the position in the output of each
// item, and one more for the end; longT and longF mark the conditional
// jumps whose true or false target needs a trampoline.
type layout struct {
	p            *Program
	pos          []int
	longT, longF []bool
}

// layout places the items. Trampolines push other targets further, so the
// placement repeats until no more jump needs one.
func (p *Program) layout(noLong bool) *layout {
	n := len(p.ins)
	l := &layout{p: p, pos: make([]int, n+1), longT: make([]bool, n), longF: make([]bool, n)}
	for {
		l.place()
		if noLong || !l.grow() {
			return l
		}
	}
}

func (l *layout) place() {
	at := 0
	for i := range l.p.ins {
		l.pos[i] = at
		at += l.size(i)
	}
	l.pos[len(l.p.ins)] = at
}

// grow marks the jumps that are out of range with the current placement,
// and reports whether it marked any.
func (l *layout) grow() bool {
	grew := false
	for i, in := range l.p.ins {
		if !in.cond {
			continue
		}
		if !l.longT[i] && l.skip(i, in.jt) > maxShortSkip {
			l.longT[i], grew = true, true
		}
		if !l.longF[i] && l.skip(i, in.jf) > maxShortSkip {
			l.longF[i], grew = true, true
		}
	}
	return grew
}

// size is the number of instructions item i becomes.
func (l *layout) size(i int) int {
	in := l.p.ins[i]
	switch {
	case in.op != nil:
		return 1
	case !in.cond:
		return 1
	}
	s := 1
	if l.longT[i] {
		s++
	}
	if l.longF[i] {
		s++
	}
	return s
}

// target is the output position of label t seen from item i.
func (l *layout) target(i int, t Label) int {
	if t == Next {
		return l.pos[i+1]
	}
	return l.pos[l.p.labels[t]]
}

// skip is the skip count a jump at item i needs to reach t.
func (l *layout) skip(i int, t Label) int {
	return l.target(i, t) - l.pos[i] - 1
}

// check refuses backward jumps and, with noLong, jumps out of range.
func (l *layout) check(noLong bool) error {
	for i, in := range l.p.ins {
		if in.op != nil {
			continue
		}
		for _, t := range in.targets() {
			s := l.skip(i, t)
			if s < 0 {
				return fmt.Errorf("jump at instruction %d to %q: %w of %d", l.pos[i], t, errBackwardJump, -s)
			}
			if noLong && in.cond && s > maxShortSkip {
				return fmt.Errorf("jump at instruction %d to %q: %w: skips %d instructions, a conditional jump at most %d",
					l.pos[i], t, errOutOfRange, s, maxShortSkip)
			}
		}
	}
	return nil
}

// emit returns the instructions with every skip count resolved.
func (l *layout) emit() []bpf.Instruction {
	out := make([]bpf.Instruction, 0, l.pos[len(l.p.ins)])
	for i, in := range l.p.ins {
		switch {
		case in.op != nil:
			out = append(out, in.op)
		case !in.cond:
			out = append(out, bpf.Jump{Skip: uint32(l.skip(i, in.jt))})
		default:
			out = l.emitCond(out, i)
		}
	}
	return out
}

// emitCond appends conditional jump i and its trampolines: the true
// target's first, then the false target's.
func (l *layout) emitCond(out []bpf.Instruction, i int) []bpf.Instruction {
	in := l.p.ins[i]
	st, sf := l.skip(i, in.jt), l.skip(i, in.jf)
	tramp := 0 // skip count of the next trampoline
	if l.longT[i] {
		st = tramp
		tramp++
	}
	if l.longF[i] {
		sf = tramp
	}
	out = append(out, bpf.JumpIf{Cond: in.test, Val: in.val, SkipTrue: uint8(st), SkipFalse: uint8(sf)})
	if l.longT[i] {
		out = append(out, bpf.Jump{Skip: uint32(l.target(i, in.jt) - len(out) - 1)})
	}
	if l.longF[i] {
		out = append(out, bpf.Jump{Skip: uint32(l.target(i, in.jf) - len(out) - 1)})
	}
	return out
}
