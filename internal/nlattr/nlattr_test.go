package nlattr

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// attr is one attribute, written out by the test itself: a native-endian
// length and type, the payload and zero padding to four bytes.
func attr(t uint16, payload ...byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, t)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func names(t uint16) string { return map[uint16]string{1: "one", 2: "two", 3: "three"}[t] }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDecoderGetters(t *testing.T) {
	ne := binary.NativeEndian
	tests := []struct {
		name    string
		payload []byte
		get     func(d *Decoder) any
		want    any
		wantErr string
	}{
		{"u8", []byte{0xfe}, func(d *Decoder) any { return d.Uint8() }, uint8(0xfe), ""},
		{"u8 short", nil, func(d *Decoder) any { return d.Uint8() }, uint8(0), "one: want 1 bytes, got 0"},
		{"u16", ne.AppendUint16(nil, 0x1234), func(d *Decoder) any { return d.Uint16() }, uint16(0x1234), ""},
		{"u16 long", []byte{1, 2, 3}, func(d *Decoder) any { return d.Uint16() }, uint16(0), "one: want 2 bytes, got 3"},
		{"u16 be", []byte{0x12, 0x34}, func(d *Decoder) any { return d.Uint16BE() }, uint16(0x1234), ""},
		{"u16 be short", []byte{0x12}, func(d *Decoder) any { return d.Uint16BE() }, uint16(0), "one: want 2 bytes, got 1"},
		{"u32", ne.AppendUint32(nil, 0xdeadbeef), func(d *Decoder) any { return d.Uint32() }, uint32(0xdeadbeef), ""},
		{"u32 short", []byte{1, 2}, func(d *Decoder) any { return d.Uint32() }, uint32(0), "one: want 4 bytes, got 2"},
		{"u32 be", []byte{0xde, 0xad, 0xbe, 0xef}, func(d *Decoder) any { return d.Uint32BE() }, uint32(0xdeadbeef), ""},
		{"u32 be long", make([]byte, 5), func(d *Decoder) any { return d.Uint32BE() }, uint32(0), "one: want 4 bytes, got 5"},
		{"u64", ne.AppendUint64(nil, 1<<40+7), func(d *Decoder) any { return d.Uint64() }, uint64(1<<40 + 7), ""},
		{"u64 short", make([]byte, 4), func(d *Decoder) any { return d.Uint64() }, uint64(0), "one: want 8 bytes, got 4"},
		{"u64 be", []byte{0, 0, 1, 0, 0, 0, 0, 7}, func(d *Decoder) any { return d.Uint64BE() }, uint64(1<<40 + 7), ""},
		{"u64 be short", make([]byte, 7), func(d *Decoder) any { return d.Uint64BE() }, uint64(0), "one: want 8 bytes, got 7"},
		{"flag", nil, func(d *Decoder) any { return d.Flag() }, true, ""},
		{"flag with payload", []byte{1}, func(d *Decoder) any { return d.Flag() }, true, "one: want 0 bytes, got 1"},
		{"addr4", []byte{192, 0, 2, 1}, func(d *Decoder) any { return d.Addr4() }, netip.MustParseAddr("192.0.2.1"), ""},
		{"addr4 from 16 bytes", make([]byte, 16), func(d *Decoder) any { return d.Addr4() }, netip.Addr{}, "one: want 4 bytes, got 16"},
		{"addr16", netip.MustParseAddr("2001:db8::1").AsSlice(), func(d *Decoder) any { return d.Addr16() }, netip.MustParseAddr("2001:db8::1"), ""},
		{"addr16 short", make([]byte, 4), func(d *Decoder) any { return d.Addr16() }, netip.Addr{}, "one: want 16 bytes, got 4"},
		{"string", []byte("ftp\x00"), func(d *Decoder) any { return d.String() }, "ftp", ""},
		{"string after NUL dropped", []byte("ftp\x00xy"), func(d *Decoder) any { return d.String() }, "ftp", ""},
		{"string without NUL", []byte("sip"), func(d *Decoder) any { return d.String() }, "sip", ""},
		{"bytes exact", []byte{1, 2}, func(d *Decoder) any { return d.BytesCopy(2, 2) }, []byte{1, 2}, ""},
		{"bytes exact wrong", []byte{1, 2, 3}, func(d *Decoder) any { return d.BytesCopy(2, 2) }, []byte(nil), "one: want 2 bytes, got 3"},
		{"bytes too short", []byte{1}, func(d *Decoder) any { return d.BytesCopy(2, -1) }, []byte(nil), "one: want at least 2 bytes, got 1"},
		{"bytes too long", []byte{1, 2, 3, 4, 5}, func(d *Decoder) any { return d.BytesCopy(0, 4) }, []byte(nil), "one: want 0 to 4 bytes, got 5"},
		{"bytes none wanted", []byte{1}, func(d *Decoder) any { return d.BytesCopy(0, 0) }, []byte(nil), "one: want 0 bytes, got 1"},
		{"bytes at most one", []byte{1, 2}, func(d *Decoder) any { return d.BytesCopy(0, 1) }, []byte(nil), "one: want 0 to 1 bytes, got 2"},
		{"bytes at the upper bound", []byte{1, 2}, func(d *Decoder) any { return d.BytesCopy(1, 2) }, []byte{1, 2}, ""},
		{"fixed", []byte{9, 8, 7}, func(d *Decoder) any { return d.Fixed(3) }, []byte{9, 8, 7}, ""},
		{"fixed wrong", []byte{9, 8}, func(d *Decoder) any { return d.Fixed(3) }, []byte(nil), "one: want 3 bytes, got 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(attr(1, tt.payload...))
			if !d.Next() {
				t.Fatalf("Next = false, error %v", d.Err(names))
			}
			got := tt.get(&d)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErr, errString(d.Err(names))); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBytesCopyDoesNotAlias(t *testing.T) {
	b := attr(1, 1, 2, 3, 4)
	d := NewDecoder(b)
	d.Next()
	got := d.BytesCopy(0, -1)
	b[4] = 0xff
	if diff := cmp.Diff([]byte{1, 2, 3, 4}, got); diff != "" {
		t.Errorf("copy changed with the buffer (-want +got):\n%s", diff)
	}
}

func TestDecoderWalk(t *testing.T) {
	type seen struct {
		Type, Flags uint16
		Payload     []byte
	}
	tests := []struct {
		name    string
		in      []byte
		want    []seen
		wantErr string
	}{
		{"empty", nil, nil, ""},
		{
			name: "types, flags and padding",
			in:   cat(attr(1, 7), attr(2|Nested, attr(3, 1, 2)...), attr(3|NetByteOrder, 1, 2, 3, 4)),
			want: []seen{{1, 0, []byte{7}}, {2, Nested, attr(3, 1, 2)}, {3, NetByteOrder, []byte{1, 2, 3, 4}}},
		},
		{
			name: "last attribute without its padding",
			in:   attr(1, 7)[:5],
			want: []seen{{1, 0, []byte{7}}},
		},
		{
			name:    "trailing bytes",
			in:      cat(attr(1, 7), []byte{1, 2}),
			want:    []seen{{1, 0, []byte{7}}},
			wantErr: "2 trailing bytes, too short for an attribute header",
		},
		{
			name:    "length past the end",
			in:      cat(attr(1), []byte{9, 0, 2, 0, 1}),
			want:    []seen{{1, 0, []byte{}}},
			wantErr: "two: attribute length 9 out of range (5 bytes left)",
		},
		{
			name:    "length shorter than a header",
			in:      []byte{3, 0, 3, 0},
			wantErr: "three: attribute length 3 out of range (4 bytes left)",
		},
		{
			name:    "unknown type named by the caller",
			in:      []byte{2, 0, 9, 0},
			wantErr: ": attribute length 2 out of range (4 bytes left)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []seen
			d := NewDecoder(tt.in)
			for d.Next() {
				got = append(got, seen{d.Type(), d.Flags(), d.Bytes()})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErr, errString(d.Err(names))); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// decodeNested decodes attribute 1 of b as a nest whose attribute 2 is a u16,
// as generated code does, and returns the error.
func decodeNested(b []byte) error {
	d := NewDecoder(b)
	for d.Next() {
		if d.Type() == 1 {
			inner := NewDecoder(d.Bytes())
			for inner.Next() {
				if inner.Type() == 2 {
					inner.Uint16()
				}
			}
			if err := inner.Err(names); err != nil {
				d.Fail(err)
			}
		}
	}
	return d.Err(names)
}

func TestErrorPath(t *testing.T) {
	sentinel := errors.New("sentinel")
	tests := []struct {
		name     string
		in       []byte
		wantPath []string
		wantMsg  string
	}{
		{"nested length", attr(1|Nested, attr(2, 1, 2, 3)...), []string{"one", "two"}, "one.two: want 2 bytes, got 3"},
		{"nested trailing bytes", attr(1|Nested, 1, 2), []string{"one"}, "one: 2 trailing bytes, too short for an attribute header"},
		{"nested bad header", attr(1|Nested, 9, 0, 2, 0), []string{"one", "two"}, "one.two: attribute length 9 out of range (4 bytes left)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeNested(tt.in)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if diff := cmp.Diff(tt.wantPath, pe.Path); diff != "" {
				t.Errorf("path (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantMsg, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
	// Fail keeps the first error and wraps the cause.
	d := NewDecoder(cat(attr(1), attr(2)))
	d.Next()
	d.Fail(sentinel)
	d.Fail(errors.New("second"))
	err := d.Err(names)
	if !errors.Is(err, sentinel) || err.Error() != "one: sentinel" {
		t.Errorf("got %v, want one: sentinel wrapping the cause", err)
	}
	if d.Next() {
		t.Error("Next went on after an error")
	}
	d.Reset(attr(3))
	if !d.Next() || d.Err(names) != nil || d.Type() != 3 {
		t.Error("Reset did not clear the error or point at the new buffer")
	}
}

func TestEncoder(t *testing.T) {
	ne := binary.NativeEndian
	tests := []struct {
		name string
		enc  func(e *Encoder)
		want []byte
	}{
		{"u8", func(e *Encoder) { e.Uint8(1, 0xab) }, attr(1, 0xab)},
		{"u16", func(e *Encoder) { e.Uint16(2, 0x1234) }, attr(2, ne.AppendUint16(nil, 0x1234)...)},
		{"u16 be", func(e *Encoder) { e.Uint16BE(2, 0x1234) }, attr(2, 0x12, 0x34)},
		{"u32", func(e *Encoder) { e.Uint32(3, 0xdeadbeef) }, attr(3, ne.AppendUint32(nil, 0xdeadbeef)...)},
		{"u32 be", func(e *Encoder) { e.Uint32BE(3, 0xdeadbeef) }, attr(3, 0xde, 0xad, 0xbe, 0xef)},
		{"u64", func(e *Encoder) { e.Uint64(4, 1<<40+7) }, attr(4, ne.AppendUint64(nil, 1<<40+7)...)},
		{"u64 be", func(e *Encoder) { e.Uint64BE(4, 1<<40+7) }, attr(4, 0, 0, 1, 0, 0, 0, 0, 7)},
		{"flag", func(e *Encoder) { e.Flag(5) }, attr(5)},
		{"addr4", func(e *Encoder) { e.Addr4(6, netip.MustParseAddr("192.0.2.1")) }, attr(6, 192, 0, 2, 1)},
		{"addr4 of mapped v6", func(e *Encoder) { e.Addr4(6, netip.MustParseAddr("::ffff:192.0.2.1")) }, attr(6, 192, 0, 2, 1)},
		{"addr4 of v6", func(e *Encoder) { e.Addr4(6, netip.MustParseAddr("2001:db8::1")) }, attr(6, 0, 0, 0, 0)},
		{"addr4 invalid", func(e *Encoder) { e.Addr4(6, netip.Addr{}) }, attr(6, 0, 0, 0, 0)},
		{"addr16", func(e *Encoder) { e.Addr16(7, netip.MustParseAddr("2001:db8::1")) }, attr(7, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)},
		{"addr16 invalid", func(e *Encoder) { e.Addr16(7, netip.Addr{}) }, attr(7, make([]byte, 16)...)},
		{"string", func(e *Encoder) { e.String(8, "ftp") }, attr(8, 'f', 't', 'p', 0)},
		{"string padded", func(e *Encoder) { e.String(8, "sip1") }, attr(8, 's', 'i', 'p', '1', 0)},
		{"bytes", func(e *Encoder) { e.BytesAttr(9, []byte{1, 2, 3}) }, attr(9, 1, 2, 3)},
		{
			name: "nest",
			enc: func(e *Encoder) {
				off := e.Begin(10)
				e.Uint8(1, 1)
				inner := e.Begin(2)
				e.Flag(3)
				e.End(inner)
				e.End(off)
			},
			want: attr(10|Nested, cat(attr(1, 1), attr(2|Nested, attr(3)...))...),
		},
		{"empty nest", func(e *Encoder) { e.End(e.Begin(11)) }, attr(11 | Nested)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte{0xaa, 0xbb, 0xcc, 0xdd}
			e := NewEncoder(append([]byte(nil), prefix...))
			tt.enc(&e)
			if diff := cmp.Diff(cat(prefix, tt.want), e.Bytes()); diff != "" {
				t.Errorf("bytes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlagsString(t *testing.T) {
	type bits uint16
	table := []FlagName[bits]{{Bit: 4, Name: "c"}, {Bit: 1, Name: "a"}, {Bit: 2, Name: "b"}}
	tests := []struct {
		in   bits
		want string
	}{
		{0, "0"},
		{1, "a"},
		{5, "c|a"}, // in the table's order
		{7, "c|a|b"},
		{0x101, "a|0x100"},
		{0x300, "0x300"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, FlagsString(tt.in, table)); diff != "" {
			t.Errorf("FlagsString(%#x) (-want +got):\n%s", uint16(tt.in), diff)
		}
	}
}
