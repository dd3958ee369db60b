package ctnetlink

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestKernelSelectorRefused checks that Dump, Flush and Cleanup refuse a
// selector with event types, an unknown family or an invalid prefix with
// an *Error that names the operation and the fault, before sending
// anything.
func TestKernelSelectorRefused(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	for _, tt := range []struct {
		name string
		s    Selector
		want string
	}{
		{"types", Selector{Types: Is(EventNew)}, "types: event types select events only"},
		{"family", Selector{Family: 7}, "family 7 is neither AF_INET nor AF_INET6"},
		{"prefix", Selector{OrigDst: Is(netip.Prefix{})}, "orig-dst: invalid prefix"},
	} {
		errs := map[string]error{}
		for _, err := range c.Dump(ctx, &tt.s) {
			errs["dump"] = err
			break
		}
		errs["flush"] = c.Flush(ctx, &tt.s)
		_, errs["cleanup"] = c.Cleanup(ctx, []Selector{{}, tt.s}, nil)
		for op, err := range errs {
			var e *Error
			if !errors.As(err, &e) || e.Op != op || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: %s: got %v, want an *Error of op %s with %q", tt.name, op, err, op, tt.want)
			}
		}
	}
	// Nothing was flushed or deleted: the namespace's table stays usable.
	if _, err := c.List(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// TestKernelSelectorMappedAddress checks that an IPv4-mapped IPv6 host
// selects no flow, without error, in a dump and a flush: the kernel
// reports IPv4 flows with IPv4 addresses.
func TestKernelSelectorMappedAddress(t *testing.T) {
	_, c := dialNS(t)
	ctx := ctx(t)
	if err := c.Create(ctx, testFlow("192.0.2.1", "192.0.2.2", 1000, 80)); err != nil {
		t.Fatal(err)
	}
	s := &Selector{OrigSrc: HostIs(netip.MustParseAddr("::ffff:192.0.2.1"))}
	flows, err := c.List(ctx, s)
	if err != nil || len(flows) != 0 {
		t.Fatalf("list: %d flows, %v; want none", len(flows), err)
	}
	if err := c.Flush(ctx, s); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if all, err := c.List(ctx, nil); err != nil || len(all) != 1 {
		t.Fatalf("after the flush: %d flows, %v; want 1", len(all), err)
	}
}
