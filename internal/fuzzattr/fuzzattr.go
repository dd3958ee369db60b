// Package fuzzattr is the fuzz harness shared by the generated packages:
// every attribute set's fuzz target seeds itself with the payloads of that
// set found in captured kernel messages and encoded requests, checks each
// seed, and fuzzes the set's decoder and encoder.
//
// The generated targets are one call each; what a seed must satisfy and
// what a fuzzed input must never do is written here, once.
package fuzzattr

import (
	"bytes"
	"fmt"
	"testing"
)

// Seed is a seed of a fuzz target: the attributes of one set, named after
// the message they were found in. A canonical seed is the kernel's own
// encoding, which encoding the decoded value must reproduce.
type Seed struct {
	Name      string
	Data      []byte
	Canonical bool
}

// Codec is what a generated attribute-set type implements.
type Codec interface {
	UnmarshalAttributes(b []byte) error
	AppendAttributes(b []byte) []byte
}

// Run seeds f with seeds and fuzzes the decoder of T, the Go type of the
// attribute set named set. It fails when there is no seed, when a seed
// does not decode and when a canonical seed does not re-encode to its own
// bytes. A fuzzed input must never panic; one that decodes must encode to
// bytes that decode, and encoding must then be stable.
func Run[T any, P interface {
	*T
	Codec
}](f *testing.F, set string, seeds []Seed) {
	f.Helper()
	if len(seeds) == 0 {
		f.Fatalf("no seed for %s: add a golden message or a request that holds it", set)
	}
	for _, s := range seeds {
		if err := CheckSeed(P(new(T)), s); err != nil {
			f.Error(err)
		}
		f.Add(s.Data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := RoundTrip(P(new(T)), P(new(T)), b); err != nil {
			t.Fatal(err)
		}
	})
}

// CheckSeed decodes s into v, which must be zero, and reports an error if
// it does not decode or, canonical, does not re-encode to its own bytes.
func CheckSeed(v Codec, s Seed) error {
	if err := v.UnmarshalAttributes(s.Data); err != nil {
		return fmt.Errorf("seed from %s: %v", s.Name, err)
	}
	if enc := v.AppendAttributes(nil); s.Canonical && !bytes.Equal(enc, s.Data) {
		return fmt.Errorf("seed from %s: re-encoding differs from the kernel's bytes:\nkernel %x\nours   %x", s.Name, s.Data, enc)
	}
	return nil
}

// RoundTrip decodes b into v1 and, if that succeeds, checks that the
// encoding of v1 decodes into v2 and encodes to the same bytes. Both
// values must be zero. Input that does not decode is no error.
func RoundTrip(v1, v2 Codec, b []byte) error {
	if v1.UnmarshalAttributes(b) != nil {
		return nil
	}
	enc1 := v1.AppendAttributes(nil)
	if err := v2.UnmarshalAttributes(enc1); err != nil {
		return fmt.Errorf("decoding our own encoding: %v\ninput %x\nencoded %x", err, b, enc1)
	}
	if enc2 := v2.AppendAttributes(nil); !bytes.Equal(enc1, enc2) {
		return fmt.Errorf("encoding is not stable:\nfirst  %x\nsecond %x", enc1, enc2)
	}
	return nil
}
