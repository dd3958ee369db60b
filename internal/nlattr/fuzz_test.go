package nlattr

import (
	"bytes"
	"testing"
)

// reencode decodes b as attributes, treating an attribute with the Nested
// flag whose payload decodes as a nest, and encodes what it found again. It
// returns false when b does not decode.
func reencode(e *Encoder, b []byte, depth int) bool {
	d := NewDecoder(b)
	for d.Next() {
		t := d.Type() | d.Flags()
		if d.Flags()&Nested != 0 && depth < 8 {
			var inner Encoder
			if reencode(&inner, d.Bytes(), depth+1) {
				off := e.Begin(d.Type() | d.Flags()&NetByteOrder)
				e.b = append(e.b, inner.Bytes()...)
				e.End(off)
				continue
			}
		}
		e.BytesAttr(t, d.Bytes())
	}
	return d.Err(func(uint16) string { return "attr" }) == nil
}

// FuzzDecoder checks that no input makes the decoder or its getters panic,
// and that decoding, encoding and decoding again is stable.
func FuzzDecoder(f *testing.F) {
	seeds := [][]byte{
		nil,
		attr(1, 7),
		cat(attr(1, 1, 2, 3, 4), attr(2|NetByteOrder, 0, 21), attr(3, 'f', 't', 'p', 0)),
		attr(1|Nested, cat(attr(2, 1, 2), attr(3|Nested, attr(4)...))...),
		cat(attr(1, 7), []byte{1, 2}),
		{9, 0, 2, 0, 1},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b)
		for d.Next() {
			// Every getter on every attribute, each on a decoder of its own
			// so that a length error does not end the walk.
			for get := range 13 {
				g := Decoder{data: d.Bytes(), typ: d.Type()}
				switch get {
				case 0:
					g.Uint8()
				case 1:
					g.Uint16()
				case 2:
					g.Uint16BE()
				case 3:
					g.Uint32()
				case 4:
					g.Uint32BE()
				case 5:
					g.Uint64()
				case 6:
					g.Uint64BE()
				case 7:
					g.Flag()
				case 8:
					g.Addr4()
				case 9:
					g.Addr16()
				case 10:
					_ = g.String()
				case 11:
					g.BytesCopy(1, 8)
				case 12:
					g.Fixed(4)
				}
				_ = g.Err(func(uint16) string { return "x" })
			}
		}
		_ = d.Err(func(uint16) string { return "x" })

		var e1 Encoder
		if !reencode(&e1, b, 0) {
			return
		}
		var e2 Encoder
		if !reencode(&e2, e1.Bytes(), 0) {
			t.Fatalf("our encoding does not decode:\ninput %x\nencoded %x", b, e1.Bytes())
		}
		if !bytes.Equal(e1.Bytes(), e2.Bytes()) {
			t.Fatalf("encoding is not stable:\nfirst  %x\nsecond %x", e1.Bytes(), e2.Bytes())
		}
	})
}
