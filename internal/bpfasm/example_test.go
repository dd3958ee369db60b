package bpfasm_test

import (
	"fmt"

	"golang.org/x/net/bpf"

	"github.com/ctspec/ctspec/internal/bpfasm"
)

// A program that keeps packets whose first byte is 6 or 17 and drops the
// others, with its jumps written as labels.
func ExampleProgram() {
	var p bpfasm.Program
	keep, drop := p.NewLabel("keep"), p.NewLabel("drop")
	p.Emit(bpf.LoadAbsolute{Off: 0, Size: 1})
	p.JumpIf(bpf.JumpEqual, 6, keep, bpfasm.Next)
	p.JumpIf(bpf.JumpEqual, 17, keep, drop)
	p.Define(keep)
	p.Emit(bpf.RetConstant{Val: 0xffffffff})
	p.Define(drop)
	p.Emit(bpf.RetConstant{Val: 0})
	insns, err := p.Assemble(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, in := range insns {
		fmt.Println(i, in)
	}
	// Output:
	// 0 ldb [0]
	// 1 jeq #6,1
	// 2 jneq #17,1
	// 3 ret #4294967295
	// 4 ret #0
}
