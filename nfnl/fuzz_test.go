package nfnl

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecodeError decodes a whole netlink message. A message that decodes
// must encode to a message that decodes to the same Error.
func FuzzDecodeError(f *testing.F) {
	for _, tt := range decodeErrorTests {
		f.Add(tt.b)
	}
	for _, tt := range malformedErrorTests {
		f.Add(tt.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := parseMessage(b)
		e, err := DecodeError(m)
		if err != nil {
			if e != nil {
				t.Fatalf("got an Error %+v with decoding error %v", e, err)
			}
			_ = err.Error()
			return
		}
		_ = e.Error()

		enc := e.Encode()
		if enc.Header.Length != uint32(16+len(enc.Data)) || enc.Header.Length%4 != 0 {
			t.Fatalf("encoded length %d does not match a payload of %d bytes", enc.Header.Length, len(enc.Data))
		}
		if want := m.Header.Type; enc.Header.Type != want {
			t.Fatalf("encoded type %v, want %v", enc.Header.Type, want)
		}
		again, err := DecodeError(enc)
		if err != nil {
			t.Fatalf("failed to decode the encoding of %+v: %v", e, err)
		}
		if diff := cmp.Diff(e, again, cmpEmptyBytes); diff != "" {
			t.Fatalf("unstable decode (-first +second):\n%s", diff)
		}
	})
}

// FuzzParseHeader parses an nfgenmsg header. Whatever parses must encode to
// the same bytes and parse again to the same header.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0})
	f.Add([]byte{2, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 10})
	f.Add(append(Header{Family: 10, ResourceID: 0x0102}.Append(nil), 8, 0, 1, 0, 1, 2, 3, 4))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, rest, err := ParseHeader(b)
		if err != nil {
			if len(b) >= HeaderLen {
				t.Fatalf("failed to parse %d bytes: %v", len(b), err)
			}
			return
		}
		out := append(h.Append(nil), rest...)
		if !bytes.Equal(b, out) {
			t.Fatalf("re-encoding changed the bytes:\n got %x\nwant %x", out, b)
		}
		h2, rest2, err := ParseHeader(out)
		if err != nil {
			t.Fatalf("failed to parse the re-encoding: %v", err)
		}
		if diff := cmp.Diff(h, h2); diff != "" {
			t.Fatalf("unstable header (-first +second):\n%s", diff)
		}
		if !bytes.Equal(rest, rest2) {
			t.Fatalf("unstable attributes: %x, then %x", rest, rest2)
		}
	})
}
