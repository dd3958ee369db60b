// Package nfnl implements the nfnetlink layer of Linux netlink: the message
// type split into subsystem and message, the nfgenmsg header, batches, and the
// decoding of the kernel's error and acknowledgement messages.
//
// nfnetlink is the netlink family NETLINK_NETFILTER. Each netfilter component
// that talks to user space registers with it as a subsystem and owns the
// message types of that subsystem. This package knows the subsystem ids but
// none of the subsystems' messages or attributes; packages built on it add
// those. It works on [netlink.Message] values from
// github.com/mdlayher/netlink, and it is the one transport such packages
// share: [Conn] is a pool of sockets and a request/reply client, and
// [Socket] is one NETLINK_NETFILTER socket.
//
// # Message types
//
// nfnetlink packs a 16-bit netlink message type as two bytes: the high byte
// is the [Subsystem] id and the low byte is the message type within that
// subsystem (NFNL_SUBSYS_ID and NFNL_MSG_TYPE in the kernel). [Type] packs
// the two and [SplitType] unpacks them. The control types below
// NLMSG_MIN_TYPE (0x10), such as NLMSG_ERROR and NLMSG_DONE, belong to
// netlink itself; they split into [SubsysNone] and a message type below 0x10.
//
// # The nfgenmsg header
//
// Every nfnetlink message starts its payload with the four-byte struct
// nfgenmsg, modelled by [Header]: an address family, a version that is always
// [Version0], and a 16-bit resource id in network byte order. The attributes
// follow it. [Header.Append] encodes it and [ParseHeader] splits it from the
// attributes.
//
// # Flags
//
// Requests combine the netlink header flags re-exported here: [Request] on
// every request, [Acknowledge] to get an acknowledgement, [Dump] for a dump,
// and [Create], [Excl] or [Replace] for new objects. A dump reply part with
// [DumpInterrupted] set means the dumped table changed while the dump ran, so
// the dump may be inconsistent; [Interrupted] tests for it.
//
// # Batches
//
// A batch is a sequence of requests framed by [MsgBatchBegin] and
// [MsgBatchEnd] and sent in one datagram. The kernel hands the requests to one
// subsystem, named in the resource id of the begin message, which applies them
// as one transaction: all of them or none. Only subsystems that implement
// transactions accept batches (nf_tables does); any other subsystem answers
// the begin message with EOPNOTSUPP and ignores the rest of the datagram.
// Errors for the framed requests arrive after the whole batch is processed,
// each carrying the sequence number of the request it answers. [Batch] builds
// the frame with consecutive sequence numbers and maps a reply's sequence
// number back to the request that caused it.
//
// # Errors and acknowledgements
//
// The kernel answers a failed request, or any request sent with [Acknowledge],
// with an NLMSG_ERROR message: a negative errno (zero for an acknowledgement)
// followed by a copy of the request's netlink header and, unless the reply is
// capped, of the request's payload. With the NETLINK_EXT_ACK socket option
// the kernel appends extended-acknowledgement attributes: a text message, the
// offset of the offending attribute in the request, and the type of a missing
// attribute. A dump ends with an NLMSG_DONE message that carries the dump's
// errno and may carry the same attributes. [DecodeError] decodes both kinds
// into an [Error], which callers that pipeline requests and read the replies
// themselves match to requests by [Error.Sequence]. An [Error] works with
// errors.Is for its errno and for os.ErrNotExist, os.ErrExist and
// os.ErrPermission.
//
// # Sockets
//
// A [Socket] frames requests ([AppendRequest]) and splits datagrams into
// messages ([NextMessage]). It is connected to the kernel, so the kernel
// refuses unicasts of other sockets to it, and it decodes only datagrams
// whose sender is the kernel and messages whose nlmsg_pid is 0 or its own
// port id. [Socket.Request] runs one request, a dump included, up to its
// ACK, error or NLMSG_DONE, and reports NLM_F_DUMP_INTR as
// [ErrDumpInterrupted]. A [Pipeline] sends many requests per write and
// matches the answers by sequence number. For multicast, [DialSocket] joins
// groups, and the socket sets its receive buffer (SO_RCVBUFFORCE, then
// SO_RCVBUF), attaches BPF filters, sets options such as
// NETLINK_NO_ENOBUFS and NETLINK_BROADCAST_ERROR, and [Socket.Receive]
// surfaces an overrun as ENOBUFS. [Socket.Watch] makes the end of a context
// unblock a pending receive. [Config.NetNS] and [Config.NetNSPath] pin the
// namespace: Dial keeps its own descriptor, so every socket the Conn opens
// later is opened in the same namespace.
//
// # Kernels
//
// The package covers Linux 3.x and later. Extended acknowledgements (Linux
// 4.12), the NLM_F_CAPPED marker (Linux 4.12) and the missing-attribute
// reports (Linux 6.0) are decoded when the kernel sends them and are never
// required. Batches need a kernel and a subsystem that support them. The
// subsystem and message constants take their values from golang.org/x/sys/unix.
package nfnl
