package nfqueue

import (
	"encoding/binary"
	"testing"
)

// rawAttrs walks netlink attributes by hand: type (without flags) to
// payload.
func rawAttrs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	out := map[uint16][]byte{}
	for len(b) >= 4 {
		n := int(binary.LittleEndian.Uint16(b))
		if n < 4 || n > len(b) {
			t.Fatalf("bad attribute length %d in %x", n, b)
		}
		out[binary.LittleEndian.Uint16(b[2:])&0x3fff] = b[4:n]
		b = b[(n+3)&^3:]
	}
	return out
}

// TestVerdictConnMark checks that a verdict that changes the conntrack
// entry carries NFQA_CT (11) with CTA_MARK (8, big-endian) and CTA_LABELS
// (22) inside, read with a hand-written attribute walk.
func TestVerdictConnMark(t *testing.T) {
	mark := uint32(0x01020304)
	var q queue
	b, err := q.verdictAttrs(nil, 7, &Verdict{Action: Accept, ConnMark: &mark, ConnLabels: []byte{1, 0, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	top := rawAttrs(t, b)
	ct, ok := top[11]
	if !ok {
		t.Fatalf("no NFQA_CT in %x", b)
	}
	in := rawAttrs(t, ct)
	if got := in[8]; len(got) != 4 || binary.BigEndian.Uint32(got) != mark {
		t.Errorf("CTA_MARK %x, want %08x", got, mark)
	}
	if got := in[22]; string(got) != "\x01\x00\x00\x00" {
		t.Errorf("CTA_LABELS %x", got)
	}
	if hdr := top[2]; len(hdr) != 8 || binary.BigEndian.Uint32(hdr[4:]) != 7 || binary.BigEndian.Uint32(hdr) != 1 {
		t.Errorf("NFQA_VERDICT_HDR %x, want verdict 1 (accept) for id 7", hdr)
	}
}
