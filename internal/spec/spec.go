// Package spec loads YNL netlink-raw specifications, such as spec/conntrack.yaml.
//
// Loading is strict: a key that the netlink-raw schema does not define is an
// error naming the file and line, and every entry remembers its line so that
// later passes can report problems precisely. The package also resolves the
// implicit numbering of attributes and enum entries and derives the kernel (C)
// name of every entry, which the generator and the header checker share.
//
// The types here mirror the schema in the kernel's
// Documentation/netlink/netlink-raw.yaml. They are not safe for concurrent
// mutation; a loaded Spec may be read from several goroutines.
package spec

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Spec is one netlink-raw specification file.
type Spec struct {
	Name          string        `yaml:"name"`
	Doc           string        `yaml:"doc"`
	Protocol      string        `yaml:"protocol"`
	Protonum      int           `yaml:"protonum"`
	UAPIHeader    string        `yaml:"uapi-header"`
	Definitions   []*Definition `yaml:"definitions"`
	AttributeSets []*AttrSet    `yaml:"attribute-sets"`
	Operations    *Operations   `yaml:"operations"`
	McastGroups   *McastGroups  `yaml:"mcast-groups"`

	// File is the path the spec was loaded from.
	File string `yaml:"-"`
	// HeadComment is the comment block above the first key.
	HeadComment string `yaml:"-"`
}

// Definition is an entry of the definitions list: a const, enum, flags or struct.
type Definition struct {
	Name       string    `yaml:"name"`
	Header     string    `yaml:"header"`
	Type       string    `yaml:"type"`
	Doc        string    `yaml:"doc"`
	Value      any       `yaml:"value"`
	ValueStart *int      `yaml:"value-start"`
	Entries    []*Entry  `yaml:"entries"`
	RenderMax  bool      `yaml:"render-max"`
	EnumName   *string   `yaml:"enum-name"`
	NamePrefix string    `yaml:"name-prefix"`
	Members    []*Member `yaml:"members"`

	Line int `yaml:"-"`
}

// Entry is one value of an enum or flags definition.
type Entry struct {
	Name  string `yaml:"name"`
	Value *int   `yaml:"value"`
	Doc   string `yaml:"doc"`

	// Num is the resolved value: for an enum the number, for flags the bit
	// value (1 << position).
	Num  uint64 `yaml:"-"`
	Line int    `yaml:"-"`
}

// Member is one member of a struct definition.
type Member struct {
	Name        string `yaml:"name"`
	Type        string `yaml:"type"`
	Len         any    `yaml:"len"`
	ByteOrder   string `yaml:"byte-order"`
	Doc         string `yaml:"doc"`
	Enum        string `yaml:"enum"`
	EnumAsFlags bool   `yaml:"enum-as-flags"`
	DisplayHint string `yaml:"display-hint"`
	Struct      string `yaml:"struct"`

	Line int `yaml:"-"`
}

// AttrSet is an attribute space.
type AttrSet struct {
	Name        string       `yaml:"name"`
	NamePrefix  string       `yaml:"name-prefix"`
	EnumName    *string      `yaml:"enum-name"`
	Doc         string       `yaml:"doc"`
	SubsetOf    string       `yaml:"subset-of"`
	AttrCntName string       `yaml:"attr-cnt-name"`
	AttrMaxName string       `yaml:"attr-max-name"`
	Attributes  []*Attribute `yaml:"attributes"`

	Line int `yaml:"-"`
}

// Attribute is one attribute of a set.
type Attribute struct {
	Name             string   `yaml:"name"`
	Type             string   `yaml:"type"`
	Doc              string   `yaml:"doc"`
	Value            *int     `yaml:"value"`
	TypeValue        []string `yaml:"type-value"`
	ByteOrder        string   `yaml:"byte-order"`
	MultiAttr        bool     `yaml:"multi-attr"`
	NestedAttributes string   `yaml:"nested-attributes"`
	Enum             string   `yaml:"enum"`
	EnumAsFlags      bool     `yaml:"enum-as-flags"`
	Checks           *Checks  `yaml:"checks"`
	SubType          string   `yaml:"sub-type"`
	DisplayHint      string   `yaml:"display-hint"`
	NamePrefix       string   `yaml:"name-prefix"`
	Struct           string   `yaml:"struct"`
	SubMessage       string   `yaml:"sub-message"`
	Selector         string   `yaml:"selector"`

	// Num is the resolved attribute type: Value, or one more than the
	// previous attribute's, starting at 1.
	Num  int `yaml:"-"`
	Line int `yaml:"-"`
}

// Checks are the kernel's input validation rules for an attribute.
type Checks struct {
	FlagsMask      string `yaml:"flags-mask"`
	Min            *int   `yaml:"min"`
	Max            *int   `yaml:"max"`
	MinLen         any    `yaml:"min-len"`
	MaxLen         any    `yaml:"max-len"`
	ExactLen       any    `yaml:"exact-len"`
	UnterminatedOK bool   `yaml:"unterminated-ok"`
}

// Operations is the operations section.
type Operations struct {
	EnumModel   string       `yaml:"enum-model"`
	NamePrefix  string       `yaml:"name-prefix"`
	EnumName    *string      `yaml:"enum-name"`
	AsyncPrefix string       `yaml:"async-prefix"`
	AsyncEnum   *string      `yaml:"async-enum"`
	FixedHeader string       `yaml:"fixed-header"`
	List        []*Operation `yaml:"list"`
}

// Operation is one message type of the protocol.
type Operation struct {
	Name         string   `yaml:"name"`
	Doc          string   `yaml:"doc"`
	Value        *int     `yaml:"value"`
	AttributeSet string   `yaml:"attribute-set"`
	Flags        []string `yaml:"flags"`
	DontValidate []string `yaml:"dont-validate"`
	FixedHeader  string   `yaml:"fixed-header"`
	Do           *SubOp   `yaml:"do"`
	Dump         *SubOp   `yaml:"dump"`
	Notify       string   `yaml:"notify"`
	Event        *Message `yaml:"event"`
	Mcgrp        string   `yaml:"mcgrp"`

	Line int `yaml:"-"`
}

// SubOp is the do or dump form of an operation.
type SubOp struct {
	Request *Message `yaml:"request"`
	Reply   *Message `yaml:"reply"`
	Pre     string   `yaml:"pre"`
	Post    string   `yaml:"post"`
}

// Message lists the attributes of a request, reply or event.
type Message struct {
	Attributes []string `yaml:"attributes"`
	Value      *int     `yaml:"value"`
}

// McastGroups is the multicast group section.
type McastGroups struct {
	List []*McastGroup `yaml:"list"`
}

// McastGroup is one multicast group.
type McastGroup struct {
	Name        string   `yaml:"name"`
	Value       *int     `yaml:"value"`
	CDefineName string   `yaml:"c-define-name"`
	Flags       []string `yaml:"flags"`

	Line int `yaml:"-"`
}

// Error is a problem at a place in a spec file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Load reads and strictly decodes the spec at path, then resolves values.
func Load(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse decodes a spec from b; name is used in error messages.
func Parse(name string, b []byte) (*Spec, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return nil, &Error{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: name, Msg: "want one YAML document"}
	}
	root := doc.Content[0]
	s := &Spec{File: name, HeadComment: doc.HeadComment}
	if s.HeadComment == "" {
		s.HeadComment = root.HeadComment
	}
	if s.HeadComment == "" && root.Kind == yaml.MappingNode && len(root.Content) > 0 {
		s.HeadComment = root.Content[0].HeadComment
	}
	if err := decodeStrict(root, s); err != nil {
		return nil, &Error{File: name, Line: lineOf(err), Msg: msgOf(err)}
	}
	if err := s.resolve(); err != nil {
		return nil, err
	}
	return s, nil
}

// resolve computes Num for attributes and entries.
func (s *Spec) resolve() error {
	for _, set := range s.AttributeSets {
		next := 1
		for _, a := range set.Attributes {
			if a.Value != nil {
				next = *a.Value
			}
			a.Num = next
			next++
		}
	}
	for _, d := range s.Definitions {
		if d.Type != "enum" && d.Type != "flags" {
			continue
		}
		next := 0
		if d.ValueStart != nil {
			next = *d.ValueStart
		}
		for _, e := range d.Entries {
			if e.Value != nil {
				next = *e.Value
			}
			if next < 0 || (d.Type == "flags" && next > 63) {
				return &Error{File: s.File, Line: e.Line, Msg: fmt.Sprintf("definition %s: entry %s: value %d out of range", d.Name, e.Name, next)}
			}
			if d.Type == "flags" {
				e.Num = 1 << uint(next)
			} else {
				e.Num = uint64(next)
			}
			next++
		}
	}
	return nil
}

// Set returns the attribute set with the given name, or nil.
func (s *Spec) Set(name string) *AttrSet {
	for _, set := range s.AttributeSets {
		if set.Name == name {
			return set
		}
	}
	return nil
}

// Definition returns the definition with the given name, or nil.
func (s *Spec) Definition(name string) *Definition {
	for _, d := range s.Definitions {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// Attr returns the attribute with the given name, or nil.
func (set *AttrSet) Attr(name string) *Attribute {
	for _, a := range set.Attributes {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// AliasOf returns the attribute that a is an alias of: the last attribute of
// the same set with the same value, when that is not a itself. The last name
// listed for a value is its current one, because YNL consumers build their
// value-to-name tables in spec order and keep the last name. It returns nil
// when a is not an alias.
func (set *AttrSet) AliasOf(a *Attribute) *Attribute {
	var last *Attribute
	for _, b := range set.Attributes {
		if b.Num == a.Num {
			last = b
		}
	}
	if last == a {
		return nil
	}
	return last
}

// IsAsync reports whether op is a notification (notify or event) rather
// than a request.
func (op *Operation) IsAsync() bool {
	return op.Notify != "" || op.Event != nil
}

// SortedKeys returns the keys of m in order; a small helper for deterministic output.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// MsgType is the message type of an operation: its value, or the value of
// its do or dump request; -1 when it has none.
func (op *Operation) MsgType() int {
	if op.Value != nil {
		return *op.Value
	}
	for _, sub := range []*SubOp{op.Do, op.Dump} {
		if sub != nil && sub.Request != nil && sub.Request.Value != nil {
			return *sub.Request.Value
		}
	}
	return -1
}
