package ctnetlink

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

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
	off += unix.NLMSG_HDRLEN + 4 + len(pre)
	msg := append(make([]byte, unix.NLMSG_HDRLEN+4), pre...)
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

func TestAttrPath(t *testing.T) {
	const start = unix.NLMSG_HDRLEN + 4 // first attribute of a request
	mark := rawAttr(uint16(FlowAttrMark), make([]byte, 4))
	src := rawAttr(uint16(TupleIPAttrV4Src), []byte{192, 0, 2, 1})
	ip := rawAttr(uint16(TupleAttrIP)|0x8000, src)
	orig := rawAttr(uint16(FlowAttrTupleOrig)|0x8000, ip)
	unknownInNest := rawAttr(uint16(FlowAttrTupleOrig)|0x8000, rawAttr(60, make([]byte, 4)))
	name := rawAttr(uint16(FlowAttrHelp)|0x8000, rawAttr(uint16(HelpAttrName), []byte("ftp\x00x")))
	req := func(attrs ...[]byte) []byte {
		b := make([]byte, start)
		for _, a := range attrs {
			b = append(b, a...)
		}
		return b
	}
	tests := []struct {
		name string
		req  []byte
		off  int
		want string
	}{
		{"in the nfgenmsg", req(mark), start - 1, ""},
		{"past the end", req(mark), start + len(mark), ""},
		{"top-level attribute", req(mark, orig), start + len(mark), "tuple-orig"},
		{"inside a top-level payload", req(mark), start + 6, "mark"},
		{"nested header", req(mark, orig), start + len(mark) + 4, "tuple-orig.tuple-ip"},
		{"innermost payload", req(mark, orig), start + len(mark) + 4 + 4 + 4 + 1, "tuple-orig.tuple-ip.ip-v4-src"},
		{"padding after a string", req(name), start + 4 + 4 + 5 + 1, "help"},
		{"unknown type", req(rawAttr(63, nil), mark), start, "attr-63"},
		{"unknown type inside a nest", req(unknownInNest), start + 4, "tuple-orig.attr-60"},
		{"inside an unknown type that looks nested", req(rawAttr(63, rawAttr(1, make([]byte, 8)))), start + 4 + 4, "attr-63"},
		{"truncated request", req(mark)[:start+2], start, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, attrPath(tt.req, schemaFlow, tt.off)); diff != "" {
				t.Errorf("attrPath(%x, %d) (-want +got):\n%s", tt.req, tt.off, diff)
			}
		})
	}
}
