package basic

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctspec/ctspec/internal/fuzzattr"
	"github.com/ctspec/ctspec/internal/nlattr"
)

// fuzzSeeds gives the generated fuzz targets a value of every set, from the
// encoder: none of them is canonical, as no kernel sent them.
func fuzzSeeds(_ testing.TB, set int) []fuzzattr.Seed {
	switch set {
	case schemaOuter:
		return []fuzzattr.Seed{{Name: "sample", Data: sample().AppendAttributes(nil)}}
	case schemaInner:
		in := sample().Inner
		return []fuzzattr.Seed{{Name: "sample inner", Data: in.AppendAttributes(nil)}}
	}
	return nil
}

func sample() *Outer {
	var v Outer
	v.Inner.SetV4(netip.MustParseAddr("192.0.2.1"))
	v.Inner.SetV6(netip.MustParseAddr("2001:db8::1"))
	v.Inner.SetPort(0) // present although zero
	v.SetColour(ColourBlue)
	v.SetBits(BitsLow | BitsHigh)
	v.SetLabel("ftp")
	v.SetBlob([]byte{1, 2, 3})
	v.SetCounter(1 << 40)
	v.SetHost(7)
	v.SetPair(Pair{Flags: BitsMid, Mask: BitsMid | BitsLow, Port: 8080})
	v.SetEnabled(true)
	var spare Inner
	spare.SetPort(53)
	v.SetSpare(&spare)
	return &v
}

func TestRoundTrip(t *testing.T) {
	want := sample()
	b := want.AppendAttributes(nil)
	var got Outer
	if err := got.UnmarshalAttributes(b); err != nil {
		t.Fatal(err)
	}
	opt := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	if diff := cmp.Diff(*want, got, opt, cmp.AllowUnexported(Outer{}, Inner{})); diff != "" {
		// Decoding marks every attribute present; compare fields only.
		if diff := cmp.Diff(*want, got, opt, cmp.AllowUnexported(Outer{}, Inner{}), cmp.FilterPath(func(p cmp.Path) bool {
			return p.Last().String() == ".present"
		}, cmp.Ignore())); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
	if !got.Inner.Has(InnerAttrPort) || got.Inner.Port != 0 {
		t.Error("a zero attribute marked present was not encoded")
	}
	if got.Spare == nil || got.Spare == want.Spare || got.Spare.Port != 53 {
		t.Errorf("pointer nest decoded as %+v", got.Spare)
	}
	var again Outer
	if err := again.UnmarshalAttributes(b); err != nil || again.Spare == got.Spare {
		t.Error("a decode reused the pointer nest of another value")
	}
	var none Outer
	if none.Has(OuterAttrSpare) || none.Spare.Has(InnerAttrPort) {
		t.Error("a nil pointer nest reports attributes")
	}
	if got.Has(OuterAttrCounter) != true || got.Has(OuterAttrPad) {
		t.Error("Has is wrong")
	}
	if b2 := got.AppendAttributes(nil); string(b2) != string(b) {
		t.Errorf("re-encoding differs:\n%x\n%x", b, b2)
	}
}

func TestAbsentIsNotEncoded(t *testing.T) {
	var v Outer
	if b := v.AppendAttributes(nil); len(b) != 0 {
		t.Fatalf("empty value encodes to %x", b)
	}
	v.SetHost(0)
	if b := v.AppendAttributes(nil); len(b) != 8 || !v.Has(OuterAttrHost) {
		t.Fatalf("zero u32 set with SetHost encodes to %x, want 8 bytes", b)
	}
	v.Clear(OuterAttrHost)
	if v.Has(OuterAttrHost) {
		t.Fatal("cleared attribute still present")
	}
}

// TestPresentOnly checks that presence is one thing: a field written
// directly is neither present nor encoded, strayField names it, and a nest
// is present when an attribute inside it is.
func TestPresentOnly(t *testing.T) {
	var v Outer
	v.Host = 7
	v.Inner.Port = 53
	if v.Has(OuterAttrHost) || v.Has(OuterAttrInner) || v.Inner.Has(InnerAttrPort) {
		t.Error("a field written directly reports present")
	}
	if b := v.AppendAttributes(nil); len(b) != 0 {
		t.Errorf("fields written directly encode to %x", b)
	}
	if got := v.strayField(); got != "Inner.Port" && got != "Host" {
		t.Errorf("strayField = %q, want Host or Inner.Port", got)
	}
	v.SetHost(7)
	if got := v.strayField(); got != "Inner.Port" {
		t.Errorf("strayField = %q, want Inner.Port", got)
	}
	v.Inner.SetPort(53)
	if got := v.strayField(); got != "" {
		t.Errorf("strayField = %q after the setters", got)
	}
	if !v.Has(OuterAttrInner) {
		t.Error("a nest holding a present attribute is not present")
	}
	v.Spare = &Inner{}
	v.Spare.V4 = netip.MustParseAddr("192.0.2.9")
	if got := v.strayField(); got != "Spare.V4" {
		t.Errorf("strayField = %q, want Spare.V4", got)
	}
	if v.Has(OuterAttrSpare) {
		t.Error("a pointer nest holding only a stray field is present")
	}
	var d Outer
	if err := d.UnmarshalAttributes(sample().AppendAttributes(nil)); err != nil {
		t.Fatal(err)
	}
	if got := d.strayField(); got != "" {
		t.Errorf("decoded value has stray field %q", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		path string
	}{
		{"short u8", []byte{4, 0, 2, 0}, "colour: want 1 bytes, got 0"},
		{"bad nested v4", []byte{12, 0, 1, 0x80, 7, 0, 1, 0, 1, 2, 3, 0}, "inner.in-v4: want 4 bytes, got 3"},
		{"length past end", []byte{40, 0, 2, 0}, "colour: attribute length 40 out of range (4 bytes left)"},
		{"truncated header", []byte{5, 0, 2, 0, 1, 0, 0, 0, 1}, "1 trailing bytes"},
		{"nested trailing bytes", []byte{5, 0, 1, 0x80, 9, 0, 0, 0}, "inner: 1 trailing bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Outer
			err := v.UnmarshalAttributes(tt.in)
			var pe *nlattr.Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want *nlattr.Error", err)
			}
			if got := err.Error(); len(got) < len(tt.path) || got[:len(tt.path)] != tt.path {
				t.Errorf("error %q does not start with %q", got, tt.path)
			}
		})
	}
}

func TestUnknownCounted(t *testing.T) {
	var v Outer
	if err := v.UnmarshalAttributes([]byte{5, 0, 60, 0, 9, 0, 0, 0, 5, 0, 2, 0, 1, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if v.Unknown != 1 || v.Colour != ColourGreen {
		t.Fatalf("unknown=%d colour=%v", v.Unknown, v.Colour)
	}
}

func TestStrings(t *testing.T) {
	if got := (BitsLow | BitsHigh | 0x10).String(); got != "low|high|0x10" {
		t.Errorf("flags String = %q", got)
	}
	if got := Colour(9).String(); got != "Colour(9)" {
		t.Errorf("enum String = %q", got)
	}
	if got := OuterAttrInner.String(); got != "inner" {
		t.Errorf("attr String = %q", got)
	}
}

// TestEmptyWithPointerNest checks empty, which decides whether an
// enclosing nest is encoded, on a set whose last attribute is a pointer
// nest: a nil or empty pointer nest must not hide the other attributes,
// nor must a nil one be dereferenced.
func TestEmptyWithPointerNest(t *testing.T) {
	var o Outer
	if !o.empty() {
		t.Error("zero Outer: not empty")
	}
	o.SetColour(3)
	if o.empty() {
		t.Error("Outer with a colour and a nil spare: empty")
	}
	o.Spare = &Inner{}
	if o.empty() {
		t.Error("Outer with a colour and an empty spare: empty")
	}
	o = Outer{Spare: &Inner{}}
	if !o.empty() {
		t.Error("Outer with only an empty spare: not empty")
	}
	o.Spare.SetPort(1)
	if o.empty() {
		t.Error("Outer with a spare holding a port: empty")
	}
}
