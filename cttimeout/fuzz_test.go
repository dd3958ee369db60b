package cttimeout

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/fuzzattr"
)

// seedProtocols are the protocols with a timeout set.
var seedProtocols = []uint8{
	unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6,
	unix.IPPROTO_DCCP, unix.IPPROTO_SCTP, unix.IPPROTO_GRE, ProtoGeneric,
}

// fuzzSeeds returns the payloads of set found in the captured kernel
// messages and in the requests this package encodes for every protocol,
// each state with a timeout of its own. A captured data nest is canonical;
// a captured message is not, because the kernel flags its data attribute
// NLA_F_NESTED, which the binary data field does not keep.
func fuzzSeeds(tb testing.TB, set int) []fuzzattr.Seed {
	var seeds []fuzzattr.Seed
	for _, m := range goldenMessages(tb) {
		attrs := m.Payload[4:]
		if set == schemaMessage {
			seeds = append(seeds, fuzzattr.Seed{Name: m.Name, Data: attrs})
			continue
		}
		var msg Message
		if err := msg.UnmarshalAttributes(attrs); err != nil {
			tb.Fatalf("%s: %v", m.Name, err)
		}
		if ps, ok := protoSet(msg.L4Proto); ok && ps == set {
			seeds = append(seeds, fuzzattr.Seed{Name: m.Name, Data: dataOf(tb, attrs), Canonical: true})
		}
	}
	for _, proto := range seedProtocols {
		t := Timeouts{}
		for i, s := range States(proto) {
			t[s] = time.Duration(10+i) * time.Second
		}
		p := &Policy{Name: fmt.Sprintf("seed-%d", proto), Family: unix.NFPROTO_IPV4, Protocol: proto, Timeouts: t}
		msg, err := encodePolicy(nil, p, true)
		if err != nil {
			tb.Fatalf("encode seed for protocol %d: %v", proto, err)
		}
		data, _ := encodeTimeouts(proto, t)
		ps, _ := protoSet(proto)
		switch set {
		case schemaMessage:
			seeds = append(seeds, fuzzattr.Seed{Name: p.Name, Data: msg})
		case ps:
			seeds = append(seeds, fuzzattr.Seed{Name: p.Name, Data: data})
		}
	}
	return seeds
}

// FuzzDecodePolicy fuzzes the hand-written decoder of a whole message,
// data nest included: no panic, and the timeouts it decodes re-encode to
// bytes that decode to the same timeouts.
func FuzzDecodePolicy(f *testing.F) {
	seeds := fuzzSeeds(f, schemaMessage)
	if len(seeds) == 0 {
		f.Fatal("no seed")
	}
	for _, s := range seeds {
		if _, err := decodePolicy(s.Data); err != nil {
			f.Fatalf("seed from %s: %v", s.Name, err)
		}
		f.Add(s.Data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePolicy(b)
		if err != nil || p.Timeouts == nil {
			return
		}
		enc, err := encodeTimeouts(p.Protocol, p.Timeouts)
		if err != nil {
			t.Fatalf("encoding decoded timeouts: %v", err)
		}
		again, _, err := decodeTimeouts(p.Protocol, enc)
		if err != nil || len(again) != len(p.Timeouts) {
			t.Fatalf("round trip: %v, %d states, want %d", err, len(again), len(p.Timeouts))
		}
		for k, v := range p.Timeouts {
			if again[k] != v {
				t.Fatalf("round trip: %s = %v, want %v", k, again[k], v)
			}
		}
	})
}
