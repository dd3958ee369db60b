// Package golden reads and writes the netlink messages captured from a real
// kernel under testdata/messages, one message per file.
//
// # Format
//
// A file is line-oriented text:
//
//	# tcp4-established: a TCP flow in ESTABLISHED state
//	# kernel: 6.18.44
//	# setup: conntrack -I -p tcp ...
//	type 0x0100 flags 0x0002
//	0200000001400024800100140200...
//
// The first line names the message and describes it; the name is the file's
// base name without ".txt". Further "# key: value" lines carry metadata; a
// key may repeat, for example one setup line per command. Then one line holds
// the netlink message type and flags from the nlmsghdr, and the remaining
// lines hold the message payload after the 16-byte nlmsghdr in lower-case
// hex, 32 bytes a line. Blank lines are ignored. Length, sequence number and
// port id of the nlmsghdr are not stored: the first follows from the payload
// and the others differ from run to run.
//
// testdata/messages/README.md documents the keys the capture tool writes.
package golden

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Message is one captured netlink message.
type Message struct {
	// Name identifies the message; it is the file's base name.
	Name string
	// Description says what the message is.
	Description string
	// Comments holds the "# key: value" lines after the first. The values
	// of a repeated key are joined with "\n", in file order.
	Comments map[string]string
	// Type and Flags are nlmsg_type and nlmsg_flags.
	Type  uint16
	Flags uint16
	// Payload is the message after the nlmsghdr: for nfnetlink, the
	// 4-byte nfgenmsg followed by the attributes.
	Payload []byte
}

// Ext is the file name extension of golden message files.
const Ext = ".txt"

// bytesPerLine is how many payload bytes Marshal writes per hex line.
const bytesPerLine = 32

// keyOrder lists the keys Marshal writes first, in this order; other keys
// follow sorted.
var keyOrder = []string{"kernel", "captured", "setup", "note"}

// ParseFile reads the golden message in path and checks that its name
// matches the file name.
func ParseFile(path string) (*Message, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("golden: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if want := strings.TrimSuffix(filepath.Base(path), Ext); m.Name != want {
		return nil, fmt.Errorf("%s: golden: message is named %q, want %q after the file", path, m.Name, want)
	}
	return m, nil
}

// ParseDir reads every *.txt file in dir, sorted by name.
func ParseDir(dir string) ([]*Message, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*"+Ext))
	if err != nil {
		return nil, fmt.Errorf("golden: %w", err)
	}
	sort.Strings(paths)
	msgs := make([]*Message, 0, len(paths))
	for _, p := range paths {
		m, err := ParseFile(p)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// Parse decodes one golden message. Errors name the offending line.
func Parse(data []byte) (*Message, error) {
	m := &Message{Comments: make(map[string]string)}
	var (
		sawName, sawType bool
		payload          bytes.Buffer
	)
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimRight(line, " \t\r")
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "#"):
			if sawType {
				return nil, lineError(n, "comment after the type line")
			}
			key, value, ok := splitComment(line)
			if !ok {
				return nil, lineError(n, "comment is not \"# key: value\"")
			}
			if !sawName {
				if !validName(key) {
					return nil, lineError(n, fmt.Sprintf("bad message name %q: want lower-case letters, digits and dashes", key))
				}
				m.Name, m.Description = key, value
				sawName = true
				continue
			}
			if old, ok := m.Comments[key]; ok {
				value = old + "\n" + value
			}
			m.Comments[key] = value
		case !sawName:
			return nil, lineError(n, "want \"# name: description\" first")
		case !sawType:
			t, f, err := parseTypeLine(line)
			if err != nil {
				return nil, lineError(n, err.Error())
			}
			m.Type, m.Flags = t, f
			sawType = true
		default:
			b, err := hex.DecodeString(line)
			if err != nil {
				return nil, lineError(n, fmt.Sprintf("bad payload hex: %v", err))
			}
			payload.Write(b)
		}
	}
	switch {
	case !sawName:
		return nil, fmt.Errorf("golden: empty file")
	case !sawType:
		return nil, fmt.Errorf("golden: no \"type ... flags ...\" line")
	case payload.Len() == 0:
		return nil, fmt.Errorf("golden: no payload")
	}
	m.Payload = payload.Bytes()
	return m, nil
}

func lineError(n int, msg string) error {
	return fmt.Errorf("golden: line %d: %s", n, msg)
}

// splitComment splits "# key: value" or "# key:" into key and value.
func splitComment(line string) (key, value string, ok bool) {
	rest, ok := strings.CutPrefix(line, "# ")
	if !ok {
		return "", "", false
	}
	if k, ok := strings.CutSuffix(rest, ":"); ok && !strings.Contains(k, ": ") {
		return k, "", validKey(k)
	}
	key, value, ok = strings.Cut(rest, ": ")
	return key, value, ok && validKey(key)
}

// parseTypeLine parses "type 0x0100 flags 0x0002".
func parseTypeLine(line string) (typ, flags uint16, err error) {
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "type" || f[2] != "flags" {
		return 0, 0, fmt.Errorf("want \"type 0xTTTT flags 0xFFFF\", got %q", line)
	}
	t, err := strconv.ParseUint(f[1], 0, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("bad type: %w", err)
	}
	fl, err := strconv.ParseUint(f[3], 0, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("bad flags: %w", err)
	}
	return uint16(t), uint16(fl), nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func validKey(s string) bool {
	return s != "" && strings.TrimSpace(s) == s && !strings.ContainsAny(s, "\n\r")
}

// Marshal encodes m in the golden format. Keys in keyOrder come first, the
// others sorted, so the output does not depend on map order.
func (m *Message) Marshal() ([]byte, error) {
	if !validName(m.Name) {
		return nil, fmt.Errorf("golden: bad message name %q", m.Name)
	}
	if strings.ContainsAny(m.Description, "\n\r") {
		return nil, fmt.Errorf("golden: %s: description spans lines", m.Name)
	}
	if len(m.Payload) == 0 {
		return nil, fmt.Errorf("golden: %s: no payload", m.Name)
	}
	var b bytes.Buffer
	writeComment(&b, m.Name, m.Description)
	for _, k := range commentKeys(m.Comments) {
		if !validKey(k) || strings.Contains(k, ": ") || strings.HasSuffix(k, ":") {
			return nil, fmt.Errorf("golden: %s: bad comment key %q", m.Name, k)
		}
		for _, v := range strings.Split(m.Comments[k], "\n") {
			if strings.Contains(v, "\r") {
				return nil, fmt.Errorf("golden: %s: comment %q holds a carriage return", m.Name, k)
			}
			writeComment(&b, k, v)
		}
	}
	fmt.Fprintf(&b, "type 0x%04x flags 0x%04x\n", m.Type, m.Flags)
	for p := m.Payload; len(p) > 0; {
		n := min(len(p), bytesPerLine)
		b.WriteString(hex.EncodeToString(p[:n]))
		b.WriteByte('\n')
		p = p[n:]
	}
	return b.Bytes(), nil
}

func writeComment(b *bytes.Buffer, key, value string) {
	// Trailing blanks would not survive Parse, which trims them.
	value = strings.TrimRight(value, " \t")
	if value == "" {
		fmt.Fprintf(b, "# %s:\n", key)
		return
	}
	fmt.Fprintf(b, "# %s: %s\n", key, value)
}

// commentKeys returns the keys of c in Marshal's order.
func commentKeys(c map[string]string) []string {
	keys := make([]string, 0, len(c))
	seen := make(map[string]bool)
	for _, k := range keyOrder {
		if _, ok := c[k]; ok {
			keys = append(keys, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range c {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

// WriteFile writes m to dir/<name>.txt.
func (m *Message) WriteFile(dir string) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, m.Name+Ext), b, 0o644); err != nil {
		return fmt.Errorf("golden: %w", err)
	}
	return nil
}
