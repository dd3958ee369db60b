package nfnl

import (
	"encoding/binary"

	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// cmpEmptyBytes treats nil and empty slices as equal.
var cmpEmptyBytes = cmpopts.EquateEmpty()

// nlmsghdr returns a struct nlmsghdr in host byte order.
func nlmsghdr(length uint32, typ netlink.HeaderType, flags netlink.HeaderFlags, seq, pid uint32) []byte {
	b := binary.NativeEndian.AppendUint32(nil, length)
	b = binary.NativeEndian.AppendUint16(b, uint16(typ))
	b = binary.NativeEndian.AppendUint16(b, uint16(flags))
	b = binary.NativeEndian.AppendUint32(b, seq)
	return binary.NativeEndian.AppendUint32(b, pid)
}

// kmsg lays out a whole netlink message: its nlmsghdr, whose length covers the
// header and the concatenated parts, then the parts.
func kmsg(typ netlink.HeaderType, flags netlink.HeaderFlags, seq, pid uint32, parts ...[]byte) []byte {
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	return append(nlmsghdr(uint32(16+len(body)), typ, flags, seq, pid), body...)
}

// code returns the int error field of struct nlmsgerr for errno: its negation.
func code(errno unix.Errno) []byte {
	return binary.NativeEndian.AppendUint32(nil, uint32(-int32(errno)))
}

// rawCode returns the int error field holding c as is.
func rawCode(c int32) []byte {
	return binary.NativeEndian.AppendUint32(nil, uint32(c))
}

// attr returns a netlink attribute padded to four bytes.
func attr(t uint16, v []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(v)))
	b = binary.NativeEndian.AppendUint16(b, t)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// rawAttr returns a netlink attribute header claiming length l, then v, with no
// padding and no check.
func rawAttr(l, t uint16, v []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, l)
	b = binary.NativeEndian.AppendUint16(b, t)
	return append(b, v...)
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// cstr returns s with its NUL terminator.
func cstr(s string) []byte { return append([]byte(s), 0) }

// zeros returns n zero bytes.
func zeros(n int) []byte { return make([]byte, n) }

// parseMessage splits one netlink message in b into header and payload, the
// way syscall.ParseNetlinkMessage does, without checking the length field
// against len(b) beyond keeping the payload in bounds.
func parseMessage(b []byte) netlink.Message {
	if len(b) < 16 {
		return netlink.Message{}
	}
	m := netlink.Message{Header: netlink.Header{
		Length:   binary.NativeEndian.Uint32(b),
		Type:     netlink.HeaderType(binary.NativeEndian.Uint16(b[4:])),
		Flags:    netlink.HeaderFlags(binary.NativeEndian.Uint16(b[6:])),
		Sequence: binary.NativeEndian.Uint32(b[8:]),
		PID:      binary.NativeEndian.Uint32(b[12:]),
	}}
	end := len(b)
	if l := int(m.Header.Length); l >= 16 && l < end {
		end = l
	}
	m.Data = b[16:end]
	return m
}
