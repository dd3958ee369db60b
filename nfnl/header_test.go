package nfnl

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestHeaderRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		h     Header
		attrs []byte
		b     []byte
	}{
		{
			name: "zero",
			b:    []byte{0, 0, 0, 0},
		},
		{
			name: "inet",
			h:    Header{Family: unix.AF_INET, Version: Version0},
			b:    []byte{2, 0, 0, 0},
		},
		{
			name:  "resource id is big-endian",
			h:     Header{Family: unix.AF_INET6, Version: Version0, ResourceID: 0x0102},
			attrs: []byte{8, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef},
			b:     []byte{10, 0, 1, 2, 8, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef},
		},
		{
			name: "batch marker for subsystem 10",
			h:    Header{Family: unix.AF_UNSPEC, Version: Version0, ResourceID: uint16(SubsysNFTables)},
			b:    []byte{0, 0, 0, 10},
		},
		{
			name: "all ones",
			h:    Header{Family: 0xff, Version: 0xff, ResourceID: 0xffff},
			b:    []byte{0xff, 0xff, 0xff, 0xff},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := append(tt.h.Append(nil), tt.attrs...)
			if diff := cmp.Diff(tt.b, b); diff != "" {
				t.Fatalf("unexpected encoding (-want +got):\n%s", diff)
			}
			h, attrs, err := ParseHeader(tt.b)
			if err != nil {
				t.Fatalf("failed to parse: %v", err)
			}
			if diff := cmp.Diff(tt.h, h); diff != "" {
				t.Fatalf("unexpected header (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.attrs, attrs, cmpEmptyBytes); diff != "" {
				t.Fatalf("unexpected attributes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHeaderShort(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{name: "nil", b: nil, want: "nfnl: nfgenmsg header: want 4 bytes, got 0"},
		{name: "one byte", b: []byte{2}, want: "nfnl: nfgenmsg header: want 4 bytes, got 1"},
		{name: "three bytes", b: []byte{2, 0, 0}, want: "nfnl: nfgenmsg header: want 4 bytes, got 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, attrs, err := ParseHeader(tt.b)
			if err == nil {
				t.Fatalf("expected an error, got header %+v and attributes %x", h, attrs)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Fatalf("unexpected error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHeaderAppendNoAlloc(t *testing.T) {
	buf := make([]byte, 0, 64)
	h := Header{Family: unix.AF_INET, Version: Version0, ResourceID: 7}
	allocs := testing.AllocsPerRun(100, func() {
		_ = h.Append(buf[:0])
	})
	if allocs != 0 {
		t.Fatalf("Append allocated %v times with room in the buffer", allocs)
	}
}

func TestInterrupted(t *testing.T) {
	tests := []struct {
		name  string
		flags netlink.HeaderFlags
		want  bool
	}{
		{name: "none", flags: 0, want: false},
		{name: "multi", flags: netlink.Multi, want: false},
		{name: "NLM_F_DUMP_INTR", flags: 0x10, want: true},
		{name: "multi and NLM_F_DUMP_INTR", flags: netlink.Multi | DumpInterrupted, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Interrupted(netlink.Header{Flags: tt.flags})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("unexpected Interrupted (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlagValues(t *testing.T) {
	// The values of linux/netlink.h.
	tests := []struct {
		name string
		f    netlink.HeaderFlags
		want uint16
	}{
		{name: "NLM_F_REQUEST", f: Request, want: unix.NLM_F_REQUEST},
		{name: "NLM_F_ACK", f: Acknowledge, want: unix.NLM_F_ACK},
		{name: "NLM_F_DUMP", f: Dump, want: unix.NLM_F_DUMP},
		{name: "NLM_F_CREATE", f: Create, want: unix.NLM_F_CREATE},
		{name: "NLM_F_EXCL", f: Excl, want: unix.NLM_F_EXCL},
		{name: "NLM_F_REPLACE", f: Replace, want: unix.NLM_F_REPLACE},
		{name: "NLM_F_DUMP_INTR", f: DumpInterrupted, want: unix.NLM_F_DUMP_INTR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, uint16(tt.f)); diff != "" {
				t.Fatalf("unexpected value (-want +got):\n%s", diff)
			}
		})
	}
}
