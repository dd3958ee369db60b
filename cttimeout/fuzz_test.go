package cttimeout

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// seedProtocols are the protocols with a timeout set.
var seedProtocols = []uint8{
	unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6,
	unix.IPPROTO_DCCP, unix.IPPROTO_SCTP, unix.IPPROTO_GRE, ProtoGeneric,
}

// fuzzSeeds returns the payloads of set found in the requests this package
// encodes for every protocol, each state with a timeout of its own. They are
// our encoding, not the kernel's (whose data attribute also carries
// NLA_F_NESTED), so none is canonical.
func fuzzSeeds(tb testing.TB, set int) []fuzzSeed {
	var seeds []fuzzSeed
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
			seeds = append(seeds, fuzzSeed{name: p.Name, data: msg})
		case ps:
			seeds = append(seeds, fuzzSeed{name: p.Name, data: data})
		}
	}
	return seeds
}
