package nfnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Extended-acknowledgement attribute types, enum nlmsgerr_attrs in
// linux/netlink.h. golang.org/x/sys v0.30.0 lacks the last two.
const (
	attrMsg      = unix.NLMSGERR_ATTR_MSG  // NLMSGERR_ATTR_MSG
	attrOffs     = unix.NLMSGERR_ATTR_OFFS // NLMSGERR_ATTR_OFFS
	attrMissType = 5                       // NLMSGERR_ATTR_MISS_TYPE
	attrMissNest = 6                       // NLMSGERR_ATTR_MISS_NEST
)

// attrTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER from an attribute
// type.
const attrTypeMask = 0x3fff

const errnoLen = 4 // the int error at the start of NLMSG_ERROR and NLMSG_DONE

var (
	errShort        = errors.New("message too short")
	errPositiveCode = errors.New("positive error code")
	errBadExtAck    = errors.New("malformed extended acknowledgement")
)

// An Error is a decoded NLMSG_ERROR or NLMSG_DONE message: the kernel's answer
// to one request. An Errno of 0 makes it an acknowledgement, which may still
// carry an extended-acknowledgement message as a warning; Err returns nil for
// those.
//
// Error works with errors.Is: against a unix.Errno through Unwrap, and against
// os.ErrNotExist (ENOENT), os.ErrExist (EEXIST) and os.ErrPermission (EPERM,
// EACCES) through Is.
type Error struct {
	// Errno is the error the kernel reported, or 0 for success.
	Errno unix.Errno

	// Sequence is the sequence number of the request this message answers.
	Sequence uint32

	// Done reports that the message is the NLMSG_DONE closing a dump rather
	// than an NLMSG_ERROR. Request, Capped and Payload are zero then.
	Done bool

	// Request is the header of the request this message answers, as the kernel
	// echoed it.
	Request netlink.Header

	// Capped reports that the kernel echoed only the request's header, not its
	// payload: it set NLM_F_CAPPED (Linux 4.12 and later, for
	// acknowledgements and on sockets with NETLINK_CAP_ACK), or an older
	// kernel capped the echo without saying so.
	Capped bool

	// Payload is the request's payload after its netlink header, as the
	// kernel echoed it, or nil when Capped. It aliases the decoded message.
	Payload []byte

	// Message is the extended-acknowledgement text, NLMSGERR_ATTR_MSG, or
	// empty.
	Message string

	// Offset is NLMSGERR_ATTR_OFFS: the offset in bytes of the attribute that
	// caused the error, counted from the start of the request's netlink
	// header. It is 0 when the kernel did not send it; the kernel never sends
	// 0 because the offending attribute lies after the headers.
	Offset uint32

	// MissingType is NLMSGERR_ATTR_MISS_TYPE: the type of an attribute that
	// the request lacked (Linux 6.0 and later). It is 0 when the kernel did
	// not send it, which is also the only value the kernel never sends.
	MissingType uint32

	// MissingNest is NLMSGERR_ATTR_MISS_NEST: the offset of the nested
	// attribute that lacked MissingType, counted like Offset, or 0 when the
	// missing attribute belongs at the top level or the kernel did not send
	// it.
	MissingNest uint32
}

var (
	_ error                       = (*Error)(nil)
	_ interface{ Unwrap() error } = (*Error)(nil)
)

// DecodeError decodes m, which must be an NLMSG_ERROR or NLMSG_DONE message.
// It returns an error for any other message type and for short or malformed
// input, never panics, and does not copy: Payload aliases m.Data.
//
// DecodeError does not treat a non-zero errno as a failure to decode: it
// returns an Error with that Errno and a nil error. Use Error.Err to turn it
// into an error value.
func DecodeError(m netlink.Message) (*Error, error) {
	e := &Error{Sequence: m.Header.Sequence}
	var err error
	switch m.Header.Type {
	case netlink.Error:
		err = e.decodeError(m.Header.Flags, m.Data)
		if err != nil {
			err = fmt.Errorf("nfnl: NLMSG_ERROR: %w", err)
		}
	case netlink.Done:
		e.Done = true
		err = e.decodeDone(m.Header.Flags, m.Data)
		if err != nil {
			err = fmt.Errorf("nfnl: NLMSG_DONE: %w", err)
		}
	default:
		err = fmt.Errorf("nfnl: message type %#04x is neither NLMSG_ERROR nor NLMSG_DONE", uint16(m.Header.Type))
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// decodeError decodes the payload of an NLMSG_ERROR message: struct nlmsgerr
// (the error and the request's nlmsghdr), the rest of the request unless
// capped, and the extended-acknowledgement attributes if flags say so.
func (e *Error) decodeError(flags netlink.HeaderFlags, b []byte) error {
	const fixed = errnoLen + nlmsgHeaderLen
	if len(b) < fixed {
		return fmt.Errorf("%w: want at least %d bytes, got %d", errShort, fixed, len(b))
	}
	var err error
	if e.Errno, err = decodeErrno(b); err != nil {
		return err
	}
	e.Request = netlink.Header{
		Length:   binary.NativeEndian.Uint32(b[4:]),
		Type:     netlink.HeaderType(binary.NativeEndian.Uint16(b[8:])),
		Flags:    netlink.HeaderFlags(binary.NativeEndian.Uint16(b[10:])),
		Sequence: binary.NativeEndian.Uint32(b[12:]),
		PID:      binary.NativeEndian.Uint32(b[16:]),
	}
	if e.Request.Length < nlmsgHeaderLen {
		// The kernel drops such requests without answering them.
		return fmt.Errorf("echoed request length %d is shorter than a netlink header", e.Request.Length)
	}
	rest := b[fixed:]
	switch {
	case flags&netlink.Capped != 0:
		e.Capped = true
	case len(rest) == 0:
		// Kernels before 4.12 cap acknowledgements, and errors on sockets
		// with NETLINK_CAP_ACK, without setting NLM_F_CAPPED.
		e.Capped = e.Request.Length > nlmsgHeaderLen
	default:
		n := uint64(e.Request.Length - nlmsgHeaderLen)
		if uint64(len(rest)) < n {
			return fmt.Errorf("%w: echoed request payload wants %d bytes, got %d", errShort, n, len(rest))
		}
		if n > 0 {
			e.Payload = rest[:n]
		}
		rest = rest[min(align(int(n)), len(rest)):]
	}
	if flags&netlink.AcknowledgeTLVs == 0 {
		return nil
	}
	return e.decodeExtAck(rest)
}

// decodeDone decodes the payload of an NLMSG_DONE message: the dump's error
// and the extended-acknowledgement attributes if flags say so. An empty
// payload means success.
func (e *Error) decodeDone(flags netlink.HeaderFlags, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if len(b) < errnoLen {
		return fmt.Errorf("%w: want at least %d bytes, got %d", errShort, errnoLen, len(b))
	}
	var err error
	if e.Errno, err = decodeErrno(b); err != nil {
		return err
	}
	if flags&netlink.AcknowledgeTLVs == 0 {
		return nil
	}
	return e.decodeExtAck(b[errnoLen:])
}

// decodeErrno decodes the host-order int at the start of b, which the kernel
// sets to a negative errno or 0.
func decodeErrno(b []byte) (unix.Errno, error) {
	code := int32(binary.NativeEndian.Uint32(b))
	if code > 0 {
		return 0, fmt.Errorf("%w %d", errPositiveCode, code)
	}
	return unix.Errno(-int64(code)), nil
}

// decodeExtAck decodes the extended-acknowledgement attributes in b into e.
// It skips attribute types it does not know, such as NLMSGERR_ATTR_COOKIE and
// NLMSGERR_ATTR_POLICY.
func (e *Error) decodeExtAck(b []byte) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: %d trailing bytes, too short for an attribute header", errBadExtAck, len(b))
		}
		l := int(binary.NativeEndian.Uint16(b))
		t := binary.NativeEndian.Uint16(b[2:]) & attrTypeMask
		if l < 4 || l > len(b) {
			return fmt.Errorf("%w: attribute %d: length %d out of range (%d bytes left)", errBadExtAck, t, l, len(b))
		}
		v := b[4:l]
		switch t {
		case attrMsg:
			e.Message = cString(v)
		case attrOffs, attrMissType, attrMissNest:
			if len(v) != 4 {
				return fmt.Errorf("%w: %s: want 4 bytes, got %d", errBadExtAck, extAckName(t), len(v))
			}
			u := binary.NativeEndian.Uint32(v)
			switch t {
			case attrOffs:
				e.Offset = u
			case attrMissType:
				e.MissingType = u
			default:
				e.MissingNest = u
			}
		}
		b = b[min(align(l), len(b)):]
	}
	return nil
}

// extAckName returns the kernel name of an extended-acknowledgement attribute
// type that decodeExtAck checks.
func extAckName(t uint16) string {
	switch t {
	case attrOffs:
		return "NLMSGERR_ATTR_OFFS"
	case attrMissType:
		return "NLMSGERR_ATTR_MISS_TYPE"
	case attrMissNest:
		return "NLMSGERR_ATTR_MISS_NEST"
	}
	return "attribute " + strconv.Itoa(int(t))
}

// cString returns the bytes of b up to its first NUL, as a string.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// hasExtAck reports whether e carries any extended-acknowledgement attribute.
func (e *Error) hasExtAck() bool {
	return e.Message != "" || e.Offset != 0 || e.MissingType != 0 || e.MissingNest != 0
}

// Encode returns e as the kernel would send it: an NLMSG_ERROR message, or an
// NLMSG_DONE message if e.Done is set, with the extended-acknowledgement
// attributes for the non-zero fields among Message, Offset, MissingType and
// MissingNest. DecodeError decodes the result to e again. It is meant for
// fake kernels in tests.
//
// Unless e.Capped, the echoed request carries e.Payload and its length is set
// to match; a capped echo keeps e.Request.Length, raised to the length of a
// netlink header if it is less. Errno must fit in an int32.
func (e *Error) Encode() netlink.Message {
	var flags netlink.HeaderFlags
	typ := netlink.Error
	b := make([]byte, errnoLen, 64)
	binary.NativeEndian.PutUint32(b, uint32(-int32(e.Errno)))
	if e.Done {
		typ = netlink.Done
		flags |= netlink.Multi
	} else {
		req := e.Request
		if e.Capped {
			flags |= netlink.Capped
			req.Length = max(req.Length, nlmsgHeaderLen)
		} else {
			req.Length = uint32(nlmsgHeaderLen + len(e.Payload))
		}
		b = binary.NativeEndian.AppendUint32(b, req.Length)
		b = binary.NativeEndian.AppendUint16(b, uint16(req.Type))
		b = binary.NativeEndian.AppendUint16(b, uint16(req.Flags))
		b = binary.NativeEndian.AppendUint32(b, req.Sequence)
		b = binary.NativeEndian.AppendUint32(b, req.PID)
		if !e.Capped {
			b = append(b, e.Payload...)
			b = pad(b)
		}
	}
	if e.hasExtAck() {
		flags |= netlink.AcknowledgeTLVs
		if e.Message != "" {
			b = appendAttr(b, attrMsg, append([]byte(e.Message), 0))
		}
		for _, a := range []struct {
			t uint16
			v uint32
		}{
			{attrOffs, e.Offset},
			{attrMissType, e.MissingType},
			{attrMissNest, e.MissingNest},
		} {
			if a.v != 0 {
				b = appendAttr(b, a.t, binary.NativeEndian.AppendUint32(nil, a.v))
			}
		}
	}
	return netlink.Message{
		Header: netlink.Header{
			Length:   uint32(nlmsgHeaderLen + len(b)),
			Type:     typ,
			Flags:    flags,
			Sequence: e.Sequence,
			PID:      e.Request.PID,
		},
		Data: b,
	}
}

// appendAttr appends a netlink attribute of type t with payload v to b,
// padded to the netlink alignment.
func appendAttr(b []byte, t uint16, v []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(v)))
	b = binary.NativeEndian.AppendUint16(b, t)
	return pad(append(b, v...))
}

// pad appends zero bytes to b up to the netlink alignment.
func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// Err returns e as an error, or nil if e is nil or an acknowledgement
// (Errno 0).
func (e *Error) Err() error {
	if e == nil || e.Errno == 0 {
		return nil
	}
	return e
}

// Error returns a lower-case description such as
// `nfnl: errno 22: invalid argument (extack: "bad attribute", offset 36)`.
func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	var sb strings.Builder
	sb.WriteString("nfnl: ")
	if e.Errno == 0 {
		sb.WriteString("no error")
	} else {
		fmt.Fprintf(&sb, "errno %d: %s", uint64(e.Errno), e.Errno.Error())
	}
	var parts []string
	if e.Message != "" {
		parts = append(parts, strconv.Quote(e.Message))
	}
	if e.Offset != 0 {
		parts = append(parts, "offset "+strconv.FormatUint(uint64(e.Offset), 10))
	}
	if e.MissingType != 0 {
		s := "missing attribute type " + strconv.FormatUint(uint64(e.MissingType), 10)
		if e.MissingNest != 0 {
			s += " in nest at offset " + strconv.FormatUint(uint64(e.MissingNest), 10)
		}
		parts = append(parts, s)
	} else if e.MissingNest != 0 {
		parts = append(parts, "missing attribute in nest at offset "+strconv.FormatUint(uint64(e.MissingNest), 10))
	}
	if len(parts) > 0 {
		sb.WriteString(" (extack: ")
		sb.WriteString(strings.Join(parts, ", "))
		sb.WriteString(")")
	}
	return sb.String()
}

// Unwrap returns e.Errno, or nil for an acknowledgement, so that errors.Is
// matches the errno.
func (e *Error) Unwrap() error {
	if e == nil || e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// Is reports whether e matches target, one of the sentinel errors that are
// part of this package's contract: os.ErrNotExist for ENOENT, os.ErrExist for
// EEXIST, and os.ErrPermission for EPERM and EACCES.
func (e *Error) Is(target error) bool {
	if e == nil {
		return false
	}
	switch target {
	case os.ErrNotExist:
		return e.Errno == unix.ENOENT
	case os.ErrExist:
		return e.Errno == unix.EEXIST
	case os.ErrPermission:
		return e.Errno == unix.EPERM || e.Errno == unix.EACCES
	}
	return false
}
