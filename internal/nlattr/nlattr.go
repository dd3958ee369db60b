// Package nlattr is the attribute codec that the generated ctnetlink code is
// built on: a zero-copy decoder that walks netlink attributes in place and an
// append-only encoder.
//
// The decoder never copies a payload and never panics on malformed input. It
// records the first error, stops, and reports it with the path of attribute
// names that led to it. Neither the decoder nor the encoder is safe for
// concurrent use.
package nlattr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

const (
	headerLen = 4
	// TypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER from an attribute type.
	TypeMask = 0x3fff
	// Nested is NLA_F_NESTED.
	Nested = 0x8000
	// NetByteOrder is NLA_F_NET_BYTEORDER.
	NetByteOrder = 0x4000
)

func align(n int) int { return (n + 3) &^ 3 }

// Decoder iterates over the attributes of one attribute set in a buffer.
// It is not safe for concurrent use.
type Decoder struct {
	b       []byte
	data    []byte
	typ     uint16
	flags   uint16
	err     error
	errType uint16
	errAttr bool // err belongs to the attribute errType
}

// NewDecoder returns a decoder over the attributes in b.
func NewDecoder(b []byte) Decoder { return Decoder{b: b} }

// Reset points d at b and clears any error.
func (d *Decoder) Reset(b []byte) { *d = Decoder{b: b} }

// Next advances to the next attribute. It returns false at the end of the
// buffer or after an error.
func (d *Decoder) Next() bool {
	if d.err != nil || len(d.b) == 0 {
		return false
	}
	if len(d.b) < headerLen {
		d.err = &Error{Err: fmt.Errorf("%d trailing bytes, too short for an attribute header", len(d.b))}
		return false
	}
	l := int(binary.NativeEndian.Uint16(d.b))
	t := binary.NativeEndian.Uint16(d.b[2:])
	if l < headerLen || l > len(d.b) {
		d.err = fmt.Errorf("attribute length %d out of range (%d bytes left)", l, len(d.b))
		d.errType, d.errAttr = t&TypeMask, true
		return false
	}
	d.typ = t & TypeMask
	d.flags = t &^ TypeMask
	d.data = d.b[headerLen:l]
	if a := align(l); a < len(d.b) {
		d.b = d.b[a:]
	} else {
		d.b = d.b[len(d.b):]
	}
	return true
}

// Type is the current attribute's type without flag bits.
func (d *Decoder) Type() uint16 { return d.typ }

// Flags are the current attribute's flag bits (Nested, NetByteOrder).
func (d *Decoder) Flags() uint16 { return d.flags }

// Bytes returns the current payload. It aliases the decoder's buffer.
func (d *Decoder) Bytes() []byte { return d.data }

func (d *Decoder) lenErr(want int) {
	if d.err == nil {
		d.err = fmt.Errorf("want %d bytes, got %d", want, len(d.data))
		d.errType, d.errAttr = d.typ, true
	}
}

// Fail records err against the current attribute unless an error is recorded already.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
		d.errType, d.errAttr = d.typ, true
	}
}

// FailNested records an error that a nested set returned for the current attribute.
func (d *Decoder) FailNested(err error) { d.Fail(err) }

// Uint8 reads the payload as a u8.
func (d *Decoder) Uint8() uint8 {
	if len(d.data) != 1 {
		d.lenErr(1)
		return 0
	}
	return d.data[0]
}

// Uint16 reads a host-order u16.
func (d *Decoder) Uint16() uint16 {
	if len(d.data) != 2 {
		d.lenErr(2)
		return 0
	}
	return binary.NativeEndian.Uint16(d.data)
}

// Uint16BE reads a big-endian u16.
func (d *Decoder) Uint16BE() uint16 {
	if len(d.data) != 2 {
		d.lenErr(2)
		return 0
	}
	return binary.BigEndian.Uint16(d.data)
}

// Uint32 reads a host-order u32.
func (d *Decoder) Uint32() uint32 {
	if len(d.data) != 4 {
		d.lenErr(4)
		return 0
	}
	return binary.NativeEndian.Uint32(d.data)
}

// Uint32BE reads a big-endian u32.
func (d *Decoder) Uint32BE() uint32 {
	if len(d.data) != 4 {
		d.lenErr(4)
		return 0
	}
	return binary.BigEndian.Uint32(d.data)
}

// Uint64 reads a host-order u64.
func (d *Decoder) Uint64() uint64 {
	if len(d.data) != 8 {
		d.lenErr(8)
		return 0
	}
	return binary.NativeEndian.Uint64(d.data)
}

// Uint64BE reads a big-endian u64.
func (d *Decoder) Uint64BE() uint64 {
	if len(d.data) != 8 {
		d.lenErr(8)
		return 0
	}
	return binary.BigEndian.Uint64(d.data)
}

// Flag reports that a flag attribute is present; its payload must be empty.
func (d *Decoder) Flag() bool {
	if len(d.data) != 0 {
		d.lenErr(0)
	}
	return true
}

// Addr4 reads a 4-byte IPv4 address.
func (d *Decoder) Addr4() netip.Addr {
	if len(d.data) != 4 {
		d.lenErr(4)
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(d.data))
}

// Addr16 reads a 16-byte IPv6 address.
func (d *Decoder) Addr16() netip.Addr {
	if len(d.data) != 16 {
		d.lenErr(16)
		return netip.Addr{}
	}
	return netip.AddrFrom16([16]byte(d.data))
}

// String reads a string attribute, dropping the NUL terminator and anything after it.
func (d *Decoder) String() string {
	b := d.data
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	return string(b)
}

// BytesCopy returns a copy of the payload, checking its length against
// min and max (max < 0 means unbounded).
func (d *Decoder) BytesCopy(min, max int) []byte {
	if len(d.data) < min || (max >= 0 && len(d.data) > max) {
		if d.err == nil {
			if min == max {
				d.err = fmt.Errorf("want %d bytes, got %d", min, len(d.data))
			} else if max < 0 {
				d.err = fmt.Errorf("want at least %d bytes, got %d", min, len(d.data))
			} else {
				d.err = fmt.Errorf("want %d to %d bytes, got %d", min, max, len(d.data))
			}
			d.errType, d.errAttr = d.typ, true
		}
		return nil
	}
	return append([]byte(nil), d.data...)
}

// Fixed checks that the payload is exactly n bytes long and returns it
// (aliasing the buffer), or nil after recording an error.
func (d *Decoder) Fixed(n int) []byte {
	if len(d.data) != n {
		d.lenErr(n)
		return nil
	}
	return d.data
}

// Err returns the first error, annotated with the attribute name that name
// gives for the failing attribute's type, or nil.
func (d *Decoder) Err(name func(uint16) string) error {
	if d.err == nil {
		return nil
	}
	if !d.errAttr {
		return d.err
	}
	return prepend(name(d.errType), d.err)
}

// Error is a decoding error with the path of attribute names that led to it,
// outermost first, such as tuple-orig.tuple-ip.ip-v4-src. It is not changed
// after it is returned, so it is safe for concurrent reads.
type Error struct {
	Path []string
	Err  error
}

// Error returns the path joined by dots, a colon and the cause.
func (e *Error) Error() string {
	if len(e.Path) == 0 {
		return e.Err.Error()
	}
	return strings.Join(e.Path, ".") + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func prepend(name string, err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		path := make([]string, 0, len(pe.Path)+1)
		path = append(path, name)
		return &Error{Path: append(path, pe.Path...), Err: pe.Err}
	}
	return &Error{Path: []string{name}, Err: err}
}

// Encoder appends attributes to a buffer. It is not safe for concurrent use.
type Encoder struct {
	b []byte
}

// NewEncoder returns an encoder appending to b.
func NewEncoder(b []byte) Encoder { return Encoder{b: b} }

// Bytes returns the encoded buffer.
func (e *Encoder) Bytes() []byte { return e.b }

func (e *Encoder) header(t uint16, n int) {
	e.b = binary.NativeEndian.AppendUint16(e.b, uint16(headerLen+n))
	e.b = binary.NativeEndian.AppendUint16(e.b, t)
}

func (e *Encoder) pad() {
	for len(e.b)%4 != 0 {
		e.b = append(e.b, 0)
	}
}

// Uint8 appends a u8 attribute.
func (e *Encoder) Uint8(t uint16, v uint8) {
	e.header(t, 1)
	e.b = append(e.b, v, 0, 0, 0)
}

// Uint16 appends a host-order u16 attribute.
func (e *Encoder) Uint16(t uint16, v uint16) {
	e.header(t, 2)
	e.b = binary.NativeEndian.AppendUint16(e.b, v)
	e.b = append(e.b, 0, 0)
}

// Uint16BE appends a big-endian u16 attribute.
func (e *Encoder) Uint16BE(t uint16, v uint16) {
	e.header(t, 2)
	e.b = binary.BigEndian.AppendUint16(e.b, v)
	e.b = append(e.b, 0, 0)
}

// Uint32 appends a host-order u32 attribute.
func (e *Encoder) Uint32(t uint16, v uint32) {
	e.header(t, 4)
	e.b = binary.NativeEndian.AppendUint32(e.b, v)
}

// Uint32BE appends a big-endian u32 attribute.
func (e *Encoder) Uint32BE(t uint16, v uint32) {
	e.header(t, 4)
	e.b = binary.BigEndian.AppendUint32(e.b, v)
}

// Uint64 appends a host-order u64 attribute.
func (e *Encoder) Uint64(t uint16, v uint64) {
	e.header(t, 8)
	e.b = binary.NativeEndian.AppendUint64(e.b, v)
}

// Uint64BE appends a big-endian u64 attribute.
func (e *Encoder) Uint64BE(t uint16, v uint64) {
	e.header(t, 8)
	e.b = binary.BigEndian.AppendUint64(e.b, v)
}

// Flag appends an empty flag attribute.
func (e *Encoder) Flag(t uint16) { e.header(t, 0) }

// Addr4 appends a 4-byte IPv4 address. An IPv6 or invalid address is
// written as its 4-byte form if it has one, else as zeros.
func (e *Encoder) Addr4(t uint16, a netip.Addr) {
	e.header(t, 4)
	if a.Is4() || a.Is4In6() {
		v := a.Unmap().As4()
		e.b = append(e.b, v[:]...)
		return
	}
	e.b = append(e.b, 0, 0, 0, 0)
}

// Addr16 appends a 16-byte IPv6 address.
func (e *Encoder) Addr16(t uint16, a netip.Addr) {
	e.header(t, 16)
	v := a.As16()
	if !a.IsValid() {
		v = [16]byte{}
	}
	e.b = append(e.b, v[:]...)
}

// String appends a NUL-terminated string attribute.
func (e *Encoder) String(t uint16, s string) {
	e.header(t, len(s)+1)
	e.b = append(e.b, s...)
	e.b = append(e.b, 0)
	e.pad()
}

// BytesAttr appends a binary attribute.
func (e *Encoder) BytesAttr(t uint16, v []byte) {
	e.header(t, len(v))
	e.b = append(e.b, v...)
	e.pad()
}

// Begin starts a nested attribute and returns its offset for End.
func (e *Encoder) Begin(t uint16) int {
	off := len(e.b)
	e.header(t|Nested, 0)
	return off
}

// End closes the nested attribute started at off.
func (e *Encoder) End(off int) {
	binary.NativeEndian.PutUint16(e.b[off:], uint16(len(e.b)-off))
}

// FlagName names one bit of a flags type.
type FlagName[T ~uint8 | ~uint16 | ~uint32 | ~uint64] struct {
	Bit  T
	Name string
}

// FlagsString returns the names of the bits set in v joined by |, with bits
// that names lacks in hex, or "0".
func FlagsString[T ~uint8 | ~uint16 | ~uint32 | ~uint64](v T, names []FlagName[T]) string {
	if v == 0 {
		return "0"
	}
	var b strings.Builder
	for _, n := range names {
		if v&n.Bit != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n.Name)
			v &^= n.Bit
		}
	}
	if v != 0 {
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		fmt.Fprintf(&b, "0x%x", uint64(v))
	}
	return b.String()
}
