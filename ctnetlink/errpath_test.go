package ctnetlink

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctspec/ctspec/internal/spec"
)

// TestAttrPathEveryNest names the extended-ACK offset of an attribute inside
// every nest a flow or expectation request can hold, at every depth. The
// messages and the expected paths come from the spec itself, not from the
// generated schema that attrPath walks, so a nest the schema forgets (a
// pointer nest, say) shows up as a path that stops at the nest.
func TestAttrPathEveryNest(t *testing.T) {
	s, err := spec.Load(filepath.Join("..", "spec", "conntrack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tops := []struct {
		set string
		top int
	}{
		{"conntrack-attrs", schemaFlow},
		{"expect-attrs", schemaExpect},
	}
	n := 0
	for _, tt := range tops {
		set := s.Set(tt.set)
		if set == nil {
			t.Fatalf("spec has no set %s", tt.set)
		}
		walkNests(s, set, nil, nil, func(types []uint16, names []string) {
			n++
			msg, off := requestWithPath(types)
			want := strings.Join(names, ".")
			if got := attrPath(msg, tt.top, off); got != want {
				t.Errorf("%s: offset %d of %x: got path %q, want %q", tt.set, off, msg, got, want)
			}
		})
	}
	if n == 0 {
		t.Fatal("no nest found in the spec")
	}
}

// walkNests calls check with the attribute types and names of every path that
// ends at an attribute of set or of a set nested in it, reached through
// the nests types and names lead through.
func walkNests(s *spec.Spec, set *spec.AttrSet, types []uint16, names []string, check func([]uint16, []string)) {
	for _, a := range set.Attributes {
		if set.AliasOf(a) != nil || a.Type == "pad" || a.Type == "unused" {
			continue
		}
		ts := append(types[:len(types):len(types)], uint16(a.Num))
		ns := append(names[:len(names):len(names)], a.Name)
		check(ts, ns)
		if a.Type == "nest" {
			walkNests(s, s.Set(a.NestedAttributes), ts, ns, check)
		}
	}
}

// requestWithPath builds a request (netlink header, nfgenmsg, attributes)
// holding the attribute at the end of types inside the nests before it, with
// an unknown attribute ahead of it at every level so that offsets are not
// trivial, and returns the request and the offset of that attribute.
func requestWithPath(types []uint16) ([]byte, int) {
	last := len(types) - 1
	inner := rawAttr(types[last], make([]byte, 4))
	off := 0
	for i := last - 1; i >= 0; i-- {
		pre := rawAttr(0x3ffe, make([]byte, 4))
		off += len(pre) + 4
		inner = rawAttr(types[i]|0x8000, append(pre, inner...))
	}
	pre := rawAttr(0x3fff, make([]byte, 8))
	off += nlmsgHeaderLen + 4 + len(pre)
	msg := append(make([]byte, nlmsgHeaderLen+4), pre...)
	return append(msg, inner...), off
}

// rawAttr is one attribute of type t, padded to four bytes.
func rawAttr(t uint16, payload []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, t)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
