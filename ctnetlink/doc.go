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
// was decoded or set.
//
// # Decoding
//
// Decoding never panics. Attributes of types this build does not know (a
// newer kernel's) are skipped and counted in the Unknown field of the struct
// they appear in, so a kernel upgrade never breaks an older build. A
// malformed attribute is an error naming its path in spec names, for example
// tuple-orig.tuple-ip.ip-v4-src: want 4 bytes, got 5.
//
// # Kernels
//
// The spec follows the UAPI headers of Linux 6.18. Attributes and filters
// that a kernel does not know are ignored or refused by it; the client
// documents, per operation, from which kernel version a feature works.
package ctnetlink

//go:generate go run github.com/ctspec/ctspec/gen -spec ../spec/conntrack.yaml -out . -pkg ctnetlink
