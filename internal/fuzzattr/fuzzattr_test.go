package fuzzattr

import (
	"errors"
	"strings"
	"testing"
)

// toy is a codec of one byte per attribute, with switches that make it
// wrong in each way the harness must notice.
type toy struct {
	v []byte
	// reject makes decoding fail on an input starting with 0xff.
	reject bool
	// pad makes encoding append a zero after the kernel's bytes, so a
	// canonical seed does not re-encode to itself.
	pad bool
	// drift makes encoding differ each time: it appends the length of the
	// decoded input.
	drift bool
	// failOwn makes decoding fail on anything this codec encoded (marked
	// by a leading 0xee).
	failOwn bool
}

func (c *toy) UnmarshalAttributes(b []byte) error {
	if len(b) > 0 && (c.reject && b[0] == 0xff || c.failOwn && b[0] == 0xee) {
		return errors.New("bad input")
	}
	c.v = append(c.v[:0], b...)
	return nil
}

func (c *toy) AppendAttributes(b []byte) []byte {
	if c.failOwn {
		b = append(b, 0xee)
	}
	b = append(b, c.v...)
	if c.pad {
		b = append(b, 0)
	}
	if c.drift {
		b = append(b, byte(len(c.v)))
	}
	return b
}

func TestCheckSeed(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    toy
		seed Seed
		want string // substring of the error, "" for none
	}{
		{"good canonical", toy{}, Seed{"msg", []byte{1, 2}, true}, ""},
		{"undecodable", toy{reject: true}, Seed{"msg", []byte{0xff}, false}, "seed from msg: bad input"},
		{"not canonical", toy{pad: true}, Seed{"msg", []byte{1}, true}, "re-encoding differs"},
		{"non-canonical seed may re-encode differently", toy{pad: true}, Seed{"req", []byte{1}, false}, ""},
	} {
		err := CheckSeed(&tc.c, tc.seed)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		v1, v2 toy
		in     []byte
		want   string
	}{
		{"stable", toy{}, toy{}, []byte{1, 2, 3}, ""},
		{"undecodable input is no error", toy{reject: true}, toy{reject: true}, []byte{0xff}, ""},
		{"own encoding does not decode", toy{failOwn: true}, toy{failOwn: true}, []byte{1}, "decoding our own encoding"},
		{"unstable", toy{drift: true}, toy{drift: true}, []byte{1}, "encoding is not stable"},
	} {
		err := RoundTrip(&tc.v1, &tc.v2, tc.in)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// FuzzToy runs the harness itself on the toy codec, as a generated target
// does.
func FuzzToy(f *testing.F) {
	Run[toy](f, "toy-attrs", []Seed{{"msg", []byte{1, 2}, true}, {"req", nil, false}})
}
