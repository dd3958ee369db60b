package cttimeout

import (
	"fmt"
	"math"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nlattr"
)

// Timeouts maps the state names of one protocol, such as "ESTABLISHED", to
// their timeouts. See the package documentation for the names. A Timeouts
// value is not safe for concurrent writes.
type Timeouts map[string]time.Duration

// ProtoGeneric is the l4proto of the generic tracker's defaults, which
// apply to protocols without a tracker of their own.
const ProtoGeneric = 255

// protoSet returns the schema index of the timeout set of protocol p, and
// false for a protocol the kernel has no timeout set for.
func protoSet(p uint8) (int, bool) {
	switch p {
	case unix.IPPROTO_TCP:
		return schemaTCP, true
	case unix.IPPROTO_UDP:
		return schemaUDP, true
	case unix.IPPROTO_UDPLITE:
		return schemaUDPLite, true
	case unix.IPPROTO_ICMP:
		return schemaICMP, true
	case unix.IPPROTO_ICMPV6:
		return schemaICMPv6, true
	case unix.IPPROTO_DCCP:
		return schemaDCCP, true
	case unix.IPPROTO_SCTP:
		return schemaSCTP, true
	case unix.IPPROTO_GRE:
		return schemaGRE, true
	case ProtoGeneric:
		return schemaGeneric, true
	}
	return 0, false
}

// stateName is the Timeouts key of spec attribute name: "syn-sent" is
// "SYN_SENT".
func stateName(spec string) string {
	return strings.ToUpper(strings.ReplaceAll(spec, "-", "_"))
}

// States returns the state names of protocol p in the kernel's order, or
// nil for a protocol without a timeout set.
func States(p uint8) []string {
	set, ok := protoSet(p)
	if !ok {
		return nil
	}
	var out []string
	for _, a := range schema[set].attrs[1:] {
		out = append(out, stateName(a.name))
	}
	return out
}

// decodeTimeouts decodes the data attribute of protocol p. Attributes the
// set does not know are skipped and counted.
func decodeTimeouts(p uint8, b []byte) (Timeouts, int, error) {
	set, ok := protoSet(p)
	if !ok {
		return nil, 0, fmt.Errorf("data: no timeout set for protocol %d", p)
	}
	attrs := schema[set].attrs
	t := Timeouts{}
	unknown := 0
	d := nlattr.NewDecoder(b)
	for d.Next() {
		typ := int(d.Type())
		if typ == 0 || typ >= len(attrs) {
			unknown++
			continue
		}
		t[stateName(attrs[typ].name)] = time.Duration(d.Uint32BE()) * time.Second
	}
	if err := d.Err(func(typ uint16) string {
		if int(typ) < len(attrs) {
			return schema[set].name + "." + attrs[typ].name
		}
		return fmt.Sprintf("%s.%d", schema[set].name, typ)
	}); err != nil {
		return nil, 0, fmt.Errorf("data: %w", err)
	}
	return t, unknown, nil
}

// encodeTimeouts encodes t for protocol p in the kernel's order. A state
// the protocol lacks, or a timeout that is negative, not whole seconds or
// beyond 2^32-1 seconds, is an error.
func encodeTimeouts(p uint8, t Timeouts) ([]byte, error) {
	set, ok := protoSet(p)
	if !ok {
		return nil, fmt.Errorf("no timeout set for protocol %d", p)
	}
	attrs := schema[set].attrs
	known := 0
	e := nlattr.NewEncoder(nil)
	for typ := 1; typ < len(attrs); typ++ {
		name := stateName(attrs[typ].name)
		v, ok := t[name]
		if !ok {
			continue
		}
		known++
		if v < 0 || v%time.Second != 0 || v/time.Second > math.MaxUint32 {
			return nil, fmt.Errorf("%s: timeout %v is not a whole number of seconds in [0, 2^32)", name, v)
		}
		e.Uint32BE(uint16(typ), uint32(v/time.Second))
	}
	if known != len(t) {
		for name := range t {
			if !isState(attrs, name) {
				return nil, fmt.Errorf("protocol %d has no state %q (states: %s)", p, name, strings.Join(States(p), ", "))
			}
		}
	}
	return e.Bytes(), nil
}

func isState(attrs []schemaAttr, name string) bool {
	for _, a := range attrs[1:] {
		if stateName(a.name) == name {
			return true
		}
	}
	return false
}
