package ctnetlink

import (
	"bytes"
	"compress/gzip"
	"testing"
)

// TestConfigValue reads kernel configurations compressed by compress/gzip,
// with each optional header field, and damaged ones.
func TestConfigValue(t *testing.T) {
	const config = "# comment\nCONFIG_NF_CONNTRACK=m\n# CONFIG_NF_CONNTRACK_ZONES is not set\nCONFIG_NF_CONNTRACK_EVENTS=y\n"
	compress := func(h gzip.Header, data string) []byte {
		var b bytes.Buffer
		z := gzip.NewWriter(&b)
		z.Header = h
		if _, err := z.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
		if err := z.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	plain := compress(gzip.Header{}, config)
	// A header CRC (FHCRC) that compress/gzip never writes: set the flag
	// and insert two bytes after the fixed header.
	hcrc := append(append(append([]byte{}, plain[:10]...), 0xaa, 0xbb), plain[10:]...)
	hcrc[3] |= gzipFlagHCRC
	tests := []struct {
		name   string
		data   []byte
		option string
		want   string
	}{
		{"set", plain, "CONFIG_NF_CONNTRACK_EVENTS", "y"},
		{"module", plain, "CONFIG_NF_CONNTRACK", "m"},
		{"not set", plain, "CONFIG_NF_CONNTRACK_ZONES", "n"},
		{"absent", plain, "CONFIG_NF_CT_NETLINK", ""},
		{"name", compress(gzip.Header{Name: "config"}, config), "CONFIG_NF_CONNTRACK_EVENTS", "y"},
		{"comment", compress(gzip.Header{Comment: "kernel"}, config), "CONFIG_NF_CONNTRACK_EVENTS", "y"},
		{"extra", compress(gzip.Header{Extra: bytes.Repeat([]byte{'x'}, 300)}, config), "CONFIG_NF_CONNTRACK_EVENTS", "y"},
		{"all fields", compress(gzip.Header{Name: "c", Comment: "k", Extra: []byte("e")}, config), "CONFIG_NF_CONNTRACK", "m"},
		{"header crc", hcrc, "CONFIG_NF_CONNTRACK_EVENTS", "y"},
		{"not gzip", []byte(config), "CONFIG_NF_CONNTRACK_EVENTS", ""},
		{"short header", plain[:6], "CONFIG_NF_CONNTRACK_EVENTS", ""},
		{"cut extra", compress(gzip.Header{Extra: []byte("extra")}, config)[:13], "CONFIG_NF_CONNTRACK_EVENTS", ""},
		{"empty", nil, "CONFIG_NF_CONNTRACK_EVENTS", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := configValue(bytes.NewReader(tt.data), tt.option); got != tt.want {
				t.Errorf("configValue(%s) = %q, want %q", tt.option, got, tt.want)
			}
		})
	}
}
