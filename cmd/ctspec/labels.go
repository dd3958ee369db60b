package main

import (
	"bufio"
	"os"
	"strings"

	"github.com/ctspec/ctspec/internal/clib"
)

// connlabelConf is where conntrack-tools (libnetfilter_conntrack) reads
// the names of connection labels: lines "BIT NAME".
var connlabelConf = "/etc/xtables/connlabel.conf"

// maxLabelBits bounds the bit numbers the file may use.
const maxLabelBits = 1024

// labelMap maps label names to bits and back. A nil *labelMap has no
// names, as when the file is missing.
type labelMap struct {
	byName map[string]int
	byBit  []string // "" for a bit without a name
}

// loadLabelMap reads connlabelConf as nfct_labelmap_new does: lines
// starting with '#' are skipped, a bit number (decimal, octal or hex)
// comes first, the name (letters, digits, spaces and '-') follows, and the
// first use of a bit or a name wins. Without a usable file it reports the
// failure as conntrack does and returns nil.
func loadLabelMap(warn func(string)) *labelMap {
	f, err := os.Open(connlabelConf)
	if err != nil {
		msg := err.Error()
		if pe, ok := err.(*os.PathError); ok {
			msg = pe.Err.Error()
		}
		warn("nfct_labelmap_new: " + cStrerror(msg) + "\n")
		return nil
	}
	defer f.Close()
	m := &labelMap{byName: map[string]int{}}
	seen := map[int]bool{}
	maxBit := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		v, rest, ok := clib.Strtoul(line, 0)
		if !ok || v >= maxLabelBits || seen[int(v)] {
			continue
		}
		name := strings.Trim(rest, " \f\r\t\v")
		if name == "" || !labelSane(name) {
			continue
		}
		if _, dup := m.byName[name]; dup {
			continue
		}
		b := int(v)
		m.byName[name] = b
		seen[b] = true
		maxBit = max(maxBit, b)
	}
	if maxBit < 0 {
		warn("nfct_labelmap_new: Success\n")
		return nil
	}
	m.byBit = make([]string, maxBit+1)
	for name, b := range m.byName {
		m.byBit[b] = name
	}
	return m
}

func labelSane(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ' || c == '-') {
			return false
		}
	}
	return true
}

// cStrerror turns Go's spelling of an errno into glibc's strerror text
// for the errors opening a file gives.
func cStrerror(s string) string {
	switch s {
	case "no such file or directory":
		return "No such file or directory"
	case "permission denied":
		return "Permission denied"
	case "is a directory":
		return "Is a directory"
	}
	if s != "" {
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

// bits resolves comma-separated label lists to a bitmap of the kernel's
// layout (bit n is byte n/8, bit n%8), sized in 32-bit words to hold the
// highest bit named. It returns nil for no lists.
func (m *labelMap) bits(lists []string) ([]byte, error) {
	if len(lists) == 0 {
		return nil, nil
	}
	var set []int
	maxBit := 0
	for _, l := range lists {
		for _, name := range strings.Split(l, ",") {
			b := -1
			if m != nil {
				if v, ok := m.byName[name]; ok {
					b = v
				}
			}
			if b < 0 {
				return nil, paramError("unknown label '%s'", name)
			}
			set = append(set, b)
			maxBit = max(maxBit, b)
		}
	}
	out := make([]byte, (maxBit/32+1)*4)
	for _, b := range set {
		out[b/8] |= 1 << (b % 8)
	}
	return out, nil
}

// name returns the name of bit b, and false when it has none; conntrack
// prints only named labels.
func (m *labelMap) name(b int) (string, bool) {
	if m == nil || b >= len(m.byBit) || m.byBit[b] == "" {
		return "", false
	}
	return m.byBit[b], true
}

// labelBitSet reports whether bit b is set in a label bitmap.
func labelBitSet(labels []byte, b int) bool {
	return b/8 < len(labels) && labels[b/8]&(1<<(b%8)) != 0
}
