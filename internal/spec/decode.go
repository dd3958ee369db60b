package spec

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes n into out (a pointer to struct), rejecting unknown keys
// at every level and recording Line fields.
func decodeStrict(n *yaml.Node, out any) error {
	return decodeValue(n, reflect.ValueOf(out).Elem())
}

type posError struct {
	line int
	msg  string
}

func (e *posError) Error() string { return e.msg }

func lineOf(err error) int {
	if pe, ok := err.(*posError); ok {
		return pe.line
	}
	return 0
}

func msgOf(err error) string {
	if pe, ok := err.(*posError); ok {
		return pe.msg
	}
	return err.Error()
}

func decodeValue(n *yaml.Node, v reflect.Value) error {
	if n.Kind == yaml.AliasNode {
		return &posError{n.Line, "YAML aliases are not allowed"}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := decodeValue(n, p.Elem()); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		return decodeStruct(n, v)
	case reflect.Slice:
		return decodeSlice(n, v)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			return &posError{n.Line, err.Error()}
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
		return nil
	default:
		if n.Kind != yaml.ScalarNode {
			return &posError{n.Line, fmt.Sprintf("want a scalar, got %s", kindName(n))}
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return &posError{n.Line, strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		return nil
	}
}

// decodeStruct decodes mapping n into struct v, whose yaml tags name the
// keys it allows; an Entry may also be a bare name.
func decodeStruct(n *yaml.Node, v reflect.Value) error {
	if v.Type() == reflect.TypeOf(Entry{}) && n.Kind == yaml.ScalarNode {
		v.FieldByName("Name").SetString(n.Value)
		v.FieldByName("Line").SetInt(int64(n.Line))
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &posError{n.Line, fmt.Sprintf("want a mapping, got %s", kindName(n))}
	}
	fields := map[string]int{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	if f, ok := t.FieldByName("Line"); ok {
		v.FieldByIndex(f.Index).SetInt(int64(n.Line))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		if !ok {
			return &posError{k.Line, fmt.Sprintf("unknown key %q (not in the netlink-raw schema for %s)", k.Value, typeLabel(t))}
		}
		if seen[k.Value] {
			return &posError{k.Line, fmt.Sprintf("duplicate key %q", k.Value)}
		}
		seen[k.Value] = true
		if err := decodeValue(val, v.Field(idx)); err != nil {
			return err
		}
	}
	return nil
}

// decodeSlice decodes list n into slice v.
func decodeSlice(n *yaml.Node, v reflect.Value) error {
	if n.Kind != yaml.SequenceNode {
		return &posError{n.Line, fmt.Sprintf("want a list, got %s", kindName(n))}
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		if c.Tag == "!!null" {
			return &posError{c.Line, "empty list item"}
		}
		if err := decodeValue(c, s.Index(i)); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func typeLabel(t reflect.Type) string {
	switch t.Name() {
	case "Spec":
		return "the top level"
	case "AttrSet":
		return "an attribute set"
	}
	name := strings.ToLower(t.Name())
	if strings.ContainsRune("aeiou", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}
