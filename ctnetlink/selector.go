package ctnetlink

import (
	"net/netip"
	"slices"
)

// Selector selects flows, and events of flows: Dump, DumpZero, List,
// Flush, Cleanup and Plan take one (Cleanup several), ListenConfig.Filter
// and MirrorConfig.Filter take one. The zero Selector selects every flow
// and every event.
//
// # Conditions
//
// Every field that is set is one condition, and a flow is selected when it
// passes all of them (AND); Cleanup takes several selectors and deletes
// what any of them selects (OR). An unset field is no condition: a zero
// Family, an empty OneOf (negated or not), a nil label bitmap, an empty
// Helper, a nil Func. A OneOf passes when the flow's value is one of its
// values (OR), and with Negate when it is none of them.
//
// A flow that has no value for a field fails the field's condition, and
// passes it negated: a port condition for an ICMP flow, an ICMP condition
// for a TCP flow, a TCP state condition for a UDP flow. An address
// condition compares the address of the flow's family with the prefixes:
// an IPv4 flow is in no IPv6 prefix. The host bits of a prefix are
// ignored; Host makes the prefix of one address.
//
// # Zero masks
//
// A MarkMatch or StatusMatch with a zero Mask is one value like any other,
// and means the same in the kernel, in the BPF program of a Listener and in
// Match:
//
//   - MarkMatch{Mark: m} compares all 32 bits: the flow's mark is m. So
//     Is(MarkMatch{}) selects unmarked flows (mark 0), as conntrack -m 0.
//   - StatusMatch{Status: s} compares the bits of s: the flow has every
//     bit of s set, as conntrack -u ASSURED,SEEN_REPLY. So
//     Is(StatusMatch{Mask: StatusAssured}) selects the flows that are not
//     assured, and Is(StatusMatch{}) selects every flow.
//
// The mark of an event without CTA_MARK is 0; the zone of a flow is its
// zone id (Flow.ZoneID), as the kernel's dump and flush filters read it.
//
// # Where the conditions run
//
// Each lowering evaluates what it can, and the client evaluates the whole
// selector with Match on what the kernel returns, so no call ever yields a
// flow the selector rejects:
//
//   - Dump, List and Flush send the conditions with one positive value that
//     the kernel filters by (family; mark; status; zone; the original
//     tuple's protocol, host addresses, ports and ICMP fields, as
//     CTA_FILTER), see Capabilities for which kernels evaluate which. A
//     flush is trusted to the kernel only when it evaluates every condition
//     correctly; otherwise the client dumps and deletes.
//   - Listen compiles Types, Family, Proto, the four address fields, the
//     original ports, Mark, Status and Zone into a classic BPF program that
//     the kernel runs on the socket (see ListenConfig.Filter and Program);
//     the other fields are left to Match.
//
// Types applies to events only: Dump, List, Flush, Cleanup and NewMirror
// fail with a selector that sets it. Expectation events pass every other
// condition.
//
// A Selector is a plain value: the calls that take one copy it, so
// changing it afterwards changes nothing. Match may be called from several
// goroutines at once if Func may.
type Selector struct {
	// Types selects the kinds of events (events only): EventNew,
	// EventUpdate, EventDestroy, EventExpNew and EventExpDestroy.
	Types OneOf[EventType]

	// Family is unix.AF_INET or unix.AF_INET6, or 0 for both.
	Family uint8

	// Proto selects layer 4 protocol numbers of the original tuple
	// (unix.IPPROTO_TCP, ...).
	Proto OneOf[uint8]

	// OrigSrc, OrigDst, ReplySrc and ReplyDst select the addresses of
	// the original and reply tuples by prefix.
	OrigSrc, OrigDst, ReplySrc, ReplyDst OneOf[netip.Prefix]

	// OrigSrcPort, OrigDstPort, ReplySrcPort and ReplyDstPort select the
	// ports of the original and reply tuples.
	OrigSrcPort, OrigDstPort, ReplySrcPort, ReplyDstPort OneOf[uint16]

	// ICMPType, ICMPCode and ICMPID select the original tuple's ICMP or
	// ICMPv6 fields.
	ICMPType, ICMPCode OneOf[uint8]
	ICMPID             OneOf[uint16]

	// Mark selects marks under masks (see Zero masks above).
	Mark OneOf[MarkMatch]

	// Status selects status bits under masks (see Zero masks above).
	Status OneOf[StatusMatch]

	// Zone selects the flow's zone id as the kernel's filters read it
	// (Flow.ZoneID): a flow whose zone applies to one direction only is in
	// that zone. OrigZone and ReplyZone select the zone each direction is
	// in: the flow's zone when it applies to that direction (CTA_ZONE for
	// both, CTA_TUPLE_ZONE for one), else 0.
	Zone, OrigZone, ReplyZone OneOf[uint16]

	// LabelsAll selects flows that have every label bit set here;
	// LabelsAny flows that have at least one. Both are bitmaps in the
	// kernel's layout: label n is bit n%8 of byte n/8.
	LabelsAll, LabelsAny []byte

	// TCPStates, SCTPStates and DCCPStates select protocol states.
	TCPStates  OneOf[TCPState]
	SCTPStates OneOf[SCTPState]
	DCCPStates OneOf[DCCPState]

	// Helper, if not empty, selects flows with the helper of that name.
	Helper string

	// Func, if not nil, is ANDed with the fields: it is called last, in
	// user space, only for flows that pass every field. It must not keep
	// f, which is reused for the next flow, nor change it. A selector
	// with Func is never a kernel flush; its fields still narrow what the
	// kernel sends.
	Func func(f *Flow) bool
}

// OneOf is one condition of a Selector: the flow's value is one of Values,
// or with Negate none of them. An empty Values is no condition at all,
// whatever Negate says. Is, AnyOf and NoneOf make one.
type OneOf[T comparable] struct {
	Values []T
	Negate bool
}

// Is returns the condition that the value is v.
func Is[T comparable](v T) OneOf[T] { return OneOf[T]{Values: []T{v}} }

// AnyOf returns the condition that the value is one of vs.
func AnyOf[T comparable](vs ...T) OneOf[T] { return OneOf[T]{Values: vs} }

// NoneOf returns the condition that the value is none of vs.
func NoneOf[T comparable](vs ...T) OneOf[T] { return OneOf[T]{Values: vs, Negate: true} }

// Port returns the condition that a port is p.
func Port(p uint16) OneOf[uint16] { return Is(p) }

// Protocol returns the condition that the layer 4 protocol number is p
// (unix.IPPROTO_TCP, ...).
func Protocol(p uint8) OneOf[uint8] { return Is(p) }

// Host returns the prefix of the single address a: 32 bits for IPv4, 128
// for IPv6.
func Host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// HostIs returns the condition that an address is a.
func HostIs(a netip.Addr) OneOf[netip.Prefix] { return Is(Host(a)) }

// set reports whether the condition applies.
func (c *OneOf[T]) set() bool { return len(c.Values) > 0 }

// test evaluates the condition, eq telling whether the flow's value equals
// one list value. An empty list passes.
func (c *OneOf[T]) test(eq func(T) bool) bool {
	if len(c.Values) == 0 {
		return true
	}
	return slices.ContainsFunc(c.Values, eq) != c.Negate
}

// has evaluates the condition for a value v that the flow has if ok.
func (c *OneOf[T]) has(v T, ok bool) bool {
	if len(c.Values) == 0 {
		return true
	}
	return (ok && slices.Contains(c.Values, v)) != c.Negate
}

// single returns the condition's value when it is exactly one value,
// not negated: the only kind the kernel's dump and flush filters take.
func (c *OneOf[T]) single() (T, bool) {
	if len(c.Values) == 1 && !c.Negate {
		return c.Values[0], true
	}
	var zero T
	return zero, false
}

func (c OneOf[T]) clone() OneOf[T] {
	return OneOf[T]{Values: slices.Clone(c.Values), Negate: c.Negate}
}

// MarkMatch is a mark under a mask: a flow's mark ANDed with Mask equals
// Mark ANDed with Mask, as in conntrack's -m MARK[/MASK]. Selector says
// what a zero Mask means.
type MarkMatch struct {
	Mark, Mask uint32
}

func (m MarkMatch) mask() uint32 {
	if m.Mask == 0 {
		return ^uint32(0)
	}
	return m.Mask
}

// StatusMatch is status bits under a mask: a flow's status ANDed with Mask
// equals Status ANDed with Mask. Selector says what a zero Mask means.
type StatusMatch struct {
	Status, Mask Status
}

func (m StatusMatch) mask() Status {
	if m.Mask == 0 {
		return m.Status
	}
	return m.Mask
}

// Clone returns a deep copy of s, or nil if s is nil: changing one never
// changes the other.
func (s *Selector) Clone() *Selector {
	if s == nil {
		return nil
	}
	c := *s
	c.Types = s.Types.clone()
	c.Proto = s.Proto.clone()
	c.OrigSrc, c.OrigDst = s.OrigSrc.clone(), s.OrigDst.clone()
	c.ReplySrc, c.ReplyDst = s.ReplySrc.clone(), s.ReplyDst.clone()
	c.OrigSrcPort, c.OrigDstPort = s.OrigSrcPort.clone(), s.OrigDstPort.clone()
	c.ReplySrcPort, c.ReplyDstPort = s.ReplySrcPort.clone(), s.ReplyDstPort.clone()
	c.ICMPType, c.ICMPCode, c.ICMPID = s.ICMPType.clone(), s.ICMPCode.clone(), s.ICMPID.clone()
	c.Mark, c.Status = s.Mark.clone(), s.Status.clone()
	c.Zone, c.OrigZone, c.ReplyZone = s.Zone.clone(), s.OrigZone.clone(), s.ReplyZone.clone()
	c.LabelsAll, c.LabelsAny = slices.Clone(s.LabelsAll), slices.Clone(s.LabelsAny)
	c.TCPStates, c.SCTPStates, c.DCCPStates = s.TCPStates.clone(), s.SCTPStates.clone(), s.DCCPStates.clone()
	return &c
}

// empty reports whether s sets no condition.
func (s *Selector) empty() bool {
	return s == nil || !s.Types.set() && s.Family == 0 && !s.flowConds()
}

// flowConds reports whether s sets a condition on flows other than Family.
func (s *Selector) flowConds() bool {
	return s.Proto.set() || s.addrConds() || s.portConds() || s.icmpConds() ||
		s.Mark.set() || s.Status.set() || s.Zone.set() || s.userSpaceOnly()
}

func (s *Selector) addrConds() bool {
	return s.OrigSrc.set() || s.OrigDst.set() || s.ReplySrc.set() || s.ReplyDst.set()
}

func (s *Selector) portConds() bool {
	return s.OrigSrcPort.set() || s.OrigDstPort.set() || s.ReplySrcPort.set() || s.ReplyDstPort.set()
}

// tupleConds reports whether s sets a condition that a kernel lowers into
// CTA_FILTER: protocol, original addresses, ports or ICMP fields.
func (s *Selector) tupleConds() bool {
	return s.Proto.set() || s.OrigSrc.set() || s.OrigDst.set() || s.OrigSrcPort.set() || s.OrigDstPort.set() || s.icmpConds()
}

func (s *Selector) icmpConds() bool {
	return s.ICMPType.set() || s.ICMPCode.set() || s.ICMPID.set()
}

// Stable reports whether every condition of s is on a value a flow keeps
// for its whole life (family, protocol, addresses, ports, ICMP fields,
// zones), so that no update can move a flow into or out of the selection.
// A condition on the mark, the status, labels, protocol states, the
// helper or a Func makes s unstable. A nil s is stable.
func (s *Selector) Stable() bool {
	if s == nil {
		return true
	}
	return !s.Mark.set() && !s.Status.set() && len(s.LabelsAll) == 0 && len(s.LabelsAny) == 0 &&
		!s.TCPStates.set() && !s.SCTPStates.set() && !s.DCCPStates.set() && s.Helper == "" && s.Func == nil
}

// userSpaceOnly reports whether s sets a condition that no kernel filter
// evaluates, neither a dump, a flush nor the BPF program.
func (s *Selector) userSpaceOnly() bool {
	return s.Func != nil || s.OrigZone.set() || s.ReplyZone.set() || len(s.LabelsAll) > 0 || len(s.LabelsAny) > 0 ||
		s.TCPStates.set() || s.SCTPStates.set() || s.DCCPStates.set() || s.Helper != ""
}
