package nfnl

import (
	"errors"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

const (
	testSeq = 7
	testPID = 4242
)

var (
	// reqType and reqFlags describe the request the test replies answer.
	reqType  = Type(SubsysCTNetlink, 1)
	reqFlags = Request | Acknowledge
	// reqPayload is the request after its nlmsghdr: an nfgenmsg header and one
	// eight-byte attribute.
	reqPayload = append(
		Header{Family: unix.AF_INET, Version: Version0}.Append(nil),
		attr(1, []byte{1, 2, 3, 4, 5, 6, 7, 8})...,
	)
	// reqHdr is the request's nlmsghdr: 16 bytes of header, 16 of payload.
	reqHdr = nlmsghdr(32, reqType, reqFlags, testSeq, testPID)
	// req is reqHdr decoded.
	req = netlink.Header{Length: 32, Type: reqType, Flags: reqFlags, Sequence: testSeq, PID: testPID}
)

type decodeErrorTest struct {
	name string
	// b is the whole message, laid out as the kernel sends it.
	b    []byte
	want *Error
	// exact reports that Encode reproduces b byte for byte.
	exact bool
}

// decodeErrorTests are well-formed NLMSG_ERROR and NLMSG_DONE messages. The
// NLMSG_ERROR layout is the outer nlmsghdr, the int error, the request's
// nlmsghdr, the request's payload unless capped, padding, then the
// extended-acknowledgement attributes.
var decodeErrorTests = []decodeErrorTest{
	{
		name:  "ack",
		b:     kmsg(netlink.Error, netlink.Capped, testSeq, testPID, code(0), reqHdr),
		want:  &Error{Sequence: testSeq, Request: req, Capped: true},
		exact: true,
	},
	{
		name: "ack from a kernel before 4.12",
		b:    kmsg(netlink.Error, 0, testSeq, testPID, code(0), reqHdr),
		want: &Error{Sequence: testSeq, Request: req, Capped: true},
	},
	{
		name:  "ack with a warning",
		b:     kmsg(netlink.Error, netlink.Capped|netlink.AcknowledgeTLVs, testSeq, testPID, code(0), reqHdr, attr(1, cstr("warning"))),
		want:  &Error{Sequence: testSeq, Request: req, Capped: true, Message: "warning"},
		exact: true,
	},
	{
		name:  "error echoing the request",
		b:     kmsg(netlink.Error, 0, testSeq, testPID, code(unix.ENOENT), reqHdr, reqPayload),
		want:  &Error{Errno: unix.ENOENT, Sequence: testSeq, Request: req, Payload: reqPayload},
		exact: true,
	},
	{
		name: "error echoing a request without payload",
		b:    kmsg(netlink.Error, 0, testSeq, testPID, code(unix.EPERM), nlmsghdr(16, reqType, reqFlags, testSeq, testPID)),
		want: &Error{
			Errno:    unix.EPERM,
			Sequence: testSeq,
			Request:  netlink.Header{Length: 16, Type: reqType, Flags: reqFlags, Sequence: testSeq, PID: testPID},
		},
		exact: true,
	},
	{
		name: "capped error",
		b:    kmsg(netlink.Error, netlink.Capped, testSeq, testPID, code(unix.EEXIST), reqHdr),
		want: &Error{Errno: unix.EEXIST, Sequence: testSeq, Request: req, Capped: true},
	},
	{
		name: "extended ack after the echoed request",
		b: kmsg(netlink.Error, netlink.AcknowledgeTLVs, testSeq, testPID,
			code(unix.EINVAL), reqHdr, reqPayload,
			attr(unix.NLMSGERR_ATTR_MSG, cstr("bad attribute")),
			attr(unix.NLMSGERR_ATTR_OFFS, u32(20)),
		),
		want: &Error{
			Errno: unix.EINVAL, Sequence: testSeq, Request: req, Payload: reqPayload,
			Message: "bad attribute", Offset: 20,
		},
		exact: true,
	},
	{
		name: "extended ack after a capped request",
		b: kmsg(netlink.Error, netlink.Capped|netlink.AcknowledgeTLVs, testSeq, testPID,
			code(unix.EINVAL), reqHdr,
			attr(unix.NLMSGERR_ATTR_MSG, cstr("bad attribute")),
			attr(unix.NLMSGERR_ATTR_OFFS, u32(20)),
		),
		want: &Error{
			Errno: unix.EINVAL, Sequence: testSeq, Request: req, Capped: true,
			Message: "bad attribute", Offset: 20,
		},
		exact: true,
	},
	{
		name: "missing attribute in a nest",
		b: kmsg(netlink.Error, netlink.Capped|netlink.AcknowledgeTLVs, testSeq, testPID,
			code(unix.EINVAL), reqHdr,
			attr(unix.NLMSGERR_ATTR_MSG, cstr("missing attribute")),
			attr(attrMissType, u32(3)),
			attr(attrMissNest, u32(20)),
		),
		want: &Error{
			Errno: unix.EINVAL, Sequence: testSeq, Request: req, Capped: true,
			Message: "missing attribute", MissingType: 3, MissingNest: 20,
		},
		exact: true,
	},
	{
		name: "request length not a multiple of four",
		b: kmsg(netlink.Error, netlink.AcknowledgeTLVs, testSeq, testPID,
			code(unix.EINVAL), nlmsghdr(33, reqType, reqFlags, testSeq, testPID),
			reqPayload, []byte{0xee}, zeros(3),
			attr(unix.NLMSGERR_ATTR_OFFS, u32(32)),
		),
		want: &Error{
			Errno:    unix.EINVAL,
			Sequence: testSeq,
			Request:  netlink.Header{Length: 33, Type: reqType, Flags: reqFlags, Sequence: testSeq, PID: testPID},
			Payload:  append(append([]byte(nil), reqPayload...), 0xee),
			Offset:   32,
		},
		exact: true,
	},
	{
		name: "unknown attributes are skipped",
		b: kmsg(netlink.Error, netlink.Capped|netlink.AcknowledgeTLVs, testSeq, testPID,
			code(unix.EINVAL), reqHdr,
			attr(unix.NLMSGERR_ATTR_COOKIE, []byte{1, 2, 3, 4, 5, 6, 7, 8}),
			attr(netlink.Nested|4, attr(1, u32(1))), // NLMSGERR_ATTR_POLICY
			attr(unix.NLMSGERR_ATTR_MSG, cstr("m")),
			attr(99, nil),
		),
		want: &Error{Errno: unix.EINVAL, Sequence: testSeq, Request: req, Capped: true, Message: "m"},
	},
	{
		name: "last attribute unpadded and without NUL",
		b: kmsg(netlink.Error, netlink.Capped|netlink.AcknowledgeTLVs, testSeq, testPID,
			code(unix.EINVAL), reqHdr, rawAttr(5, unix.NLMSGERR_ATTR_MSG, []byte("x")),
		),
		want: &Error{Errno: unix.EINVAL, Sequence: testSeq, Request: req, Capped: true, Message: "x"},
	},
	{
		name: "trailing bytes without NLM_F_ACK_TLVS are ignored",
		b:    kmsg(netlink.Error, netlink.Capped, testSeq, testPID, code(unix.EINVAL), reqHdr, zeros(3)),
		want: &Error{Errno: unix.EINVAL, Sequence: testSeq, Request: req, Capped: true},
	},
	{
		name:  "most negative error code",
		b:     kmsg(netlink.Error, netlink.Capped, testSeq, testPID, rawCode(math.MinInt32), reqHdr),
		want:  &Error{Errno: 1 << 31, Sequence: testSeq, Request: req, Capped: true},
		exact: true,
	},
	{
		name:  "dump done",
		b:     kmsg(netlink.Done, netlink.Multi, 9, 0, code(0)),
		want:  &Error{Sequence: 9, Done: true},
		exact: true,
	},
	{
		name: "dump done without payload",
		b:    kmsg(netlink.Done, netlink.Multi, 9, 0),
		want: &Error{Sequence: 9, Done: true},
	},
	{
		name: "dump failed with extended ack",
		b: kmsg(netlink.Done, netlink.Multi|netlink.AcknowledgeTLVs, 9, 0,
			code(unix.EBUSY), attr(unix.NLMSGERR_ATTR_MSG, cstr("try again")),
		),
		want:  &Error{Errno: unix.EBUSY, Sequence: 9, Done: true, Message: "try again"},
		exact: true,
	},
}

// malformedErrorTests are messages DecodeError must reject, and the errors it
// gives.
var malformedErrorTests = []struct {
	name string
	b    []byte
	want string
}{
	{
		name: "not an error message",
		b:    kmsg(reqType, 0, testSeq, testPID, code(0), reqHdr),
		want: "nfnl: message type 0x0101 is neither NLMSG_ERROR nor NLMSG_DONE",
	},
	{
		name: "error code cut short",
		b:    kmsg(netlink.Error, 0, testSeq, testPID, []byte{1, 2, 3}),
		want: "nfnl: NLMSG_ERROR: message too short: want at least 20 bytes, got 3",
	},
	{
		name: "request header cut short",
		b:    kmsg(netlink.Error, 0, testSeq, testPID, code(unix.EINVAL), reqHdr[:8]),
		want: "nfnl: NLMSG_ERROR: message too short: want at least 20 bytes, got 12",
	},
	{
		name: "positive error code",
		b:    kmsg(netlink.Error, netlink.Capped, testSeq, testPID, rawCode(5), reqHdr),
		want: "nfnl: NLMSG_ERROR: positive error code 5",
	},
	{
		name: "echoed request cut short",
		b:    kmsg(netlink.Error, 0, testSeq, testPID, code(unix.EINVAL), reqHdr, reqPayload[:8]),
		want: "nfnl: NLMSG_ERROR: message too short: echoed request payload wants 16 bytes, got 8",
	},
	{
		name: "echoed request shorter than its header",
		b:    kmsg(netlink.Error, 0, testSeq, testPID, code(unix.EINVAL), nlmsghdr(8, reqType, reqFlags, testSeq, testPID), zeros(4)),
		want: "nfnl: NLMSG_ERROR: echoed request length 8 is shorter than a netlink header",
	},
	{
		name: "capped echo shorter than a header",
		b:    kmsg(netlink.Error, netlink.Capped, testSeq, testPID, code(0), nlmsghdr(8, reqType, reqFlags, testSeq, testPID)),
		want: "nfnl: NLMSG_ERROR: echoed request length 8 is shorter than a netlink header",
	},
	{
		name: "echoed request cut short before attributes",
		b: kmsg(netlink.Error, netlink.AcknowledgeTLVs, testSeq, testPID,
			code(unix.EINVAL), nlmsghdr(1000, reqType, reqFlags, testSeq, testPID), attr(unix.NLMSGERR_ATTR_MSG, cstr("m"))),
		want: "nfnl: NLMSG_ERROR: message too short: echoed request payload wants 984 bytes, got 8",
	},
	{
		name: "attribute header cut short",
		b:    kmsg(netlink.Error, netlink.Capped|netlink.AcknowledgeTLVs, testSeq, testPID, code(unix.EINVAL), reqHdr, []byte{1, 2}),
		want: "nfnl: NLMSG_ERROR: malformed extended acknowledgement: 2 trailing bytes, too short for an attribute header",
	},
	{
		name: "attribute length below its header",
		b:    kmsg(netlink.Error, netlink.Capped|netlink.AcknowledgeTLVs, testSeq, testPID, code(unix.EINVAL), reqHdr, rawAttr(3, 1, nil)),
		want: "nfnl: NLMSG_ERROR: malformed extended acknowledgement: attribute 1: length 3 out of range (4 bytes left)",
	},
	{
		name: "attribute length past the end",
		b:    kmsg(netlink.Error, netlink.Capped|netlink.AcknowledgeTLVs, testSeq, testPID, code(unix.EINVAL), reqHdr, rawAttr(12, 2, u32(1))),
		want: "nfnl: NLMSG_ERROR: malformed extended acknowledgement: attribute 2: length 12 out of range (8 bytes left)",
	},
	{
		name: "short offset",
		b:    kmsg(netlink.Error, netlink.Capped|netlink.AcknowledgeTLVs, testSeq, testPID, code(unix.EINVAL), reqHdr, attr(unix.NLMSGERR_ATTR_OFFS, []byte{1, 2})),
		want: "nfnl: NLMSG_ERROR: malformed extended acknowledgement: NLMSGERR_ATTR_OFFS: want 4 bytes, got 2",
	},
	{
		name: "long missing type",
		b:    kmsg(netlink.Error, netlink.Capped|netlink.AcknowledgeTLVs, testSeq, testPID, code(unix.EINVAL), reqHdr, attr(attrMissType, zeros(8))),
		want: "nfnl: NLMSG_ERROR: malformed extended acknowledgement: NLMSGERR_ATTR_MISS_TYPE: want 4 bytes, got 8",
	},
	{
		name: "empty missing nest",
		b:    kmsg(netlink.Error, netlink.Capped|netlink.AcknowledgeTLVs, testSeq, testPID, code(unix.EINVAL), reqHdr, attr(attrMissNest, nil)),
		want: "nfnl: NLMSG_ERROR: malformed extended acknowledgement: NLMSGERR_ATTR_MISS_NEST: want 4 bytes, got 0",
	},
	{
		name: "dump done cut short",
		b:    kmsg(netlink.Done, netlink.Multi, 9, 0, []byte{0, 0}),
		want: "nfnl: NLMSG_DONE: message too short: want at least 4 bytes, got 2",
	},
	{
		name: "dump done with positive code",
		b:    kmsg(netlink.Done, netlink.Multi, 9, 0, rawCode(1)),
		want: "nfnl: NLMSG_DONE: positive error code 1",
	},
	{
		name: "dump done with malformed attributes",
		b:    kmsg(netlink.Done, netlink.Multi|netlink.AcknowledgeTLVs, 9, 0, code(0), rawAttr(40, 1, nil)),
		want: "nfnl: NLMSG_DONE: malformed extended acknowledgement: attribute 1: length 40 out of range (4 bytes left)",
	},
}

func TestDecodeError(t *testing.T) {
	for _, tt := range decodeErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeError(parseMessage(tt.b))
			if err != nil {
				t.Fatalf("failed to decode: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("unexpected Error (-want +got):\n%s", diff)
			}

			// Encoding gives a message that decodes to the same Error, and for
			// most cases the kernel's bytes.
			enc := got.Encode()
			b, err := enc.MarshalBinary()
			if err != nil {
				t.Fatalf("failed to marshal the encoded message: %v", err)
			}
			if tt.exact {
				if diff := cmp.Diff(tt.b, b); diff != "" {
					t.Fatalf("unexpected encoding (-want +got):\n%s", diff)
				}
			}
			again, err := DecodeError(parseMessage(b))
			if err != nil {
				t.Fatalf("failed to decode the encoded message: %v", err)
			}
			if diff := cmp.Diff(tt.want, again); diff != "" {
				t.Fatalf("unexpected Error after encoding (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeErrorMalformed(t *testing.T) {
	for _, tt := range malformedErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeError(parseMessage(tt.b))
			if err == nil {
				t.Fatalf("expected an error, got %+v", got)
			}
			if got != nil {
				t.Fatalf("expected no Error with a decoding error, got %+v", got)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Fatalf("unexpected error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		e    *Error
		want string
	}{
		{
			name: "nil",
			want: "<nil>",
		},
		{
			name: "ack",
			e:    &Error{Sequence: 1},
			want: "nfnl: no error",
		},
		{
			name: "ack with a warning",
			e:    &Error{Message: "warning"},
			want: `nfnl: no error (extack: "warning")`,
		},
		{
			name: "errno",
			e:    &Error{Errno: unix.ENOENT},
			want: "nfnl: errno 2: no such file or directory",
		},
		{
			name: "message and offset",
			e:    &Error{Errno: unix.EINVAL, Message: "bad attribute", Offset: 36},
			want: `nfnl: errno 22: invalid argument (extack: "bad attribute", offset 36)`,
		},
		{
			name: "message is quoted",
			e:    &Error{Errno: unix.EINVAL, Message: "a \"b\"\n"},
			want: `nfnl: errno 22: invalid argument (extack: "a \"b\"\n")`,
		},
		{
			name: "missing attribute in a nest",
			e:    &Error{Errno: unix.EINVAL, Message: "missing attribute", MissingType: 3, MissingNest: 20},
			want: `nfnl: errno 22: invalid argument (extack: "missing attribute", missing attribute type 3 in nest at offset 20)`,
		},
		{
			name: "missing top-level attribute",
			e:    &Error{Errno: unix.EINVAL, MissingType: 3},
			want: "nfnl: errno 22: invalid argument (extack: missing attribute type 3)",
		},
		{
			name: "nest without type",
			e:    &Error{Errno: unix.EINVAL, MissingNest: 20},
			want: "nfnl: errno 22: invalid argument (extack: missing attribute in nest at offset 20)",
		},
		{
			name: "dump done",
			e:    &Error{Errno: unix.EBUSY, Done: true},
			want: "nfnl: errno 16: device or resource busy",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.e.Error()); diff != "" {
				t.Fatalf("unexpected Error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		name   string
		errno  unix.Errno
		target error
		want   bool
	}{
		{name: "ENOENT is os.ErrNotExist", errno: unix.ENOENT, target: os.ErrNotExist, want: true},
		{name: "ENOENT is ENOENT", errno: unix.ENOENT, target: unix.ENOENT, want: true},
		{name: "ENOENT is not os.ErrPermission", errno: unix.ENOENT, target: os.ErrPermission},
		{name: "ENOENT is not os.ErrExist", errno: unix.ENOENT, target: os.ErrExist},
		{name: "EEXIST is os.ErrExist", errno: unix.EEXIST, target: os.ErrExist, want: true},
		{name: "EPERM is os.ErrPermission", errno: unix.EPERM, target: os.ErrPermission, want: true},
		{name: "EACCES is os.ErrPermission", errno: unix.EACCES, target: os.ErrPermission, want: true},
		{name: "EINVAL is EINVAL", errno: unix.EINVAL, target: unix.EINVAL, want: true},
		{name: "EINVAL is not os.ErrNotExist", errno: unix.EINVAL, target: os.ErrNotExist},
		{name: "EINVAL is not ENOENT", errno: unix.EINVAL, target: unix.ENOENT},
		{name: "ack is not errno 0", errno: 0, target: unix.Errno(0)},
		{name: "ack is not os.ErrNotExist", errno: 0, target: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Error{Errno: tt.errno, Sequence: 3}
			for _, err := range []error{e, fmt.Errorf("ctnetlink: get: %w", e)} {
				if diff := cmp.Diff(tt.want, errors.Is(err, tt.target)); diff != "" {
					t.Fatalf("unexpected errors.Is(%v, %v) (-want +got):\n%s", err, tt.target, diff)
				}
				var got *Error
				if !errors.As(err, &got) || got != e {
					t.Fatalf("errors.As did not find the *Error in %v", err)
				}
			}
		})
	}
}

func TestErrorErr(t *testing.T) {
	tests := []struct {
		name    string
		e       *Error
		wantErr bool
	}{
		{name: "nil"},
		{name: "ack", e: &Error{Sequence: 1}},
		{name: "ack with a warning", e: &Error{Message: "warning"}},
		{name: "dump done", e: &Error{Done: true}},
		{name: "error", e: &Error{Errno: unix.ENOENT}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Err()
			if diff := cmp.Diff(tt.wantErr, err != nil); diff != "" {
				t.Fatalf("unexpected Err result %v (-want +got):\n%s", err, diff)
			}
			if err != nil && err != error(tt.e) {
				t.Fatalf("Err returned %v, not the Error itself", err)
			}
		})
	}
}
