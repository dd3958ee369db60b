package main

import (
	"encoding/xml"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ctspec/ctspec/internal/nstest"
)

// Comment keys for what conntrack-tools printed for an entry.
const (
	keyXML       = "conntrack -L -o xml"
	keyLine      = "conntrack -L"
	keyExpectXML = "conntrack -L expect -o xml"
	keyExpLine   = "conntrack -L expect"
	keyStats     = "conntrack -S"
	keyExpStats  = "conntrack -S expect"
	keyCount     = "conntrack -C"
	keyLabels    = "conntrack -L -o labels"
	keyLabelConf = "connlabel.conf"
)

// ctTools is what conntrack-tools printed about the namespace's tables,
// taken right after the kernel dumps.
type ctTools struct {
	flows    map[flowKey]string // <flow> XML line by original tuple
	lines    map[flowKey]string // conntrack -L line by original tuple
	expects  map[flowKey]string // <flow> XML line of an expectation by its master tuple
	expLines map[flowKey]string // conntrack -L expect line by master tuple
	stats    map[int]string     // conntrack -S line by CPU
	expStats map[int]string     // conntrack -S expect line by CPU
	count    string             // conntrack -C
	labels   map[flowKey]string // conntrack -L -o labels line by original tuple
	labelMap string             // the connlabel.conf those lines were printed with
}

// runCTTools runs conntrack-tools inside ns and parses its output. The
// labels of flows are listed with a connlabel.conf that names bits.
func runCTTools(ns *nstest.NS, bits []int) (*ctTools, error) {
	ct := &ctTools{
		flows:    make(map[flowKey]string),
		lines:    make(map[flowKey]string),
		expects:  make(map[flowKey]string),
		expLines: make(map[flowKey]string),
		labels:   make(map[flowKey]string),
	}
	if len(bits) > 0 {
		ct.labelMap = labelMap(bits)
		for _, family := range []string{"ipv4", "ipv6"} {
			out, err := runWithLabels(ns, ct.labelMap, "-L", "-f", family, "-o", "labels")
			if err != nil {
				return nil, err
			}
			m, err := parseFlowLines(out)
			if err != nil {
				return nil, fmt.Errorf("conntrack -L -f %s -o labels: %w", family, err)
			}
			for k, v := range m {
				ct.labels[k] = v
			}
		}
	}
	// Without -f, conntrack -L lists every family but conntrack -L expect
	// only IPv4, so both are asked for each family.
	for _, family := range []string{"ipv4", "ipv6"} {
		for _, l := range []struct {
			args  []string
			parse func(string) (map[flowKey]string, error)
			dst   map[flowKey]string
		}{
			{[]string{"-L", "-f", family, "-o", "xml"}, parseXMLFlows, ct.flows},
			{[]string{"-L", "-f", family}, parseFlowLines, ct.lines},
			{[]string{"-L", "expect", "-f", family, "-o", "xml"}, parseXMLExpects, ct.expects},
			{[]string{"-L", "expect", "-f", family}, parseExpectLines, ct.expLines},
		} {
			out, err := runConntrack(ns, l.args...)
			if err != nil {
				return nil, err
			}
			m, err := l.parse(out)
			if err != nil {
				return nil, fmt.Errorf("conntrack %s: %w", strings.Join(l.args, " "), err)
			}
			for k, v := range m {
				l.dst[k] = v
			}
		}
	}

	out, err := runConntrack(ns, "-S")
	if err != nil {
		return nil, err
	}
	ct.stats = parseStats(out)
	if out, err = runConntrack(ns, "-S", "expect"); err != nil {
		return nil, err
	}
	ct.expStats = parseStats(out)
	if out, err = runConntrack(ns, "-C"); err != nil {
		return nil, err
	}
	ct.count = strings.TrimSpace(out)
	return ct, nil
}

// labelMap returns a connlabel.conf that names each bit "bit-N", one
// "N bit-N" line each, sorted.
func labelMap(bits []int) string {
	bits = slices.Clone(bits)
	slices.Sort(bits)
	bits = slices.Compact(bits)
	lines := make([]string, len(bits))
	for i, b := range bits {
		lines[i] = fmt.Sprintf("%d bit-%d", b, b)
	}
	return strings.Join(lines, "\n")
}

// connlabelScript runs a command in a mount namespace of its own where
// /etc/xtables/connlabel.conf, the path libnetfilter_conntrack was built
// with, holds the file $1. /etc is overlaid there with an upper layer on
// a tmpfs mounted at $2, so the host's /etc never changes. unshare(1)
// makes the new namespace's mounts private.
const connlabelScript = `set -e
conf=$1 dir=$2
shift 2
mount -t tmpfs ctspec-capture "$dir"
mkdir -p "$dir/upper/xtables" "$dir/work"
cp "$conf" "$dir/upper/xtables/connlabel.conf"
mount -t overlay ctspec-capture -o "lowerdir=/etc,upperdir=$dir/upper,workdir=$dir/work" /etc
exec "$@"
`

// runWithLabels runs conntrack with args inside ns, with conf as its
// connlabel.conf.
func runWithLabels(ns *nstest.NS, conf string, args ...string) (string, error) {
	tmp, err := os.MkdirTemp("", "ctspec-capture-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	path, mnt := filepath.Join(tmp, "connlabel.conf"), filepath.Join(tmp, "mnt")
	if err := os.WriteFile(path, []byte(conf+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return "", err
	}
	stdout, stderr, err := ns.RunErr("unshare", append([]string{"--mount", "--", "sh", "-c", connlabelScript, "sh", path, mnt, "conntrack"}, args...)...)
	if err != nil {
		return "", fmt.Errorf("conntrack %s with connlabel.conf: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr))
	}
	return stdout, nil
}

func runConntrack(ns *nstest.NS, args ...string) (string, error) {
	stdout, stderr, err := ns.RunErr("conntrack", args...)
	if err != nil {
		return "", fmt.Errorf("conntrack %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr))
	}
	return stdout, nil
}

// xmlFlow is the part of conntrack-tools' XML for one entry that the tool
// uses to tell entries apart.
type xmlFlow struct {
	Meta []struct {
		Direction string    `xml:"direction,attr"`
		Layer3    xmlAddrs  `xml:"layer3"`
		Layer4    xmlLayer4 `xml:"layer4"`
	} `xml:"meta"`
}

type xmlAddrs struct {
	Src string `xml:"src"`
	Dst string `xml:"dst"`
}

type xmlLayer4 struct {
	Protonum uint8  `xml:"protonum,attr"`
	Sport    string `xml:"sport"`
	Dport    string `xml:"dport"`
	Srckey   string `xml:"srckey"`
	Dstkey   string `xml:"dstkey"`
}

// xmlExpect is the same for an expectation, which conntrack-tools prints
// with the expected, mask and master tuples inside layer3 and layer4.
type xmlExpect struct {
	Layer3 struct {
		Master xmlAddrs `xml:"master"`
	} `xml:"layer3"`
	Layer4 struct {
		Protonum uint8     `xml:"protonum,attr"`
		Master   xmlLayer4 `xml:"master"`
	} `xml:"layer4"`
}

// parseXMLFlows returns each <flow> line of out by its original tuple.
func parseXMLFlows(out string) (map[flowKey]string, error) {
	return parseXML(out, func(line string) (flowKey, error) {
		var f xmlFlow
		if err := xml.Unmarshal([]byte(line), &f); err != nil {
			return flowKey{}, err
		}
		for _, m := range f.Meta {
			if m.Direction == "original" {
				return xmlKey(m.Layer4.Protonum, m.Layer3, m.Layer4)
			}
		}
		return flowKey{}, fmt.Errorf("no original tuple")
	})
}

// parseXMLExpects returns each <flow> line of out by its master tuple.
func parseXMLExpects(out string) (map[flowKey]string, error) {
	return parseXML(out, func(line string) (flowKey, error) {
		var e xmlExpect
		if err := xml.Unmarshal([]byte(line), &e); err != nil {
			return flowKey{}, err
		}
		return xmlKey(e.Layer4.Protonum, e.Layer3.Master, e.Layer4.Master)
	})
}

func parseXML(out string, key func(string) (flowKey, error)) (map[flowKey]string, error) {
	flows := make(map[flowKey]string)
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "<flow>") {
			continue
		}
		k, err := key(line)
		if err != nil {
			return nil, fmt.Errorf("%w in %s", err, line)
		}
		flows[k] = line
	}
	return flows, nil
}

func xmlKey(proto uint8, l3 xmlAddrs, l4 xmlLayer4) (flowKey, error) {
	// GRE keys take the place of ports, as in the kernel's tuple.
	return makeKey(proto, l3.Src, l3.Dst, firstNonEmpty(l4.Sport, l4.Srckey), firstNonEmpty(l4.Dport, l4.Dstkey))
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// makeKey builds a key from conntrack-tools' text; empty ports are zero.
func makeKey(proto uint8, src, dst, sport, dport string) (flowKey, error) {
	k := flowKey{proto: proto}
	var err error
	if k.src, err = netip.ParseAddr(src); err != nil {
		return k, err
	}
	if k.dst, err = netip.ParseAddr(dst); err != nil {
		return k, err
	}
	for _, p := range []struct {
		s   string
		dst *uint16
	}{{sport, &k.sport}, {dport, &k.dport}} {
		if p.s == "" {
			continue
		}
		n, err := strconv.ParseUint(p.s, 0, 16)
		if err != nil {
			return k, err
		}
		*p.dst = uint16(n)
	}
	return k, nil
}

// parseFlowLines returns each line of conntrack -L by its original tuple:
// the protocol number in the second field, then the first src=, dst=,
// sport= or srckey=, and dport= or dstkey= fields.
func parseFlowLines(out string) (map[flowKey]string, error) {
	return parseLines(out, 1, "")
}

// parseExpectLines returns each line of conntrack -L expect by its master
// tuple: the proto= field, the master-src= and master-dst= fields and the
// sport= and dport= fields that follow them.
func parseExpectLines(out string) (map[flowKey]string, error) {
	return parseLines(out, -1, "master-")
}

// parseLines implements parseFlowLines and parseExpectLines. protoField is
// the index of the field holding the protocol number, or -1 for a proto=
// field; prefix is what the address keys of the wanted tuple start with.
// Ports are taken from the first port fields after the wanted source
// address.
func parseLines(out string, protoField int, prefix string) (map[flowKey]string, error) {
	lines := make(map[flowKey]string)
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) <= protoField {
			continue
		}
		var proto, src, dst, sport, dport string
		if protoField >= 0 {
			proto = fields[protoField]
		}
		for _, f := range fields {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			switch {
			case k == "proto" && proto == "":
				proto = v
			case k == prefix+"src" && src == "":
				src = v
			case k == prefix+"dst" && dst == "":
				dst = v
			case (k == "sport" || k == "srckey") && src != "" && sport == "":
				sport = v
			case (k == "dport" || k == "dstkey") && src != "" && dport == "":
				dport = v
			}
		}
		if src == "" {
			continue // not an entry, such as a blank line
		}
		p, err := strconv.ParseUint(proto, 10, 8)
		if err != nil {
			return nil, fmt.Errorf("protocol %q in %s", proto, line)
		}
		k, err := makeKey(uint8(p), src, dst, sport, dport)
		if err != nil {
			return nil, fmt.Errorf("%w in %s", err, line)
		}
		lines[k] = strings.Join(fields, " ")
	}
	return lines, nil
}

// parseStats returns the lines of conntrack -S by their cpu=N field, with
// runs of blanks made single spaces.
func parseStats(out string) map[int]string {
	stats := make(map[int]string)
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		v, ok := strings.CutPrefix(fields[0], "cpu=")
		if !ok {
			continue
		}
		if cpu, err := strconv.Atoi(v); err == nil {
			stats[cpu] = strings.Join(fields, " ")
		}
	}
	return stats
}
