package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Message
		err  string // substring of the error; "" for success
	}{
		{
			name: "full",
			in: `# tcp4-established: a TCP flow
# kernel: 6.18.44
# setup: conntrack -I one
# setup: conntrack -I two
# conntrack -L -o xml: <flow><meta direction="original"></meta></flow>
# empty:
type 0x0100 flags 0x0002
0200000001
ff
`,
			want: &Message{
				Name:        "tcp4-established",
				Description: "a TCP flow",
				Comments: map[string]string{
					"kernel":              "6.18.44",
					"setup":               "conntrack -I one\nconntrack -I two",
					"conntrack -L -o xml": `<flow><meta direction="original"></meta></flow>`,
					"empty":               "",
				},
				Type:    0x0100,
				Flags:   0x0002,
				Payload: []byte{0x02, 0, 0, 0, 0x01, 0xff},
			},
		},
		{
			name: "blank lines, CRLF and no trailing newline",
			in:   "\r\n# x:\r\n\r\ntype 1 flags 0x0\r\n\r\nABCD",
			want: &Message{
				Name:     "x",
				Comments: map[string]string{},
				Type:     1,
				Payload:  []byte{0xab, 0xcd},
			},
		},
		{name: "empty", in: "", err: "empty file"},
		{name: "only blanks", in: "\n\n \n", err: "empty file"},
		{name: "no name", in: "type 0x0100 flags 0x0002\n00\n", err: "line 1: want \"# name: description\" first"},
		{name: "bad name", in: "# Tcp4: x\ntype 1 flags 2\n00\n", err: "bad message name"},
		{name: "not key value", in: "# x: y\n# just words\ntype 1 flags 2\n00\n", err: "line 2: comment is not"},
		{name: "no space after hash", in: "#x: y\ntype 1 flags 2\n00\n", err: "line 1: comment is not"},
		{name: "no type", in: "# x: y\n# a: b\n", err: "no \"type ... flags ...\" line"},
		{name: "bad type line", in: "# x: y\ntype 0x0100\n00\n", err: "line 2: want \"type 0xTTTT flags 0xFFFF\""},
		{name: "type too large", in: "# x: y\ntype 0x10000 flags 0\n00\n", err: "bad type"},
		{name: "bad flags", in: "# x: y\ntype 0 flags z\n00\n", err: "bad flags"},
		{name: "no payload", in: "# x: y\ntype 1 flags 2\n", err: "no payload"},
		{name: "odd hex", in: "# x: y\ntype 1 flags 2\n012\n", err: "line 3: bad payload hex"},
		{name: "not hex", in: "# x: y\ntype 1 flags 2\nzz\n", err: "line 3: bad payload hex"},
		{name: "comment after type", in: "# x: y\ntype 1 flags 2\n# a: b\n00\n", err: "line 3: comment after the type line"},
		{name: "second type line", in: "# x: y\ntype 1 flags 2\ntype 1 flags 2\n", err: "line 3: bad payload hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	payload := make([]byte, 70)
	for i := range payload {
		payload[i] = byte(i)
	}
	m := &Message{
		Name:        "udp6",
		Description: "a UDP flow over IPv6",
		Comments: map[string]string{
			"zeta":     "last",
			"setup":    "conntrack -I a\nconntrack -I b",
			"kernel":   "6.18.44",
			"captured": "go run ./tools/capture -out testdata/messages",
			"alpha":    "after the known keys",
			"blank":    "",
		},
		Type:    0x0100,
		Flags:   0x0002,
		Payload: payload,
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `# udp6: a UDP flow over IPv6
# kernel: 6.18.44
# captured: go run ./tools/capture -out testdata/messages
# setup: conntrack -I a
# setup: conntrack -I b
# alpha: after the known keys
# blank:
# zeta: last
type 0x0100 flags 0x0002
000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
404142434445
`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Fatalf("Marshal (-want +got):\n%s", diff)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
}

func TestMarshalRejects(t *testing.T) {
	ok := func() *Message {
		return &Message{Name: "x", Comments: map[string]string{}, Payload: []byte{0}}
	}
	tests := []struct {
		name   string
		modify func(*Message)
	}{
		{name: "empty name", modify: func(m *Message) { m.Name = "" }},
		{name: "name with space", modify: func(m *Message) { m.Name = "a b" }},
		{name: "multi-line description", modify: func(m *Message) { m.Description = "a\nb" }},
		{name: "no payload", modify: func(m *Message) { m.Payload = nil }},
		{name: "key with colon space", modify: func(m *Message) { m.Comments["a: b"] = "c" }},
		{name: "key ending in colon", modify: func(m *Message) { m.Comments["a:"] = "c" }},
		{name: "empty key", modify: func(m *Message) { m.Comments[""] = "c" }},
		{name: "carriage return", modify: func(m *Message) { m.Comments["a"] = "b\rc" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ok()
			tt.modify(m)
			if _, err := m.Marshal(); err == nil {
				t.Fatal("Marshal succeeded, want an error")
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	m := &Message{Name: "icmp4", Comments: map[string]string{}, Type: 0x100, Payload: []byte{2, 0, 0, 0}}
	if err := m.WriteFile(dir); err != nil {
		t.Fatal(err)
	}
	got, err := ParseFile(filepath.Join(dir, "icmp4.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Fatalf("ParseFile (-want +got):\n%s", diff)
	}

	b, _ := m.Marshal()
	if err := os.WriteFile(filepath.Join(dir, "other.txt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(filepath.Join(dir, "other.txt")); err == nil || !strings.Contains(err.Error(), `want "other"`) {
		t.Fatalf("ParseFile of a misnamed file: err = %v", err)
	}
	if _, err := ParseDir(dir); err == nil {
		t.Fatal("ParseDir with a misnamed file succeeded")
	}
	if err := os.Remove(filepath.Join(dir, "other.txt")); err != nil {
		t.Fatal(err)
	}
	msgs, err := ParseDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Name != "icmp4" {
		t.Fatalf("ParseDir = %v, want icmp4 alone", msgs)
	}
	if _, err := ParseFile(filepath.Join(dir, "missing.txt")); err == nil {
		t.Fatal("ParseFile of a missing file succeeded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("# x: y\n# k: v\ntype 0x0100 flags 0x0002\n0200\n"))
	f.Add([]byte("# x:\ntype 1 flags 2\nzz\n"))
	if msgs, err := filepath.Glob("../../testdata/messages/*.txt"); err == nil {
		for _, p := range msgs {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		b, err := m.Marshal()
		if err != nil {
			// Parse accepts some comments Marshal would not write,
			// such as a value with a carriage return inside.
			return
		}
		m2, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(Marshal(m)) failed: %v\n%s", err, b)
		}
		if diff := cmp.Diff(m, m2); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		if b2, _ := m2.Marshal(); !bytes.Equal(b, b2) {
			t.Fatalf("Marshal not stable:\n%s\n%s", b, b2)
		}
	})
}
