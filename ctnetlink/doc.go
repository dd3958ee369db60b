// Package ctnetlink speaks ctnetlink, the netlink interface of the Linux
// connection-tracking subsystem (conntrack): dump, get, create, update and
// delete flows and expectations, flush the table, read statistics, and follow
// the table's events.
//
// # Generated types
//
// The attribute types, the Go struct of every attribute set (Flow, Tuple,
// Expect, ...) and their encoders and decoders are generated from
// spec/conntrack.yaml, a description of the protocol in the kernel's YNL
// netlink-raw format, by the generator in gen/. Files named
// zz_generated_*.go must not be edited: change the spec or the generator
// and run go generate ./... from the repository root.
//
// Each attribute-type constant carries the kernel's name in a trailing
// comment, so searching for CTA_TUPLE_ORIG finds FlowAttrTupleOrig. Absent
// attributes are distinct from zero ones: Has reports whether an attribute
// was decoded or set. Nests the kernel rarely sends (Flow.Help,
// Flow.TupleMaster, the NAT and sequence-adjustment nests, Flow.SecCtx and
// Flow.Filter) are pointers, nil when absent, so that a Flow stays small.
//
// # Decoding
//
// Decoding never panics. Attributes of types this build does not know (a
// newer kernel's) are skipped and counted in the Unknown field of the struct
// they appear in, so a kernel upgrade never breaks an older build. A
// malformed attribute is an error naming its path in spec names, for example
// tuple-orig.tuple-ip.ip-v4-src: want 4 bytes, got 5.
//
// # Operations
//
// Dial opens a Conn, safe for concurrent use, in the caller's network
// namespace or another one (Config.NetNS). Dump streams the flows a
// Selector selects, filtered in the kernel where it can, List returns them
// as a slice; Get,
// Create, Update and Delete work on one flow; CreateMany, UpdateMany and
// DeleteMany pipeline thousands; Flush empties the table or the part a
// selector selects; Stats and StatsCPU read the counters. Cleanup deletes
// the flows any of many selectors selects in one pass, using the kernel's
// filtered flush where the kernel gets it right (Capabilities) and one
// shared dump for the rest.
//
// # Expectations
//
// DumpExpect, ListExpect, GetExpect, CreateExpect, UpdateExpect,
// DeleteExpect and FlushExpect manage expectations, the entries a helper
// such as FTP creates for related connections; ExpectStatsCPU reads their
// statistics. Creating one needs a master flow with a helper attached.
//
// # Events
//
// Listen opens a Listener on the multicast groups of flow and expectation
// events. Events yields them in the kernel's order on the caller's
// goroutine. Losing events is never silent: a socket overrun is yielded as
// ErrEventsLost, counted by Overruns, and the stream goes on; resynchronise
// with a dump. ListenConfig.ReliableDestroy asks the kernel to re-deliver
// destroy events it failed to deliver. ListenConfig.Filter takes a
// Selector, compiled to a BPF program that the kernel runs on the socket,
// so unwanted events never reach user space.
//
// # Selecting flows
//
// One type, Selector, selects flows everywhere: in a dump, a flush, a
// cleanup, a listener and a mirror, with one meaning of every field and of
// its zero value. It is lowered three ways: to the kernel's dump and flush
// attributes (selector_kernel.go), to classic BPF (selector_bpf.go), and to
// Selector.Match in Go (selector_match.go), which is its definition. Diagnose says why events may
// not arrive at all (the nf_conntrack_events sysctl, a kernel without
// events).
//
// # Mirror
//
// Package ctnetlink/mirror keeps an in-memory copy of the table, or of a
// filtered part of it, current: it subscribes, dumps, merges the two by
// flow (KeyOf), then applies events, and resynchronises by itself after an
// overrun. Its Collector reports the flows active between two calls.
//
// # Errors
//
// Failures are *Error values that name the operation and wrap the cause,
// for kernel errors a *netlink.OpError with the errno and the extended-ACK
// message; errors.Is works with os.ErrNotExist, os.ErrExist,
// os.ErrPermission, ErrDumpInterrupted, ErrEventsLost and unix.Errno values.
//
// # Kernels
//
// The spec follows the UAPI headers of Linux 6.18. Attributes and filters
// that a kernel does not know are ignored or refused by it; the client
// documents, per operation, from which kernel version a feature works.
package ctnetlink

//go:generate go run github.com/ctspec/ctspec/gen -spec ../spec/conntrack.yaml -out . -pkg ctnetlink
