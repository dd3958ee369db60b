package nflog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctspec/ctspec/internal/nstest"
)

// attr builds one netlink attribute by hand: length, type, payload, padding.
func attr(typ uint16, payload ...[]byte) []byte {
	p := bytes.Join(payload, nil)
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(p)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, p...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// TestConfigRequest checks the bind request against bytes laid out by hand
// from struct nfulnl_msg_config_cmd and the packed nfulnl_msg_config_mode.
func TestConfigRequest(t *testing.T) {
	cmd := attr(1, []byte{1}) // NFULA_CFG_CMD, NFULNL_CFG_CMD_BIND
	tests := []struct {
		name string
		cfg  GroupConfig
		want []byte
	}{
		{"defaults", GroupConfig{}, bytes.Join([][]byte{cmd, attr(2, be32(0), []byte{2, 0})}, nil)},
		{"meta", GroupConfig{CopyMode: CopyModeMeta}, bytes.Join([][]byte{cmd, attr(2, be32(0), []byte{1, 0})}, nil)},
		{"everything", GroupConfig{CopyMode: CopyModePacket, CopyRange: 0x1234, KernelBuffer: 64 * KiB, QueueThreshold: 7,
			FlushTimeout: 251 * time.Millisecond, Flags: ConfigFlagsSeq | ConfigFlagsConntrack},
			bytes.Join([][]byte{cmd, attr(2, be32(0x1234), []byte{2, 0}), attr(3, be32(65536)), attr(4, be32(26)),
				attr(5, be32(7)), attr(6, be16(5))}, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configRequest(&tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("request\n got %x\nwant %x", got, tt.want)
			}
		})
	}
}

// TestConfigRequestErrors checks what the client refuses.
func TestConfigRequestErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  GroupConfig
		want string
	}{
		{"range without packet", GroupConfig{CopyMode: CopyModeMeta, CopyRange: 10}, "copy range 10 with copy mode meta"},
		{"range too big", GroupConfig{CopyRange: MaxCopyRange + 1}, "copy range 65532: want 0 to 65531 bytes"},
		{"negative range", GroupConfig{CopyRange: -1}, "copy range -1"},
		{"unknown mode", GroupConfig{CopyMode: 3}, "copy mode 3"},
		{"kernel buffer small", GroupConfig{KernelBuffer: 4 * KiB}, "kernel buffer 4096 bytes"},
		{"kernel buffer big", GroupConfig{KernelBuffer: 129 * KiB}, "kernel buffer 132096 bytes"},
		{"read buffer", GroupConfig{ReadBuffer: -1}, "read buffer -1"},
		{"timeout", GroupConfig{FlushTimeout: -time.Millisecond}, "flush timeout -1ms"},
		{"timeout too long", GroupConfig{FlushTimeout: 1 << 62}, "flush timeout"},
		{"flags", GroupConfig{Flags: 0x18}, "unknown bits 0x18"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := configRequest(&tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestHeaderDefines compares the copy modes and flags, which the header
// gives as #defines, with the installed nfnetlink_log.h.
func TestHeaderDefines(t *testing.T) {
	b, err := os.ReadFile("/usr/include/linux/netfilter/nfnetlink_log.h")
	if err != nil {
		nstest.SkipOrFail(t, "no UAPI header (Debian: linux-libc-dev): "+err.Error())
	}
	want := map[string]uint64{
		"NFULNL_COPY_NONE": uint64(CopyModeNone), "NFULNL_COPY_META": uint64(CopyModeMeta), "NFULNL_COPY_PACKET": uint64(CopyModePacket),
		"NFULNL_CFG_F_SEQ": uint64(ConfigFlagsSeq), "NFULNL_CFG_F_SEQ_GLOBAL": uint64(ConfigFlagsSeqGlobal), "NFULNL_CFG_F_CONNTRACK": uint64(ConfigFlagsConntrack),
	}
	found := 0
	for _, m := range regexp.MustCompile(`(?m)^#define\s+(NFULNL_(?:COPY|CFG_F)_\w+)\s+(0x[0-9a-fA-F]+|\d+)`).FindAllStringSubmatch(string(b), -1) {
		v, err := strconv.ParseUint(m[2], 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[m[1]]
		if !ok {
			t.Errorf("%s = %d: not in the spec", m[1], v)
			continue
		}
		found++
		if v != w {
			t.Errorf("%s = %d, spec says %d", m[1], v, w)
		}
	}
	if found != len(want) {
		t.Errorf("found %d of %d #defines", found, len(want))
	}
}

// TestPacketConntrack decodes a conntrack nest laid out by hand with the
// CTA_* values of nfnetlink_conntrack.h.
func TestPacketConntrack(t *testing.T) {
	tuple := attr(1|0x8000, // CTA_TUPLE_ORIG
		attr(1|0x8000, attr(1, []byte{127, 0, 0, 1}), attr(2, []byte{127, 0, 0, 2})), // CTA_TUPLE_IP: V4_SRC, V4_DST
		attr(2|0x8000, attr(1, []byte{17}), attr(2, be16(40000)), attr(3, be16(53)))) // CTA_TUPLE_PROTO: NUM, SRC_PORT, DST_PORT
	ct := bytes.Join([][]byte{tuple, attr(3, be32(8)), attr(8, be32(0x2a)), attr(12, be32(77))}, nil) // STATUS confirmed, MARK, ID
	msg := bytes.Join([][]byte{attr(1, be16(0x800), []byte{3, 0}), attr(18|0x8000, ct), attr(19, be32(2))}, nil)
	var p Packet
	if err := p.decode(msg, ""); err != nil {
		t.Fatal(err)
	}
	if p.CTInfo != 2 || !p.Has(PacketMsgAttrCt) {
		t.Fatalf("ct info %d, ct present %v", p.CTInfo, p.Has(PacketMsgAttrCt))
	}
	f, err := p.Conntrack()
	if err != nil {
		t.Fatal(err)
	}
	o := f.TupleOrig
	if o.IP.V4Src != netip.MustParseAddr("127.0.0.1") || o.IP.V4Dst != netip.MustParseAddr("127.0.0.2") ||
		o.Proto.Num != 17 || o.Proto.SrcPort != 40000 || o.Proto.DstPort != 53 || f.Mark != 0x2a || f.ID != 77 || f.Status != 8 {
		t.Errorf("flow %+v", f)
	}
	var none Packet
	if f, err := none.Conntrack(); f != nil || err != nil {
		t.Errorf("no ct: %v, %v", f, err)
	}
	bad := bytes.Join([][]byte{attr(18, attr(8, []byte{1, 2}))}, nil)
	if err := p.decode(bad, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Conntrack(); err == nil || !strings.Contains(err.Error(), "nflog: packet: ct: mark") {
		t.Errorf("short mark: %v", err)
	}
}

// TestPacketDecode decodes a message laid out by hand with every attribute
// and checks each field, then that Clone shares nothing with the buffer.
func TestPacketDecode(t *testing.T) {
	hw := append(append(be16(6), 0, 0), 1, 2, 3, 4, 5, 6, 0, 0)
	ts := append(binary.BigEndian.AppendUint64(nil, 1700000000), binary.BigEndian.AppendUint64(nil, 123456)...)
	msg := bytes.Join([][]byte{
		attr(1, be16(0x86dd), []byte{2, 0}), attr(10, []byte("pfx\x00")), attr(4, be32(3)), attr(6, be32(4)),
		attr(5, be32(5)), attr(7, be32(6)), attr(2, be32(0xdead)), attr(8, hw), attr(15, be16(1)), attr(17, be16(14)),
		attr(16, bytes.Repeat([]byte{0xaa}, 14)), attr(3, ts), attr(11, be32(1000)), attr(14, be32(1001)),
		attr(12, be32(9)), attr(13, be32(10)), attr(20|0x8000, attr(2, be16(0x2005)), attr(1, be16(0x8100))),
		attr(21, bytes.Repeat([]byte{0xbb}, 18)), attr(9, []byte{0x60, 0, 0, 0, 0, 0x10, 17, 64}), attr(30, []byte{1}),
	}, nil)
	var p Packet
	if err := p.decode(msg, ""); err != nil {
		t.Fatal(err)
	}
	want := Packet{HWProtocol: 0x86dd, Hook: 2, Prefix: "pfx", InDev: 3, PhysInDev: 4, OutDev: 5, PhysOutDev: 6, Mark: 0xdead,
		HWType: 1, HWLen: 14, UID: 1000, GID: 1001, Seq: 9, SeqGlobal: 10, Unknown: 1}
	got := p
	got.HWAddr, got.HWHeader, got.L2Header, got.Payload, got.Timestamp, got.VLAN, got.present = nil, nil, nil, nil, time.Time{}, Vlan{}, 0
	if got.String() != want.String() {
		t.Errorf("got  %s\nwant %s", got.String(), want.String())
	}
	if p.HWAddr.String() != "01:02:03:04:05:06" || hex.EncodeToString(p.HWHeader) != strings.Repeat("aa", 14) ||
		len(p.L2Header) != 18 || !p.Timestamp.Equal(time.Unix(1700000000, 123456000)) || p.VLAN.Tci != 0x2005 || p.VLAN.Proto != 0x8100 {
		t.Errorf("hwaddr %v hwheader %x l2 %x time %v vlan %+v", p.HWAddr, p.HWHeader, p.L2Header, p.Timestamp, p.VLAN)
	}
	if !p.Truncated() {
		t.Error("an IPv6 header announcing 16 bytes of payload with none is truncated")
	}
	c := p.Clone()
	for i := range msg {
		msg[i] = 0xff
	}
	if c.HWAddr.String() != "01:02:03:04:05:06" || c.Payload[0] != 0x60 || c.HWHeader[0] != 0xaa || c.L2Header[0] != 0xbb {
		t.Errorf("clone shares the buffer: %v %x %x %x", c.HWAddr, c.Payload, c.HWHeader, c.L2Header)
	}
	if p.Payload[0] != 0xff {
		t.Error("payload is not zero-copy")
	}
	for _, b := range [][]byte{attr(2, []byte{1, 2}), attr(1, []byte{1, 2, 3}), attr(3, make([]byte, 15)), attr(8, make([]byte, 11))} {
		if err := p.decode(b, ""); err == nil {
			t.Errorf("%x: no error", b)
		}
	}
}
