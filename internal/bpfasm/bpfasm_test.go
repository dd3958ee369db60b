package bpfasm

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/bpf"
)

// Instructions the tests use as fillers and verdicts.
var (
	ldByte = bpf.LoadAbsolute{Off: 0, Size: 1}
	ret0   = bpf.RetConstant{Val: 0}
	ret1   = bpf.RetConstant{Val: 1}
)

func filler(n int) bpf.Instruction { return bpf.LoadConstant{Dst: bpf.RegX, Val: uint32(n)} }

// fillers appends n fillers to p.
func fillers(p *Program, n int) {
	for i := range n {
		p.Emit(filler(i))
	}
}

// fillerList returns n fillers, as fillers appends them.
func fillerList(n int) []bpf.Instruction {
	out := make([]bpf.Instruction, n)
	for i := range out {
		out[i] = filler(i)
	}
	return out
}

// concat joins instruction lists.
func concat(parts ...[]bpf.Instruction) []bpf.Instruction {
	var out []bpf.Instruction
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func ins(in ...bpf.Instruction) []bpf.Instruction { return in }

// assembleTest is a program and its instructions, worked out by hand.
type assembleTest struct {
	name  string
	build func(p *Program)
	want  []bpf.Instruction
}

var assembleTestCases = []assembleTest{
	{
		name: "forward and fall through",
		build: func(p *Program) {
			p.Emit(ldByte)
			p.JumpIf(bpf.JumpEqual, 1, "keep", Next)
			p.JumpIf(bpf.JumpEqual, 2, "keep", "drop")
			p.Define("keep")
			p.Emit(ret1)
			p.Define("drop")
			p.Emit(ret0)
		},
		want: ins(
			ldByte,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipTrue: 1, SkipFalse: 0},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 2, SkipTrue: 0, SkipFalse: 1},
			ret1,
			ret0,
		),
	},
	{
		name: "unconditional jump",
		build: func(p *Program) {
			p.Emit(ldByte)
			p.Jump("end")
			p.Emit(ret0)
			p.Define("end")
			p.Emit(ret1)
		},
		want: ins(ldByte, bpf.Jump{Skip: 1}, ret0, ret1),
	},
	{
		name: "jump right before its label is dropped",
		build: func(p *Program) {
			p.Emit(ldByte)
			p.Jump("x")
			p.Define("x")
			p.Emit(ret1)
		},
		want: ins(ldByte, ret1),
	},
	{
		name: "two labels at one instruction",
		build: func(p *Program) {
			p.Emit(ldByte)
			p.JumpIf(bpf.JumpGreaterThan, 9, "a", "b")
			p.Emit(ret0)
			p.Define("a")
			p.Define("b")
			p.Emit(ret1)
		},
		want: ins(ldByte, bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: 9, SkipTrue: 1, SkipFalse: 1}, ret0, ret1),
	},
	{
		name: "NewLabel",
		build: func(p *Program) {
			a, b := p.NewLabel("x"), p.NewLabel("x")
			p.JumpIf(bpf.JumpEqual, 0, b, a)
			p.Define(a)
			p.Emit(ret0)
			p.Define(b)
			p.Emit(ret1)
		},
		want: ins(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 1, SkipFalse: 0}, ret0, ret1),
	},
	{
		name: "255 ahead is in range",
		build: func(p *Program) {
			p.JumpIf(bpf.JumpEqual, 7, "far", Next)
			fillers(p, 255)
			p.Define("far")
			p.Emit(ret1)
		},
		want: concat(ins(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 7, SkipTrue: 255}), fillerList(255), ins(ret1)),
	},
	{
		// The jump at 0 gets a trampoline at 1, which reaches the
		// label at 1+1+256 = 258 with a skip of 256.
		name: "256 ahead takes a trampoline",
		build: func(p *Program) {
			p.JumpIf(bpf.JumpEqual, 7, "far", Next)
			fillers(p, 256)
			p.Define("far")
			p.Emit(ret1)
		},
		want: concat(
			ins(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 7, SkipTrue: 0, SkipFalse: 1}, bpf.Jump{Skip: 256}),
			fillerList(256), ins(ret1)),
	},
	{
		// Both targets far: trampolines at 1 (true) and 2 (false);
		// fillers at 3..258, "t" at 259, "f" at 260.
		name: "both targets take a trampoline",
		build: func(p *Program) {
			p.JumpIf(bpf.JumpBitsSet, 4, "t", "f")
			fillers(p, 256)
			p.Define("t")
			p.Emit(ret1)
			p.Define("f")
			p.Emit(ret0)
		},
		want: concat(
			ins(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 4, SkipTrue: 0, SkipFalse: 1}, bpf.Jump{Skip: 257}, bpf.Jump{Skip: 257}),
			fillerList(256), ins(ret1, ret0)),
	},
	{
		// J0 reaches "a" with a skip of 255 until J1, 256 short of
		// "b", takes a trampoline; then J0 needs one too. Final
		// layout: J0 0, its trampoline 1, J1 2, its trampoline 3,
		// fillers 4..257, "a" 258, a filler 259, "b" 260.
		name: "a trampoline pushes another jump out of range",
		build: func(p *Program) {
			p.JumpIf(bpf.JumpEqual, 1, "a", Next)
			p.JumpIf(bpf.JumpEqual, 2, "b", Next)
			fillers(p, 254)
			p.Define("a")
			p.Emit(ret1)
			p.Emit(filler(-1))
			p.Define("b")
			p.Emit(ret0)
		},
		want: concat(
			ins(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipTrue: 0, SkipFalse: 1}, bpf.Jump{Skip: 256},
				bpf.JumpIf{Cond: bpf.JumpEqual, Val: 2, SkipTrue: 0, SkipFalse: 1}, bpf.Jump{Skip: 256}),
			fillerList(254), ins(ret1, filler(-1), ret0)),
	},
}

// TestAssemble checks skip counts worked out by hand.
func TestAssemble(t *testing.T) {
	tests := assembleTestCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Program
			tt.build(&p)
			got, err := p.Assemble(nil)
			if err != nil {
				t.Fatalf("Assemble: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("program (-want +got):\n%s", diff)
			}
		})
	}
}

// assembleErrorTest is a bad program, the error Assemble must return and
// a text the message must contain.
type assembleErrorTest struct {
	name  string
	opts  *Options
	build func(p *Program)
	want  error
	text  string
}

var assembleErrorTestCases = []assembleErrorTest{
	{
		name: "undefined label",
		build: func(p *Program) {
			p.JumpIf(bpf.JumpEqual, 1, "nowhere", Next)
			p.Emit(ret1)
		},
		want: errUndefinedLabel,
		text: `"nowhere"`,
	},
	{
		name: "undefined label of a jump",
		build: func(p *Program) {
			p.Jump("gone")
			p.Emit(ret1)
		},
		want: errUndefinedLabel,
		text: `"gone"`,
	},
	{
		name: "label after the last instruction",
		build: func(p *Program) {
			p.JumpIf(bpf.JumpEqual, 1, "end", Next)
			p.Emit(ret1)
			p.Define("end")
		},
		want: errUndefinedLabel,
		text: "after the last instruction",
	},
	{
		name: "duplicate label",
		build: func(p *Program) {
			p.Define("x")
			p.Emit(ret0)
			p.Define("x")
			p.Emit(ret1)
		},
		want: errDuplicateLabel,
		text: `"x"`,
	},
	{
		name: "defining Next",
		build: func(p *Program) {
			p.Define(Next)
			p.Emit(ret1)
		},
		want: errDuplicateLabel,
	},
	{
		name: "backward jump",
		build: func(p *Program) {
			p.Define("top")
			p.Emit(ldByte)
			p.JumpIf(bpf.JumpEqual, 1, "top", Next)
			p.Emit(ret1)
		},
		want: errBackwardJump,
		text: `"top"`,
	},
	{
		name: "out of range without long jumps",
		opts: &Options{NoLongJumps: true},
		build: func(p *Program) {
			p.JumpIf(bpf.JumpEqual, 7, "far", Next)
			fillers(p, 256)
			p.Define("far")
			p.Emit(ret1)
		},
		want: errOutOfRange,
		text: "skips 256 instructions",
	},
}

// TestAssembleErrors checks that bad programs are refused clearly.
func TestAssembleErrors(t *testing.T) {
	tests := assembleErrorTestCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Program
			tt.build(&p)
			got, err := p.Assemble(tt.opts)
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.text) || !strings.HasPrefix(fmt.Sprint(err), "assemble: ") {
				t.Fatalf("Assemble: got %v, %v; want an error %q naming %s", got, err, tt.want, tt.text)
			}
		})
	}
}

// TestNoLongJumpsInRange checks that NoLongJumps accepts the furthest
// short jump.
func TestNoLongJumpsInRange(t *testing.T) {
	var p Program
	p.JumpIf(bpf.JumpEqual, 7, "far", Next)
	fillers(&p, 255)
	p.Define("far")
	p.Emit(ret1)
	got, err := p.Assemble(&Options{NoLongJumps: true})
	if err != nil {
		t.Fatalf("Assemble: %v", err)
	}
	if want := (bpf.JumpIf{Cond: bpf.JumpEqual, Val: 7, SkipTrue: 255}); got[0] != want {
		t.Fatalf("first instruction %v, want %v", got[0], want)
	}
}

// TestLongProgram runs a program of 600 comparisons, each jumping past the
// rest to its own return, so that most jumps reach much further than 255
// instructions: the program returns v+1 for a 16-bit input v below 600,
// and 1000 for any other.
func TestLongProgram(t *testing.T) {
	const n = 600
	var p Program
	p.Emit(bpf.LoadAbsolute{Off: 0, Size: 2})
	for v := range n {
		p.JumpIf(bpf.JumpEqual, uint32(v), Label(fmt.Sprint("ret", v)), Next)
	}
	p.Emit(bpf.RetConstant{Val: 1000})
	for v := range n {
		p.Define(Label(fmt.Sprint("ret", v)))
		p.Emit(bpf.RetConstant{Val: uint32(v + 1)})
	}
	prog, err := p.Assemble(nil)
	if err != nil {
		t.Fatalf("Assemble: %v", err)
	}
	if len(prog) <= 1+n+1+n {
		t.Fatalf("program of %d instructions: no trampoline", len(prog))
	}
	if _, err := bpf.Assemble(prog); err != nil {
		t.Fatalf("bpf.Assemble: %v", err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	for v := range n + 100 {
		want := 1000
		if v < n {
			want = v + 1
		}
		got, err := vm.Run([]byte{byte(v >> 8), byte(v), 0, 0})
		if err != nil || got != want {
			t.Fatalf("input %d: got %d, %v; want %d", v, got, err, want)
		}
	}

	_, err = p.Assemble(&Options{NoLongJumps: true})
	if !errors.Is(err, errOutOfRange) {
		t.Fatalf("Assemble with NoLongJumps: got %v, want %v", err, errOutOfRange)
	}
}
