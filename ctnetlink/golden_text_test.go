package ctnetlink

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ctspec/ctspec/internal/golden"
)

// The checks in this file compare a decoded golden message with the text
// conntrack-tools printed for the same entry when it was captured: the
// conntrack -L line of a flow, the conntrack -L expect line of an
// expectation, and the conntrack -S, conntrack -S expect and conntrack -C
// output of the statistics. They parse that text on their own and read the
// decoded structs' fields directly; they never call the library's
// formatting or accessor code.

// timeoutSlack is how many seconds conntrack-tools' timeout may lie below
// the dumped one: the dump came first.
const timeoutSlack = 2

// tcpStateNames and sctpStateNames are conntrack-tools' names of the
// kernel's TCP and SCTP states, by number.
var (
	tcpStateNames  = []string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}
	sctpStateNames = []string{"NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT", "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT", "HEARTBEAT_ACKED"}
)

// textChecker reports differences between decoded values and the text.
type textChecker struct {
	t    *testing.T
	name string // the golden message and the text it is checked against
}

func (c textChecker) errorf(format string, args ...any) {
	c.t.Helper()
	c.t.Errorf("%s: "+format, append([]any{c.name}, args...)...)
}

// num parses a decimal or 0x-prefixed number of at most bits bits.
func (c textChecker) num(key, v string, bits int) uint64 {
	c.t.Helper()
	n, err := strconv.ParseUint(v, 0, bits)
	if err != nil {
		c.errorf("%s=%q: %v", key, v, err)
	}
	return n
}

// eq reports a field that differs from the text.
func (c textChecker) eq(what string, got, want uint64) {
	c.t.Helper()
	if got != want {
		c.errorf("%s %d, conntrack says %d", what, got, want)
	}
}

// timeout reports a timeout more than timeoutSlack above or any amount
// below the text's.
func (c textChecker) timeout(got uint32, v string) {
	c.t.Helper()
	want := c.num("timeout", v, 32)
	if uint64(got) < want || uint64(got) > want+timeoutSlack {
		c.errorf("timeout %d, conntrack says %d (dumped first, so %d to %d)", got, want, want, want+timeoutSlack)
	}
}

// addr reports an address that differs from the text.
func (c textChecker) addr(what string, got netip.Addr, v string) {
	c.t.Helper()
	want, err := netip.ParseAddr(v)
	if err != nil {
		c.errorf("%s %q: %v", what, v, err)
		return
	}
	if got != want {
		c.errorf("%s %v, conntrack says %v", what, got, want)
	}
}

// tupleField compares one key=value of a tuple in the text with tup.
func (c textChecker) tupleField(dir string, tup *Tuple, k, v string) bool {
	c.t.Helper()
	p := &tup.Proto
	v6 := tup.IP.V6Src.IsValid()
	switch k {
	case "src":
		c.addr(dir+" src", firstValid(tup.IP.V4Src, tup.IP.V6Src), v)
	case "dst":
		c.addr(dir+" dst", firstValid(tup.IP.V4Dst, tup.IP.V6Dst), v)
	case "sport", "srckey":
		c.eq(dir+" "+k, uint64(p.SrcPort), c.num(k, v, 16))
	case "dport", "dstkey":
		c.eq(dir+" "+k, uint64(p.DstPort), c.num(k, v, 16))
	case "type":
		c.eq(dir+" ICMP type", uint64(pick(v6, p.ICMPv6Type, p.ICMPType)), c.num(k, v, 8))
	case "code":
		c.eq(dir+" ICMP code", uint64(pick(v6, p.ICMPv6Code, p.ICMPCode)), c.num(k, v, 8))
	case "id":
		c.eq(dir+" ICMP id", uint64(pick(v6, p.ICMPv6ID, p.ICMPID)), c.num(k, v, 16))
	default:
		return false
	}
	return true
}

func firstValid(a, b netip.Addr) netip.Addr {
	if a.IsValid() {
		return a
	}
	return b
}

func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

// checkFlowLine compares f with the conntrack -L line of m, field by
// field: every field of the line must be one the check knows.
func checkFlowLine(t *testing.T, m *golden.Message, f *Flow) {
	t.Helper()
	key := "conntrack -L"
	line := m.Comments[key]
	if l, ok := m.Comments["conntrack -L -o labels"]; ok {
		key, line = "conntrack -L -o labels", l
	}
	if line == "" {
		t.Fatalf("%s: no %s line", m.Name, key)
	}
	c := textChecker{t, m.Name + " (" + key + ")"}
	fields := strings.Fields(line)
	if len(fields) < 3 {
		t.Fatalf("%s: %d fields", c.name, len(fields))
	}
	c.eq("protocol", uint64(f.TupleOrig.Proto.Num), c.num("protocol", fields[1], 8))
	c.timeout(f.Timeout, fields[2])
	rest := fields[3:]
	if len(rest) > 0 && !strings.Contains(rest[0], "=") && !strings.HasPrefix(rest[0], "[") {
		var names []string
		var state uint8
		switch f.TupleOrig.Proto.Num {
		case 6:
			names, state = tcpStateNames, uint8(f.ProtoInfo.TCP.State)
		case 132:
			names, state = sctpStateNames, uint8(f.ProtoInfo.SCTP.State)
		default:
			c.errorf("state %s for protocol %d", rest[0], f.TupleOrig.Proto.Num)
		}
		if int(state) >= len(names) || names[state] != rest[0] {
			c.errorf("state %d, conntrack says %s", state, rest[0])
		}
		rest = rest[1:]
	}
	dir := -1 // 0 original, 1 reply, 2 after the reply tuple
	tuples := [2]*Tuple{&f.TupleOrig, &f.TupleReply}
	counters := [2]*Counters{&f.CountersOrig, &f.CountersReply}
	dirNames := [2]string{"original", "reply"}
	flags := map[string]bool{}
	for _, fld := range rest {
		if strings.HasPrefix(fld, "[") {
			flags[fld] = true
			continue
		}
		k, v, ok := strings.Cut(fld, "=")
		if !ok {
			c.errorf("field %q", fld)
			continue
		}
		if k == "src" && dir < 1 {
			dir++
		}
		if dir >= 0 && dir < 2 {
			if c.tupleField(dirNames[dir], tuples[dir], k, v) {
				continue
			}
			switch k {
			case "packets":
				c.eq(dirNames[dir]+" packets", counters[dir].Packets, c.num(k, v, 64))
				continue
			case "bytes":
				c.eq(dirNames[dir]+" bytes", counters[dir].Bytes, c.num(k, v, 64))
				if dir == 1 {
					dir = 2
				}
				continue
			}
		}
		switch k {
		case "mark":
			c.eq("mark", uint64(f.Mark), c.num(k, v, 32))
		case "zone":
			c.eq("zone", uint64(f.Zone), c.num(k, v, 16))
		case "use":
			c.eq("use", uint64(f.Use), c.num(k, v, 32))
		case "helper":
			if f.Help == nil || f.Help.Name != v {
				c.errorf("helper %+v, conntrack says %q", f.Help, v)
			}
		case "labels":
			checkLabels(c, m, f.Labels, v)
		case "delta-time":
			// The seconds between CTA_TIMESTAMP's start and the moment
			// conntrack-tools ran, which the capture does not record.
		default:
			c.errorf("field %q is not checked", fld)
		}
	}
	if dir < 1 {
		c.errorf("no reply tuple in %q", line)
	}
	if got, want := f.Status&StatusSeenReply == 0, flags["[UNREPLIED]"]; got != want {
		c.errorf("unreplied %v, conntrack says %v", got, want)
	}
	if got, want := f.Status&StatusAssured != 0, flags["[ASSURED]"]; got != want {
		c.errorf("assured %v, conntrack says %v", got, want)
	}
	delete(flags, "[UNREPLIED]")
	delete(flags, "[ASSURED]")
	for fl := range flags {
		c.errorf("flag %s is not checked", fl)
	}
	if slices.ContainsFunc(f.Labels, func(b byte) bool { return b != 0 }) && !strings.Contains(line, " labels=") {
		c.errorf("the flow has labels %x, the line shows none: %q", f.Labels, line)
	}
}

// checkLabels compares a label bitmap with conntrack's comma-separated
// names, which the message's connlabel.conf comment maps to bits. The
// kernel's bitmap is an array of unsigned longs in host byte order;
// conntrack-tools reads it as 32-bit words in host byte order.
func checkLabels(c textChecker, m *golden.Message, bitmap []byte, names string) {
	c.t.Helper()
	bits := map[string]int{}
	for _, l := range strings.Split(m.Comments["connlabel.conf"], "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			bits[f[1]] = int(c.num("connlabel.conf bit", f[0], 16))
		}
	}
	var want []int
	for _, n := range strings.Split(names, ",") {
		b, ok := bits[n]
		if !ok {
			c.errorf("label %q is not in the connlabel.conf comment", n)
		}
		want = append(want, b)
	}
	var got []int
	for w := 0; w+4 <= len(bitmap); w += 4 {
		word := binary.NativeEndian.Uint32(bitmap[w:])
		for i := range 32 {
			if word&(1<<i) != 0 {
				got = append(got, w*8+i)
			}
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		c.errorf("label bits %v, conntrack says %v (%s)", got, want, names)
	}
}

// checkExpectLine compares e with the conntrack -L expect line of m: the
// expected tuple, its mask and the master tuple, each with its ports.
func checkExpectLine(t *testing.T, m *golden.Message, e *Expect) {
	t.Helper()
	const key = "conntrack -L expect"
	line := m.Comments[key]
	if line == "" {
		t.Fatalf("%s: no %s line", m.Name, key)
	}
	c := textChecker{t, m.Name + " (" + key + ")"}
	fields := strings.Fields(line)
	if len(fields) < 2 {
		t.Fatalf("%s: %d fields", c.name, len(fields))
	}
	c.timeout(e.Timeout, fields[0])
	// Ports follow the addresses of their tuple.
	tup, dir := &e.Tuple, "expected"
	for _, fld := range fields[1:] {
		k, v, ok := strings.Cut(fld, "=")
		if !ok {
			c.errorf("field %q", fld)
			continue
		}
		switch k {
		case "proto":
			n := c.num(k, v, 8)
			c.eq("expected protocol", uint64(e.Tuple.Proto.Num), n)
			c.eq("master protocol", uint64(e.Master.Proto.Num), n)
		case "mask-src", "mask-dst":
			tup, dir = &e.Mask, "mask"
			c.tupleField(dir, tup, strings.TrimPrefix(k, "mask-"), v)
		case "master-src", "master-dst":
			tup, dir = &e.Master, "master"
			c.tupleField(dir, tup, strings.TrimPrefix(k, "master-"), v)
		case "class":
			c.eq("class", uint64(e.Class), c.num(k, v, 32))
		case "helper":
			if e.HelpName != v {
				c.errorf("helper %q, conntrack says %q", e.HelpName, v)
			}
		case "zone":
			c.eq("zone", uint64(e.Zone), c.num(k, v, 16))
		default:
			if !c.tupleField(dir, tup, k, v) {
				c.errorf("field %q is not checked", fld)
			}
		}
	}
}

// statsFields maps the keys of conntrack -S and conntrack -S expect to the
// decoded fields.
func statsFields(s *StatsCPU) map[string]uint32 {
	return map[string]uint32{
		"found": s.Found, "invalid": s.Invalid, "insert": s.Insert, "insert_failed": s.InsertFailed,
		"drop": s.Drop, "early_drop": s.EarlyDrop, "error": s.Error, "search_restart": s.SearchRestart,
		"clash_resolve": s.ClashResolve, "chaintoolong": s.ChainTooLong,
		// Printed by older conntrack-tools for older kernels.
		"searched": s.Searched, "new": s.New, "ignore": s.Ignore, "delete": s.Delete, "delete_list": s.DeleteList,
	}
}

func expectStatsFields(s *ExpectStatsCPU) map[string]uint32 {
	return map[string]uint32{"expect_new": s.New, "expect_create": s.Create, "expect_delete": s.Delete}
}

// checkStatsLine compares the per-CPU counters of a statistics message
// with conntrack-tools' line for the same CPU: "cpu=N key=value ...".
// Every key of the line must be one the check knows.
func checkStatsLine(t *testing.T, m *golden.Message, key string, cpu uint16, fields map[string]uint32) {
	t.Helper()
	line := m.Comments[key]
	if line == "" {
		t.Fatalf("%s: no %s line", m.Name, key)
	}
	c := textChecker{t, m.Name + " (" + key + ")"}
	n := 0
	for i, fld := range strings.Fields(line) {
		k, v, ok := strings.Cut(fld, "=")
		if !ok {
			c.errorf("field %q", fld)
			continue
		}
		if i == 0 {
			if k != "cpu" {
				c.errorf("first field %q, want cpu=", fld)
			}
			c.eq("cpu (nfgenmsg res_id)", uint64(cpu), c.num(k, v, 16))
			continue
		}
		got, ok := fields[k]
		if !ok {
			c.errorf("field %q is not checked", fld)
			continue
		}
		n++
		c.eq(k, uint64(got), c.num(k, v, 32))
	}
	if n == 0 {
		c.errorf("no counters in %q", line)
	}
}

// checkCount compares the entry count of the global statistics with
// conntrack -C.
func checkCount(t *testing.T, m *golden.Message, s *StatsGlobal) {
	t.Helper()
	v := strings.TrimSpace(m.Comments["conntrack -C"])
	if v == "" {
		t.Fatalf("%s: no conntrack -C line", m.Name)
	}
	c := textChecker{t, m.Name + " (conntrack -C)"}
	c.eq("entries", uint64(s.Entries), c.num("count", v, 32))
}

// resID returns nfgenmsg.res_id of a payload, big-endian.
func resID(payload []byte) (uint16, error) {
	if len(payload) < 4 {
		return 0, fmt.Errorf("payload of %d bytes has no nfgenmsg", len(payload))
	}
	return binary.BigEndian.Uint16(payload[2:4]), nil
}
