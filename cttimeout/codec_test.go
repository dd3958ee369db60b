package cttimeout

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// attr builds one attribute by hand.
func attr(typ uint16, payload []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func TestDecodePolicy(t *testing.T) {
	// A TCP policy as the kernel sends it, with an attribute of a newer
	// kernel at the top and one in the data nest.
	data := append(attr(3, be32(100)), attr(11, be32(7))...) // ESTABLISHED, UNACK
	data = append(data, attr(40, be32(1))...)
	msg := attr(1, []byte("web\x00"))
	msg = append(msg, attr(2, []byte{0, 2})...)
	msg = append(msg, attr(3, []byte{6})...)
	msg = append(msg, attr(5, be32(1))...)
	msg = append(msg, attr(4|0x8000, data)...)
	msg = append(msg, attr(30, nil)...)

	got, err := decodePolicy(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{Name: "web", Family: 2, Protocol: 6, Use: 1, Unknown: 2,
		Timeouts: Timeouts{"ESTABLISHED": 100 * time.Second, "UNACK": 7 * time.Second}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decodePolicy (-want +got):\n%s", diff)
	}
}

func TestDecodePolicyErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"short timeout", append(attr(3, []byte{17}), attr(4, attr(1, []byte{1, 2}))...), "udp-attrs.unreplied"},
		{"no set for protocol", append(attr(3, []byte{99}), attr(4, attr(1, be32(1)))...), "protocol 99"},
		{"truncated", attr(1, []byte("abc\x00"))[:6], ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodePolicy(tt.msg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestEncodeTimeouts(t *testing.T) {
	got, err := encodeTimeouts(unix.IPPROTO_GRE, Timeouts{"REPLIED": 180 * time.Second, "UNREPLIED": 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := append(attr(1, be32(30)), attr(2, be32(180))...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("encodeTimeouts (-want +got):\n%s", diff)
	}
	for _, bad := range []Timeouts{{"ESTABLISHED": time.Second}, {"REPLIED": -time.Second}, {"REPLIED": time.Millisecond}, {"REPLIED": 1 << 32 * time.Second}} {
		if _, err := encodeTimeouts(unix.IPPROTO_GRE, bad); err == nil {
			t.Errorf("encodeTimeouts(%v) succeeded", bad)
		}
	}
}
