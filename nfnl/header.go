package nfnl

import (
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// HeaderLen is the length of the nfgenmsg header in bytes.
const HeaderLen = 4

// Version0 is the only nfgenmsg version, NFNETLINK_V0.
const Version0 = unix.NFNETLINK_V0 // NFNETLINK_V0

// A Header is struct nfgenmsg, the header at the start of every nfnetlink
// message's payload.
type Header struct {
	// Family is the address family the message applies to, such as
	// unix.AF_INET, or unix.AF_UNSPEC for all of them.
	Family uint8
	// Version is the nfgenmsg version, always Version0.
	Version uint8
	// ResourceID is res_id. Its meaning depends on the subsystem and the
	// message; the batch markers carry the subsystem id in it. It is big-endian
	// on the wire.
	ResourceID uint16
}

// Append appends the wire form of h to b and returns the extended slice. It
// does not allocate when b has room for HeaderLen more bytes.
func (h Header) Append(b []byte) []byte {
	return append(b, h.Family, h.Version, byte(h.ResourceID>>8), byte(h.ResourceID))
}

// ParseHeader decodes the nfgenmsg header at the start of b, which is
// normally a netlink message's payload, and returns it with the bytes that
// follow it: the message's attributes. The returned slice aliases b. It
// returns an error if b is shorter than HeaderLen.
func ParseHeader(b []byte) (Header, []byte, error) {
	if len(b) < HeaderLen {
		return Header{}, nil, fmt.Errorf("nfnl: nfgenmsg header: want %d bytes, got %d", HeaderLen, len(b))
	}
	h := Header{
		Family:     b[0],
		Version:    b[1],
		ResourceID: uint16(b[2])<<8 | uint16(b[3]),
	}
	return h, b[HeaderLen:], nil
}

// Netlink header flags that nfnetlink requests combine. Replace, Excl and
// Create share their bits with the dump flags, so a flag's meaning depends on
// whether the message creates an object or reads one.
const (
	// Request marks a message as a request. Every request carries it.
	Request = netlink.Request // NLM_F_REQUEST
	// Acknowledge asks the kernel to answer with an acknowledgement, an
	// NLMSG_ERROR message with errno 0, when the request succeeds.
	Acknowledge = netlink.Acknowledge // NLM_F_ACK
	// Dump asks for all matching objects rather than one.
	Dump = netlink.Dump // NLM_F_DUMP
	// Create creates the object if it does not exist.
	Create = netlink.Create // NLM_F_CREATE
	// Excl fails the request if the object already exists.
	Excl = netlink.Excl // NLM_F_EXCL
	// Replace replaces an existing object.
	Replace = netlink.Replace // NLM_F_REPLACE
	// DumpInterrupted is set by the kernel on a dump reply when the dumped
	// data changed during the dump, so the dump may be inconsistent.
	DumpInterrupted = netlink.DumpInterrupted // NLM_F_DUMP_INTR
)

// Interrupted reports whether h carries DumpInterrupted: the message is part
// of a dump that may be inconsistent and is worth repeating.
func Interrupted(h netlink.Header) bool {
	return h.Flags&DumpInterrupted != 0
}
