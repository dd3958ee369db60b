package nfnl

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
)

func TestBatchMessages(t *testing.T) {
	attrs := Header{Family: 2, Version: Version0}.Append(nil)
	attrs = append(attrs, 5, 0, 1, 0, 0xaa, 0, 0, 0) // one attribute, padded
	reqA := netlink.Message{
		Header: netlink.Header{Type: Type(SubsysNFTables, 0), Flags: Create | Acknowledge},
		Data:   attrs,
	}
	reqB := netlink.Message{
		Header: netlink.Header{Type: Type(SubsysNFTables, 2), Flags: Request, Sequence: 99, Length: 1},
		Data:   Header{Family: 2, Version: Version0}.Append(nil),
	}
	marker := []byte{0, 0, 0, 10} // AF_UNSPEC, NFNETLINK_V0, res_id 10 big-endian

	tests := []struct {
		name  string
		s     Subsystem
		reqs  []netlink.Message
		first uint32
		want  []netlink.Message
	}{
		{
			name:  "empty",
			s:     SubsysNFTables,
			first: 1,
			want: []netlink.Message{
				{Header: netlink.Header{Length: 20, Type: 0x10, Flags: Request, Sequence: 1}, Data: marker},
				{Header: netlink.Header{Length: 20, Type: 0x11, Flags: Request, Sequence: 2}, Data: marker},
			},
		},
		{
			name:  "two requests",
			s:     SubsysNFTables,
			reqs:  []netlink.Message{reqA, reqB},
			first: 100,
			want: []netlink.Message{
				{Header: netlink.Header{Length: 20, Type: 0x10, Flags: Request, Sequence: 100}, Data: marker},
				{Header: netlink.Header{Length: 28, Type: 0x0a00, Flags: Request | Create | Acknowledge, Sequence: 101}, Data: reqA.Data},
				{Header: netlink.Header{Length: 20, Type: 0x0a02, Flags: Request, Sequence: 102}, Data: reqB.Data},
				{Header: netlink.Header{Length: 20, Type: 0x11, Flags: Request, Sequence: 103}, Data: marker},
			},
		},
		{
			name:  "sequence wraps",
			s:     SubsysIPSet,
			reqs:  []netlink.Message{reqB},
			first: math.MaxUint32 - 1,
			want: []netlink.Message{
				{Header: netlink.Header{Length: 20, Type: 0x10, Flags: Request, Sequence: math.MaxUint32 - 1}, Data: []byte{0, 0, 0, 6}},
				{Header: netlink.Header{Length: 20, Type: 0x0a02, Flags: Request, Sequence: math.MaxUint32}, Data: reqB.Data},
				{Header: netlink.Header{Length: 20, Type: 0x11, Flags: Request, Sequence: 0}, Data: []byte{0, 0, 0, 6}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBatch(tt.s)
			for i, m := range tt.reqs {
				if got := b.Add(m); got != i {
					t.Fatalf("Add returned index %d, want %d", got, i)
				}
			}
			if diff := cmp.Diff(len(tt.reqs), b.Len()); diff != "" {
				t.Fatalf("unexpected Len (-want +got):\n%s", diff)
			}
			got := b.Messages(tt.first)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("unexpected messages (-want +got):\n%s", diff)
			}
			for _, m := range got {
				if _, err := m.MarshalBinary(); err != nil {
					t.Fatalf("message %+v does not marshal: %v", m.Header, err)
				}
			}
		})
	}
}

func TestBatchIndex(t *testing.T) {
	req := netlink.Message{
		Header: netlink.Header{Type: Type(SubsysNFTables, 0)},
		Data:   Header{}.Append(nil),
	}
	type lookup struct {
		Seq   uint32
		Index int
		OK    bool
	}
	tests := []struct {
		name    string
		n       int
		first   uint32
		noFrame bool
		lookups []lookup
	}{
		{
			name:    "before Messages",
			n:       2,
			noFrame: true,
			lookups: []lookup{{Seq: 0}, {Seq: 1}, {Seq: 2}},
		},
		{
			name:  "empty batch",
			first: 10,
			lookups: []lookup{
				{Seq: 10}, {Seq: 11}, {Seq: 12},
			},
		},
		{
			name:  "three requests",
			n:     3,
			first: 10,
			lookups: []lookup{
				{Seq: 9},
				{Seq: 10}, // begin marker
				{Seq: 11, Index: 0, OK: true},
				{Seq: 12, Index: 1, OK: true},
				{Seq: 13, Index: 2, OK: true},
				{Seq: 14}, // end marker
				{Seq: 15},
				{Seq: 0},
			},
		},
		{
			name:  "wrapping sequence numbers",
			n:     3,
			first: math.MaxUint32 - 1,
			lookups: []lookup{
				{Seq: math.MaxUint32 - 1}, // begin marker
				{Seq: math.MaxUint32, Index: 0, OK: true},
				{Seq: 0, Index: 1, OK: true},
				{Seq: 1, Index: 2, OK: true},
				{Seq: 2}, // end marker
				{Seq: math.MaxUint32 - 2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBatch(SubsysNFTables)
			for range tt.n {
				b.Add(req)
			}
			if !tt.noFrame {
				b.Messages(tt.first)
			}
			var got []lookup
			for _, l := range tt.lookups {
				i, ok := b.Index(l.Seq)
				got = append(got, lookup{Seq: l.Seq, Index: i, OK: ok})
			}
			if diff := cmp.Diff(tt.lookups, got); diff != "" {
				t.Fatalf("unexpected Index results (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBatchIndexFollowsLastFrame(t *testing.T) {
	b := NewBatch(SubsysNFTables)
	req := netlink.Message{Header: netlink.Header{Type: Type(SubsysNFTables, 0)}, Data: Header{}.Append(nil)}
	b.Add(req)
	b.Messages(1) // request 0 at seq 2
	b.Add(req)    // not in the last frame yet
	if i, ok := b.Index(3); ok {
		t.Fatalf("Index(3) = %d, true for a request outside the last frame", i)
	}
	b.Messages(50) // requests at 51 and 52
	for _, seq := range []uint32{2, 3} {
		if i, ok := b.Index(seq); ok {
			t.Fatalf("Index(%d) = %d, true for the previous frame", seq, i)
		}
	}
	if i, ok := b.Index(52); !ok || i != 1 {
		t.Fatalf("Index(52) = %d, %v, want 1, true", i, ok)
	}
	b.Reset()
	if b.Len() != 0 {
		t.Fatalf("Len after Reset = %d, want 0", b.Len())
	}
	if i, ok := b.Index(51); ok {
		t.Fatalf("Index(51) = %d, true after Reset", i)
	}
	if got := b.Subsystem(); got != SubsysNFTables {
		t.Fatalf("Subsystem after Reset = %v, want %v", got, SubsysNFTables)
	}
}
