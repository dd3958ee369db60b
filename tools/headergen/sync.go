package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ctspec/ctspec/internal/spec"
)

// sync adds to the spec what newer headers declare: attributes at the end of
// their set (aliases before the first name of their value), and entries at the end of
// enum and flags definitions. It does not invent sets, definitions,
// operations or groups, and it does not change entries the headers disagree
// with; it reports those instead.
//
// The YAML is read into yaml.v3 nodes only to find where each list ends and
// how its items are laid out. New items are rendered from nodes and spliced
// into the original text, so every other byte of the file stays as it was.

var (
	versionRE = regexp.MustCompile(`Linux \d+\.\d+`)
	kebabRE   = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	kernelRE  = regexp.MustCompile(`^\d+\.\d+$`)
)

// syncResult is the synced spec and what sync did and did not do.
type syncResult struct {
	out   []byte
	added []string // one line per added attribute or entry
	notes []string // what a human has to do
}

type syncer struct {
	in      *input
	root    *yaml.Node
	lines   []string // the spec's lines, each with its newline
	starts  []int    // sorted start lines of all nodes
	inserts []insertion
	expect  []expectation
	res     *syncResult
}

// insertion is text to put after a line (1-based) of the original.
type insertion struct {
	after int
	text  string
}

// expectation is an added item, checked again after the synced spec loads.
type expectation struct {
	container string // set or definition name
	set       bool
	name      string
	cname     string
	value     uint64
}

// syncSpec returns the spec of in with what the headers add, and the
// "Linux X.Y" phrase of the head comment set to kernel when kernel is not "".
func syncSpec(in *input, kernel string) (*syncResult, error) {
	if len(in.errs) > 0 {
		return nil, fmt.Errorf("headers do not parse:\n%w", errors.Join(in.errs...))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(in.specSrc, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", in.specPath, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: want one YAML mapping", in.specPath)
	}
	sy := &syncer{
		in:    in,
		root:  doc.Content[0],
		lines: strings.SplitAfter(string(in.specSrc), "\n"),
		res:   &syncResult{},
	}
	seen := map[int]bool{}
	walk(sy.root, func(n *yaml.Node) {
		if !seen[n.Line] {
			seen[n.Line] = true
			sy.starts = append(sy.starts, n.Line)
		}
	})
	sort.Ints(sy.starts)

	ps, other, _ := in.pairings()
	sy.res.notes = append(sy.res.notes, other...)
	for _, p := range ps {
		fs, _ := p.compare()
		var miss []finding
		for _, f := range fs {
			if f.kind != missing {
				sy.note("%s; sync leaves it to you", f)
				continue
			}
			miss = append(miss, f)
		}
		if len(miss) == 0 {
			continue
		}
		switch {
		case p.set != nil:
			sy.syncSet(p, miss)
		case p.def != nil && (p.def.Type == "enum" || p.def.Type == "flags"):
			sy.syncDef(p, miss)
		default:
			for _, f := range miss {
				sy.note("%s; add it by hand", f)
			}
		}
	}

	if kernel != "" {
		if err := sy.setVersion(kernel); err != nil {
			return nil, err
		}
	}
	sy.res.out = sy.assemble()
	if err := sy.verify(); err != nil {
		return nil, err
	}
	return sy.res, nil
}

// runSync syncs the spec and prints a diff, or with write rewrites the file.
// What it added and what it left to a human go to stderr.
func runSync(in *input, kernel string, write, verbose bool, stdout, stderr io.Writer) error {
	res, err := syncSpec(in, kernel)
	if err != nil {
		return err
	}
	for _, a := range res.added {
		fmt.Fprintf(stderr, "added %s\n", a)
	}
	for _, n := range res.notes {
		fmt.Fprintf(stderr, "not synced: %s\n", n)
	}
	if bytes.Equal(res.out, in.specSrc) {
		if verbose {
			fmt.Fprintf(stderr, "%s is up to date with the headers in %s\n", in.specPath, in.include)
		}
		return nil
	}
	if !write {
		fmt.Fprint(stdout, unifiedDiff(in.specPath, in.specPath+" (synced)", in.specSrc, res.out))
		return nil
	}
	st, err := os.Stat(in.specPath)
	if err != nil {
		return err
	}
	return os.WriteFile(in.specPath, res.out, st.Mode().Perm())
}

func (sy *syncer) note(format string, args ...any) {
	sy.res.notes = append(sy.res.notes, fmt.Sprintf(format, args...))
}

// specName derives the spec name of a new header name: the C name less the
// container's C prefix, lower case, underscores turned into dashes. The result
// must map back to the same C name through internal/spec.
func (sy *syncer) specName(p *pairing, cname, prefix string, cnameOf func(string) string, taken map[string]bool) (string, bool) {
	cp := spec.CIdent(prefix)
	rest, ok := strings.CutPrefix(cname, cp)
	if !ok || rest == "" {
		sy.note("%s:%d: %s: does not start with the name-prefix %s of spec %s; add it by hand", p.hdrFile(cname), p.hdrLine(cname), cname, cp, p.label)
		return "", false
	}
	n := strings.ToLower(strings.ReplaceAll(rest, "_", "-"))
	switch {
	case !kebabRE.MatchString(n):
		sy.note("%s:%d: %s: %q is not a kebab-case name; add it by hand", p.hdrFile(cname), p.hdrLine(cname), cname, n)
	case cnameOf(n) != cname:
		sy.note("%s:%d: %s: spec name %s would mean %s (see internal/spec name exceptions); add it by hand", p.hdrFile(cname), p.hdrLine(cname), cname, n, cnameOf(n))
	case taken[n]:
		sy.note("%s:%d: %s: spec %s already has an entry named %s; add it by hand", p.hdrFile(cname), p.hdrLine(cname), cname, p.label, n)
	default:
		return n, true
	}
	return "", false
}

func (p *pairing) hdrFile(name string) string {
	for _, h := range p.hdr {
		if h.name == name {
			return h.file
		}
	}
	return "?"
}

func (p *pairing) hdrLine(name string) int {
	for _, h := range p.hdr {
		if h.name == name {
			return h.line
		}
	}
	return 0
}

// setSync is what syncSet knows of the set it adds to, by C name.
type setSync struct {
	set     *spec.AttrSet
	seq     *yaml.Node // the set's attributes list
	lay     layout
	nodes   map[string]*yaml.Node
	names   map[string]string // spec name by C name
	attrs   map[string]*spec.Attribute
	firstOf map[int]int // value → index of its first name
}

// syncSet adds the missing attributes of one set.
func (sy *syncer) syncSet(p *pairing, miss []finding) {
	set := p.set
	seq := value(sy.listItem("attribute-sets", set.Name), "attributes")
	if seq == nil || seq.Kind != yaml.SequenceNode || len(seq.Content) == 0 || len(seq.Content) != len(set.Attributes) {
		for _, f := range miss {
			sy.note("%s; set %s has no attributes list to add to, add it by hand", f, set.Name)
		}
		return
	}
	st := &setSync{set: set, seq: seq, lay: sy.layoutOf(seq), nodes: map[string]*yaml.Node{},
		names: map[string]string{}, attrs: map[string]*spec.Attribute{}, firstOf: map[int]int{}}
	endLine := sy.itemEnd(seq, len(seq.Content)-1)
	next := int64(set.Attributes[len(set.Attributes)-1].Num) + 1
	taken := map[string]bool{}
	for i, a := range set.Attributes {
		c := set.CName(a)
		taken[a.Name] = true
		st.nodes[c], st.names[c], st.attrs[c] = seq.Content[i], a.Name, a
		if _, ok := st.firstOf[a.Num]; !ok {
			st.firstOf[a.Num] = i
		}
	}
	cnameOf := func(n string) string { return set.CName(&spec.Attribute{Name: n}) }
	for _, f := range miss {
		h := f.h
		name, ok := sy.specName(p, h.name, set.NamePrefix, cnameOf, taken)
		if !ok {
			continue
		}
		var n *yaml.Node
		at := endLine
		if h.alias != "" {
			if n, at, ok = sy.setAlias(st, f, name); !ok {
				continue
			}
		} else {
			if h.value < 1 || h.value > 0xffff {
				sy.note("%s; value out of range for an attribute", f)
				continue
			}
			n = newAttr(name, h, next)
			next = h.value + 1
			sy.res.added = append(sy.res.added, fmt.Sprintf("%s.%s: %s = %d, type binary until you set it", set.Name, name, h.name, h.value))
		}
		sy.inserts = append(sy.inserts, insertion{after: at, text: st.lay.render(n)})
		taken[name] = true
		st.nodes[h.name], st.names[h.name] = n, name
		sy.expect = append(sy.expect, expectation{container: set.Name, set: true, name: name, cname: h.name, value: uint64(h.value)})
	}
}

// newAttr returns the node of the new attribute name for h, of type
// binary, with a value when it does not follow next.
func newAttr(name string, h hName, next int64) *yaml.Node {
	doc := todoMarker
	if h.doc != "" {
		doc = strings.TrimSuffix(h.doc, ".") + ". " + todoMarker
	}
	n := mapping("name", scalar(name), "type", scalar("binary"))
	if h.value != next {
		n.Content = append(n.Content, scalar("value"), intNode(h.value))
	}
	n.Content = append(n.Content, scalar("doc"), scalar(doc))
	return n
}

// setAlias returns the node of attribute name, the alias that finding f
// reports, and the line to insert it after; false when it must be added
// by hand, which it notes.
func (sy *syncer) setAlias(st *setSync, f finding, name string) (*yaml.Node, int, bool) {
	h := f.h
	target := st.nodes[h.alias]
	if target == nil {
		sy.note("%s; it is an alias of %s, which the spec lacks", f, h.alias)
		return nil, 0, false
	}
	n := mapping("name", scalar(name))
	for i := 0; i+1 < len(target.Content); i += 2 {
		switch target.Content[i].Value {
		case "name", "value", "doc":
		default:
			n.Content = append(n.Content, clean(target.Content[i]), clean(target.Content[i+1]))
		}
	}
	n.Content = append(n.Content, scalar("value"), intNode(h.value),
		scalar("doc"), scalar(fmt.Sprintf("Deprecated alias of %s.", st.names[h.alias])))
	// The current name of a value is listed last (YNL keeps the last name
	// of a value), so an alias goes before the first name of its value,
	// and the current name must then give its value explicitly.
	first, ok := st.firstOf[int(h.value)]
	if !ok || first == 0 || st.lay.compact || st.attrs[h.alias] == nil {
		sy.note("%s; it is an alias of %s, add it before that by hand", f, h.alias)
		return nil, 0, false
	}
	at := sy.itemEnd(st.seq, first-1)
	if t := st.attrs[h.alias]; t.Value == nil {
		sy.inserts = append(sy.inserts, insertion{after: target.Content[0].Line,
			text: strings.Repeat(" ", st.lay.content) + fmt.Sprintf("value: %d\n", h.value)})
		v := int(h.value)
		t.Value = &v
	}
	sy.res.added = append(sy.res.added, fmt.Sprintf("%s.%s: %s = %d, alias of %s", st.set.Name, name, h.name, h.value, st.names[h.alias]))
	return n, at, true
}

// syncDef adds the missing entries of an enum or flags definition.
func (sy *syncer) syncDef(p *pairing, miss []finding) {
	d := p.def
	seq := value(sy.listItem("definitions", d.Name), "entries")
	if seq == nil || seq.Kind != yaml.SequenceNode || len(seq.Content) == 0 || len(seq.Content) != len(d.Entries) {
		for _, f := range miss {
			sy.note("%s; definition %s has no entries list to add to, add it by hand", f, d.Name)
		}
		return
	}
	lay := sy.layoutOf(seq)
	lay.scalars = true
	for _, it := range seq.Content {
		lay.scalars = lay.scalars && it.Kind == yaml.ScalarNode
	}
	endLine := sy.itemEnd(seq, len(seq.Content)-1)
	flags := d.Type == "flags"
	pos := func(num uint64) int64 {
		if flags {
			return int64(bits.TrailingZeros64(num))
		}
		return int64(num)
	}
	next := pos(d.Entries[len(d.Entries)-1].Num) + 1
	taken := map[string]bool{}
	for _, e := range d.Entries {
		taken[e.Name] = true
	}
	cnameOf := func(n string) string { return d.CName(&spec.Entry{Name: n}) }
	for _, f := range miss {
		h := f.h
		if h.alias != "" {
			sy.note("%s; it is an alias of %s, and a definition holds one name per value", f, h.alias)
			continue
		}
		if h.value < 0 || flags && bits.OnesCount64(uint64(h.value)) != 1 {
			sy.note("%s; not a value this definition can hold", f)
			continue
		}
		name, ok := sy.specName(p, h.name, d.NamePrefix, cnameOf, taken)
		if !ok {
			continue
		}
		v := h.value
		if flags {
			v = int64(bits.TrailingZeros64(uint64(h.value)))
		}
		var n *yaml.Node
		if lay.scalars && v == next {
			n = scalar(name)
		} else {
			n = mapping("name", scalar(name))
			if v != next {
				n.Content = append(n.Content, scalar("value"), intNode(v))
			}
			if h.doc != "" && !lay.scalars {
				n.Content = append(n.Content, scalar("doc"), scalar(h.doc))
			}
		}
		next = v + 1
		sy.inserts = append(sy.inserts, insertion{after: endLine, text: lay.render(n)})
		taken[name] = true
		sy.expect = append(sy.expect, expectation{container: d.Name, name: name, cname: h.name, value: uint64(h.value)})
		what := fmt.Sprintf("value %d", v)
		if flags {
			what = fmt.Sprintf("bit %d", v)
		}
		sy.res.added = append(sy.res.added, fmt.Sprintf("%s.%s: %s, %s", d.Name, name, h.name, what))
	}
}

// setVersion rewrites the "Linux X.Y" phrase of the comment at the top of
// the file.
func (sy *syncer) setVersion(kernel string) error {
	if !kernelRE.MatchString(kernel) {
		return fmt.Errorf("-kernel %q: want a version such as 6.19", kernel)
	}
	for i, l := range sy.lines {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "#") {
			break
		}
		if loc := versionRE.FindStringIndex(l); loc != nil {
			sy.lines[i] = l[:loc[0]] + "Linux " + kernel + l[loc[1]:]
			return nil
		}
	}
	return fmt.Errorf(`%s: the head comment has no "Linux X.Y" phrase to update`, sy.in.specPath)
}

func (sy *syncer) assemble() []byte {
	sort.SliceStable(sy.inserts, func(i, j int) bool { return sy.inserts[i].after < sy.inserts[j].after })
	var b strings.Builder
	k := 0
	for i, l := range sy.lines {
		b.WriteString(l)
		for k < len(sy.inserts) && sy.inserts[k].after == i+1 {
			if !strings.HasSuffix(l, "\n") {
				b.WriteString("\n")
				l += "\n"
			}
			b.WriteString(sy.inserts[k].text)
			k++
		}
	}
	return []byte(b.String())
}

// verify loads the synced spec and checks that each added item resolves to
// the header's name and value.
func (sy *syncer) verify() error {
	s, err := spec.Parse(sy.in.specPath, sy.res.out)
	if err != nil {
		return fmt.Errorf("the synced spec does not load: %w", err)
	}
	for _, e := range sy.expect {
		var cname string
		var num uint64
		found := false
		if e.set {
			if set := s.Set(e.container); set != nil {
				if a := set.Attr(e.name); a != nil {
					cname, num, found = set.CName(a), uint64(a.Num), true
				}
			}
		} else if d := s.Definition(e.container); d != nil {
			for _, en := range d.Entries {
				if en.Name == e.name {
					cname, num, found = d.CName(en), en.Num, true
				}
			}
		}
		if !found || cname != e.cname || num != e.value {
			return fmt.Errorf("the synced spec has %s.%s as %s = %d, want %s = %d", e.container, e.name, cname, num, e.cname, e.value)
		}
	}
	return nil
}
