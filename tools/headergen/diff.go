package main

import (
	"fmt"
	"strings"
)

// unifiedDiff returns a unified diff of a and b with three lines of context,
// or "" when they are equal. It is a plain longest-common-subsequence diff,
// which is enough for a spec of a few thousand lines.
func unifiedDiff(aName, bName string, a, b []byte) string {
	if string(a) == string(b) {
		return ""
	}
	ops := diffLines(splitLines(string(a)), splitLines(string(b)))
	slideUp(ops)
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", aName, bName)
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		start, end := hunk(ops, k)
		writeHunk(&out, ops, start, end)
		k = end
	}
	return out.String()
}

// diffContext is how many unchanged lines surround a change in a hunk.
const diffContext = 3

// diffLines returns the edit script that turns al into bl.
func diffLines(al, bl []string) []op {
	// Trim the common head and tail, then diff the middle.
	pre := 0
	for pre < len(al) && pre < len(bl) && al[pre] == bl[pre] {
		pre++
	}
	suf := 0
	for suf < len(al)-pre && suf < len(bl)-pre && al[len(al)-1-suf] == bl[len(bl)-1-suf] {
		suf++
	}
	am, bm := al[pre:len(al)-suf], bl[pre:len(bl)-suf]
	lcs := lcsTable(am, bm)
	var ops []op
	for i := 0; i < pre; i++ {
		ops = append(ops, op{' ', al[i]})
	}
	i, j := 0, 0
	for i < len(am) || j < len(bm) {
		switch {
		case i < len(am) && j < len(bm) && am[i] == bm[j]:
			ops = append(ops, op{' ', am[i]})
			i++
			j++
		case i < len(am) && (j == len(bm) || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', am[i]})
			i++
		default:
			ops = append(ops, op{'+', bm[j]})
			j++
		}
	}
	for k := len(al) - suf; k < len(al); k++ {
		ops = append(ops, op{' ', al[k]})
	}
	return ops
}

// lcsTable returns the lengths of the longest common subsequences of
// every pair of suffixes of am and bm.
func lcsTable(am, bm []string) [][]int32 {
	lcs := make([][]int32, len(am)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(bm)+1)
	}
	for i := len(am) - 1; i >= 0; i-- {
		for j := len(bm) - 1; j >= 0; j-- {
			if am[i] == bm[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	return lcs
}

// hunk returns the bounds of the hunk of the change at ops[k]: from
// diffContext lines before it to diffContext lines after the last change
// that is at most 2*diffContext lines away from the previous one.
func hunk(ops []op, k int) (start, end int) {
	start = max(k-diffContext, 0)
	end = k
	for end < len(ops) {
		if ops[end].kind != ' ' {
			end++
			continue
		}
		n := end
		for n < len(ops) && ops[n].kind == ' ' {
			n++
		}
		if n == len(ops) || n-end > 2*diffContext {
			end = min(end+diffContext, len(ops))
			break
		}
		end = n
	}
	return start, end
}

// writeHunk writes the hunk ops[start:end] with its header.
func writeHunk(out *strings.Builder, ops []op, start, end int) {
	aStart, bStart := 1, 1
	for _, o := range ops[:start] {
		if o.kind != '+' {
			aStart++
		}
		if o.kind != '-' {
			bStart++
		}
	}
	aLen, bLen := 0, 0
	for _, o := range ops[start:end] {
		if o.kind != '+' {
			aLen++
		}
		if o.kind != '-' {
			bLen++
		}
	}
	fmt.Fprintf(out, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
	for _, o := range ops[start:end] {
		out.WriteByte(o.kind)
		out.WriteString(o.text)
		if !strings.HasSuffix(o.text, "\n") {
			out.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start-1)
	case 1:
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}

// splitLines splits s after each newline; the last line may lack one.
func splitLines(s string) []string {
	l := strings.SplitAfter(s, "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}

type op struct {
	kind byte // ' ', '-' or '+'
	text string
}

// slideUp moves each block of added or removed lines up while the line
// above it equals its last line. Both forms are correct; the moved one shows
// an inserted YAML list item with its "-" rather than with the next item's.
func slideUp(ops []op) {
	for e := 0; e < len(ops); e++ {
		if ops[e].kind == ' ' || e+1 < len(ops) && ops[e+1].kind == ops[e].kind {
			continue
		}
		// ops[s:e+1] is a block of one kind ending at e.
		s := e
		for s > 0 && ops[s-1].kind == ops[e].kind {
			s--
		}
		for s > 0 && ops[s-1].kind == ' ' && ops[s-1].text == ops[e].text {
			ops[s-1].kind, ops[e].kind = ops[e].kind, ' '
			s--
			e--
		}
	}
}
