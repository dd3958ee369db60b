// Command headergen keeps spec/conntrack.yaml in step with the kernel's UAPI
// headers.
//
// The spec is the one source of truth for the generated code, but the
// numbers in it (attribute types, enum values, status bits, message types,
// multicast groups) are the kernel's. headergen reads the headers the spec
// depends on and compares. It needs no compiler and no cgo: it has its own
// small reader for enums, #defines, comments and integer constant
// expressions, which is all a UAPI header uses for these numbers.
//
// # Usage
//
//	headergen check [-spec spec/conntrack.yaml] [-include /usr/include] [-v]
//	headergen sync  [-spec spec/conntrack.yaml] [-include /usr/include] [-kernel X.Y] [-w] [-v]
//
// Both read the spec's uapi-header, the header: of every definition and
// linux/netfilter/nfnetlink.h (for the multicast groups), below the -include
// root.
//
// check prints one line per header name that the spec lacks or disagrees
// with, and fails if there is any:
//
//	/usr/include/linux/netfilter/nfnetlink_conntrack.h:57: CTA_FOO = 28: missing from spec set conntrack-attrs
//	/usr/include/linux/netfilter/nf_conntrack_common.h:40: IPS_BAR = 0x10000: spec says value 0x8000 (definition nf-ct-status, line 301)
//
// It also fails on an enum of the uapi-header that no set or definition
// names, and on any attribute whose doc still carries the TODO marker that
// sync writes. Spec entries and containers the headers lack are fine: the
// spec may be newer than the installed headers. -v lists them.
//
// sync adds what newer headers brought: new attributes at the end of their
// set (an alias just before the first name of its value, with its target's
// type, the target then giving its value explicitly: YNL consumers keep the
// last name listed for a value), and new
// entries at the end of enum and flags definitions. A new attribute gets
// type binary and the doc "TODO(headergen): set the type from
// nf_conntrack_netlink.c", because a header does not say what an attribute
// carries. sync never invents sets, definitions, operations or groups and
// never changes an entry the headers disagree with; it prints those for a
// human instead. It edits only where it adds, so the rest of the file keeps
// its bytes, and a spec that is already current comes out unchanged. Without
// -w it prints a diff and writes nothing. -kernel sets the "Linux X.Y" phrase
// of the spec's head comment.
//
// # Matching
//
// A header enum belongs to the attribute set or definition whose enum-name,
// in C spelling, is its name; flags written as #defines (IP_CT_TCP_FLAG_*)
// belong to the definition whose C names they match, together with the
// #defines around them. Names are compared through the C-name rule of
// internal/spec. Sentinels such as __CTA_MAX and CTA_MAX are skipped.
// Message types are compared as full nlmsg_type values, subsystem << 8 |
// message, with the subsystems of the msgEnums table in match.go.
//
// # Updating to a new kernel
//
//  1. Get the new headers: install a newer linux-libc-dev (then DIR is
//     /usr/include, the default), or run make headers_install in a kernel
//     tree and use its usr/include as DIR.
//  2. go run ./tools/headergen check -include DIR shows what changed.
//  3. go run ./tools/headergen sync -include DIR -w -kernel X.Y adds it.
//  4. For each attribute marked TODO(headergen), set the type, byte order,
//     checks and doc from the nla_policy and the nla_put calls in
//     net/netfilter/nf_conntrack_netlink.c, and remove the marker. Add by
//     hand what sync printed as not synced.
//  5. go run ./tools/headergen check -include DIR passes again.
//  6. go generate ./... regenerates ctnetlink.
//  7. Review the diff of the spec and of the exported API before merging.
//
// The test TestInstalledHeaders runs check against /usr/include, or the
// directory in HEADERGEN_INCLUDE, as part of go test ./... and make check.
package main
