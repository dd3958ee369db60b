package main

// Reading and writing the spec's YAML for sync: finding lists and items,
// their layout, and new nodes.

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

func walk(n *yaml.Node, f func(*yaml.Node)) {
	f(n)
	for _, c := range n.Content {
		walk(c, f)
	}
}

// value returns the value node of key in mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// listItem returns the item of the top-level list key whose name is name.
func (sy *syncer) listItem(key, name string) *yaml.Node {
	seq := value(sy.root, key)
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil
	}
	for _, it := range seq.Content {
		if v := value(it, "name"); v != nil && v.Value == name {
			return it
		}
	}
	return nil
}

// Layout.

// maxLine is the last line on which a node of n starts.
func maxLine(n *yaml.Node) int {
	l := n.Line
	for _, c := range n.Content {
		l = max(l, maxLine(c))
	}
	return l
}

// itemEnd returns the last line of item i of seq: the line before the next
// item or the next node, less what belongs to that: blank lines, the bare "-"
// that opens a kernel-style item, and comments indented no deeper than the
// list's dashes. A comment indented like the item's keys stays with it.
func (sy *syncer) itemEnd(seq *yaml.Node, i int) int {
	dash := sy.layoutOf(seq).dash
	last := maxLine(seq.Content[i])
	boundary := len(sy.lines) + 1
	if i+1 < len(seq.Content) {
		boundary = seq.Content[i+1].Line
	} else {
		j := sort.SearchInts(sy.starts, last+1)
		if j < len(sy.starts) {
			boundary = sy.starts[j]
		}
	}
	end := boundary - 1
	for end > last && end-1 < len(sy.lines) {
		l := sy.lines[end-1]
		t := strings.TrimSpace(l)
		indent := len(l) - len(strings.TrimLeft(l, " "))
		if t != "" && t != "-" && !(strings.HasPrefix(t, "#") && indent <= dash) {
			break
		}
		end--
	}
	return end
}

// layout is how the items of a list are written.
type layout struct {
	dash    int  // column of the dash, 0-based
	content int  // column of an item's keys
	compact bool // "- name: x" rather than "-" on a line of its own
	scalars bool // items are plain names
}

func (sy *syncer) layoutOf(seq *yaml.Node) layout {
	it := seq.Content[len(seq.Content)-1]
	line := strings.TrimRight(sy.lines[it.Line-1], "\r\n")
	col := min(it.Column-1, len(line))
	if before := line[:col]; strings.TrimSpace(before) == "-" {
		d := strings.Index(before, "-")
		return layout{dash: d, content: col, compact: true, scalars: it.Kind == yaml.ScalarNode}
	}
	// Kernel style: "-" alone on an earlier line.
	l := layout{dash: max(col-2, 0), content: col}
	for k := it.Line - 2; k >= 0; k-- {
		t := strings.TrimRight(sy.lines[k], "\r\n")
		if strings.TrimSpace(t) == "-" {
			l.dash = strings.Index(t, "-")
			break
		}
	}
	return l
}

// render writes an item in the layout of its list.
func (l layout) render(n *yaml.Node) string {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	_ = enc.Encode(n) // encoding nodes built here cannot fail
	_ = enc.Close()
	body := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	var out strings.Builder
	for i, s := range body {
		switch {
		case i == 0 && (l.compact || n.Kind == yaml.ScalarNode):
			out.WriteString(strings.Repeat(" ", l.dash) + "-" + strings.Repeat(" ", max(l.content-l.dash-1, 1)))
		case i == 0:
			out.WriteString(strings.Repeat(" ", l.dash) + "-\n" + strings.Repeat(" ", l.content))
		default:
			out.WriteString(strings.Repeat(" ", l.content))
		}
		out.WriteString(s + "\n")
	}
	return out.String()
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func intNode(v int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(v)}
}

func mapping(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Content = append(m.Content, scalar(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
	return m
}

// clean copies n without positions, comments or styles that tie it to its old place.
func clean(n *yaml.Node) *yaml.Node {
	c := &yaml.Node{Kind: n.Kind, Tag: n.Tag, Value: n.Value}
	if n.Kind == yaml.ScalarNode {
		c.Style = n.Style &^ (yaml.LiteralStyle | yaml.FoldedStyle)
	}
	for _, k := range n.Content {
		c.Content = append(c.Content, clean(k))
	}
	return c
}
