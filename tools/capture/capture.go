package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/golden"
	"github.com/ctspec/ctspec/internal/nstest"
)

// capturedBy is the command written to every file's captured comment. The
// tool also uses it to recognise the files of an earlier run.
const capturedBy = "go run ./tools/capture -out testdata/messages"

// Message types: NFNL_SUBSYS_CTNETLINK (1) or NFNL_SUBSYS_CTNETLINK_EXP (2)
// in the high byte, the ctnetlink message in the low byte.
const (
	ctNew          = 0x0100 // IPCTNL_MSG_CT_NEW
	ctGet          = 0x0101 // IPCTNL_MSG_CT_GET
	ctGetStatsCPU  = 0x0104 // IPCTNL_MSG_CT_GET_STATS_CPU
	ctGetStats     = 0x0105 // IPCTNL_MSG_CT_GET_STATS
	expGet         = 0x0201 // IPCTNL_MSG_EXP_GET
	expGetStatsCPU = 0x0203 // IPCTNL_MSG_EXP_GET_STATS_CPU
)

// netlinkTimeout bounds the whole conversation with the kernel.
const netlinkTimeout = 30 * time.Second

// sysctls are set in the namespace before anything else, so that every
// entry carries counters and a start timestamp.
var sysctls = [][2]string{
	{"net.netfilter.nf_conntrack_acct", "1"},
	{"net.netfilter.nf_conntrack_timestamp", "1"},
}

// sysctlSetup is the setup line of the sysctls.
func sysctlSetup() string {
	s := "sysctl -w"
	for _, kv := range sysctls {
		s += " " + kv[0] + "=" + kv[1]
	}
	return s
}

// result is what one capture produced.
type result struct {
	kernel    string // uname -r
	tools     string // conntrack --version
	messages  []*golden.Message
	skipped   []string // "name: reason"
	unmatched []string // dumped entries that no flow set up
}

func (r *result) skip(name, format string, args ...any) {
	r.skipped = append(r.skipped, name+": "+fmt.Sprintf(format, args...))
}

// capture sets up the namespace, dumps it and returns the messages.
func capture() (*result, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	res := &result{kernel: unix.ByteSliceToString(uts.Release[:])}

	v, err := exec.Command("conntrack", "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("conntrack --version: %w", err)
	}
	res.tools = strings.TrimSpace(string(v))

	ns, err := nstest.Create()
	if err != nil {
		return nil, err
	}
	defer ns.Close()

	if err := configure(ns); err != nil {
		return nil, err
	}

	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: ns.FD()})
	if err != nil {
		return nil, fmt.Errorf("dial netfilter netlink: %w", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(netlinkTimeout)); err != nil {
		return nil, err
	}

	flows, err := res.createFlows(ns, c)
	if err != nil {
		return nil, err
	}

	tr, err := startTraffic(ns)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	flows = append(flows, trafficFlows...)

	// The kernel dumps come first and conntrack-tools runs right after, so
	// timeouts in its output may be a second lower.
	d, err := dumpAll(c)
	if err != nil {
		return nil, err
	}
	var bits []int
	for _, f := range flows {
		bits = append(bits, f.labels...)
	}
	ct, err := runCTTools(ns, bits)
	if err != nil {
		return nil, err
	}

	if err := res.matchFlows(flows, d.flows, ct); err != nil {
		return nil, err
	}
	if err := res.matchExpectations(d.expects, ct); err != nil {
		return nil, err
	}
	res.addStats(d, ct)
	return res, nil
}

// configure sets the capture's sysctls and ruleset in ns.
func configure(ns *nstest.NS) error {
	for _, s := range sysctls {
		if err := ns.SetSysctl(s[0], s[1]); err != nil {
			return err
		}
	}
	if _, stderr, err := ns.RunErr("nft", ruleset); err != nil {
		return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(stderr))
	}
	return nil
}

// createFlows creates the flows of cliFlows in ns with conntrack -I, and
// their labels through c, and returns them with room for trafficFlows.
// An optional flow the kernel refuses is skipped.
func (res *result) createFlows(ns *nstest.NS, c *netlink.Conn) ([]*flow, error) {
	flows := make([]*flow, 0, len(cliFlows)+len(trafficFlows))
	for _, f := range cliFlows {
		if _, stderr, err := ns.RunErr("conntrack", f.conntrack...); err != nil {
			msg := strings.TrimSpace(stderr)
			if f.optional {
				res.skip(f.name, "conntrack -I failed: %v: %s", err, msg)
				continue
			}
			return nil, fmt.Errorf("%s: conntrack %s: %w: %s", f.name, strings.Join(f.conntrack, " "), err, msg)
		}
		if f.labels != nil {
			if err := setLabels(c, f); err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
		}
		flows = append(flows, f)
	}
	return flows, nil
}

// A dumpReq is one request the capture sends, always with nfgenmsg family
// AF_UNSPEC, which asks for every family.
type dumpReq struct {
	what  string
	name  string // kernel name of the message type
	typ   uint16
	flags netlink.HeaderFlags
}

// String describes the request for the request comment.
func (r dumpReq) String() string {
	flags := "NLM_F_REQUEST"
	if r.flags&netlink.Acknowledge != 0 {
		flags += "|NLM_F_ACK"
	}
	if r.flags&netlink.Dump == netlink.Dump {
		flags += "|NLM_F_DUMP"
	}
	return fmt.Sprintf("%s (0x%04x), %s, nfgenmsg family AF_UNSPEC", r.name, r.typ, flags)
}

var (
	reqFlows    = dumpReq{"flows", "IPCTNL_MSG_CT_GET", ctGet, netlink.Request | netlink.Dump}
	reqExpects  = dumpReq{"expectations", "IPCTNL_MSG_EXP_GET", expGet, netlink.Request | netlink.Dump}
	reqStats    = dumpReq{"per-CPU statistics", "IPCTNL_MSG_CT_GET_STATS_CPU", ctGetStatsCPU, netlink.Request | netlink.Dump}
	reqExpStats = dumpReq{"expectation statistics", "IPCTNL_MSG_EXP_GET_STATS_CPU", expGetStatsCPU, netlink.Request | netlink.Dump}
	// The kernel marks its single answer to IPCTNL_MSG_CT_GET_STATS
	// NLM_F_MULTI but sends no NLMSG_DONE after it, so a reader that
	// follows the flag waits forever. Asking for an acknowledgement ends
	// the exchange; the acknowledgement itself is dropped.
	reqGlobal = dumpReq{"global statistics", "IPCTNL_MSG_CT_GET_STATS", ctGetStats, netlink.Request | netlink.Acknowledge}
)

// dumps holds the kernel's answers to the requests.
type dumps struct {
	flows, expects, stats, expStats, global []netlink.Message
}

// nfgenmsg returns struct nfgenmsg: family, version NFNETLINK_V0, res_id 0.
func nfgenmsg(family uint8) []byte {
	return []byte{family, 0, 0, 0}
}

func dumpAll(c *netlink.Conn) (*dumps, error) {
	d := &dumps{}
	for _, r := range []struct {
		req dumpReq
		dst *[]netlink.Message
	}{
		{reqFlows, &d.flows},
		{reqExpects, &d.expects},
		{reqStats, &d.stats},
		{reqExpStats, &d.expStats},
		{reqGlobal, &d.global},
	} {
		// Execute returns the replies without the NLMSG_DONE of a dump.
		msgs, err := c.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(r.req.typ), Flags: r.req.flags},
			Data:   nfgenmsg(unix.AF_UNSPEC),
		})
		if err != nil {
			return nil, fmt.Errorf("dump %s: %w", r.req.what, err)
		}
		for _, m := range msgs {
			if m.Header.Type != netlink.Error {
				*r.dst = append(*r.dst, m)
			}
		}
	}
	return d, nil
}

// newMessage returns the golden form of m with the comments every file has.
func (r *result) newMessage(name, desc string, req dumpReq, m netlink.Message) *golden.Message {
	return &golden.Message{
		Name:        name,
		Description: desc,
		Comments: map[string]string{
			"kernel":          r.kernel,
			"captured":        capturedBy,
			"conntrack-tools": r.tools,
			"request":         req.String(),
		},
		Type:    uint16(m.Header.Type),
		Flags:   uint16(m.Header.Flags),
		Payload: m.Data,
	}
}

// matchFlows finds each flow in the dump by its original tuple.
func (r *result) matchFlows(flows []*flow, dumped []netlink.Message, ct *ctTools) error {
	byKey := make(map[flowKey]netlink.Message)
	for _, m := range dumped {
		k, err := flowTuple(m.Data, ctaTupleOrig)
		if err != nil {
			return fmt.Errorf("flow dump: %w", err)
		}
		if _, dup := byKey[k]; dup {
			return fmt.Errorf("flow dump: two entries with original tuple %s", k)
		}
		byKey[k] = m
	}
	for _, f := range flows {
		m, ok := byKey[f.key]
		if !ok {
			if !f.optional {
				return fmt.Errorf("%s: no entry with original tuple %s in the dump", f.name, f.key)
			}
			// A kernel without a tracker for the protocol keeps only
			// the protocol number: look for the entry without ports.
			bare := f.key
			bare.sport, bare.dport = 0, 0
			if _, ok := byKey[bare]; ok {
				delete(byKey, bare)
				r.skip(f.name, "the kernel stored the entry without ports (only CTA_PROTO_NUM %d in CTA_TUPLE_PROTO), "+
					"so it has no tracker for the protocol and treats it like generic4", f.key.proto)
			} else {
				r.skip(f.name, "conntrack -I succeeded but no entry with original tuple %s is in the dump", f.key)
			}
			continue
		}
		delete(byKey, f.key)
		g := r.newMessage(f.name, f.desc, reqFlows, m)
		g.Comments["setup"] = strings.Join(f.setupLines(), "\n")
		addComment(g, keyXML, ct.flows, f.key)
		addComment(g, keyLine, ct.lines, f.key)
		if f.labels != nil {
			addComment(g, keyLabels, ct.labels, f.key)
			if !strings.Contains(g.Comments[keyLabels], " labels=") {
				return fmt.Errorf("%s: conntrack -L -o labels shows no labels: %q", f.name, g.Comments[keyLabels])
			}
			g.Comments[keyLabelConf] = ct.labelMap
		}
		if f.note != "" {
			g.Comments["note"] = f.note
		}
		if f.key.proto == protoSCTP && strings.Contains(g.Comments[keyXML], "<state>FIN_WAIT</state>") {
			g.Comments["note"] = sctpXMLNote
		}
		r.messages = append(r.messages, g)
	}
	for k := range byKey {
		r.unmatched = append(r.unmatched, "flow "+k.String())
	}
	sort.Strings(r.unmatched)
	return nil
}

// addComment sets the comment key of g to what conntrack-tools printed for
// the entry k, if it printed anything.
func addComment[K comparable](g *golden.Message, key string, printed map[K]string, k K) {
	if v, ok := printed[k]; ok {
		g.Comments[key] = v
	}
}

// matchExpectations finds each expectation in the dump by its master tuple.
func (r *result) matchExpectations(dumped []netlink.Message, ct *ctTools) error {
	byMaster := make(map[flowKey]netlink.Message)
	for _, m := range dumped {
		k, err := flowTuple(m.Data, ctaExpectMaster)
		if err != nil {
			return fmt.Errorf("expectation dump: %w", err)
		}
		byMaster[k] = m
	}
	for _, e := range expectations {
		m, ok := byMaster[e.master.key]
		if !ok {
			return fmt.Errorf("%s: no expectation with master %s in the dump", e.name, e.master.key)
		}
		delete(byMaster, e.master.key)
		g := r.newMessage(e.name, e.desc, reqExpects, m)
		g.Comments["setup"] = strings.Join(e.master.setupLines(), "\n")
		addComment(g, keyExpectXML, ct.expects, e.master.key)
		addComment(g, keyExpLine, ct.expLines, e.master.key)
		r.messages = append(r.messages, g)
	}
	for k := range byMaster {
		r.unmatched = append(r.unmatched, "expectation with master "+k.String())
	}
	sort.Strings(r.unmatched)
	return nil
}

// addStats adds the statistics messages: one per CPU, named by the CPU
// number the kernel puts in nfgenmsg.res_id, and the global one.
func (r *result) addStats(d *dumps, ct *ctTools) {
	for _, s := range []struct {
		prefix, desc, key, note string
		req                     dumpReq
		msgs                    []netlink.Message
		lines                   map[int]string
	}{
		{"stats-cpu-", "conntrack statistics of CPU %d", keyStats, "", reqStats, d.stats, ct.stats},
		{"exp-stats-cpu-", "expectation statistics of CPU %d", keyExpStats, expStatsNote, reqExpStats, d.expStats, ct.expStats},
	} {
		for _, m := range s.msgs {
			if len(m.Data) < nfgenmsgLen {
				r.skip(s.prefix+"?", "message of %d bytes has no nfgenmsg", len(m.Data))
				continue
			}
			cpu := int(binary.BigEndian.Uint16(m.Data[2:4]))
			g := r.newMessage(s.prefix+strconv.Itoa(cpu), fmt.Sprintf(s.desc, cpu), s.req, m)
			addComment(g, s.key, s.lines, cpu)
			if s.note != "" {
				g.Comments["note"] = s.note
			}
			r.messages = append(r.messages, g)
		}
	}
	for i, m := range d.global {
		name := "stats-global"
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		g := r.newMessage(name, "global conntrack statistics: entries and maximum entries", reqGlobal, m)
		g.Comments[keyCount] = ct.count
		g.Comments["note"] = globalStatsNote
		r.messages = append(r.messages, g)
	}
}

const expStatsNote = "the kernel answers IPCTNL_MSG_EXP_GET_STATS_CPU with type 0x0103: " +
	"subsystem NFNL_SUBSYS_CTNETLINK (1), not NFNL_SUBSYS_CTNETLINK_EXP (2), " +
	"so the type alone reads as IPCTNL_MSG_CT_GET_CTRZERO"

const globalStatsNote = "the kernel sets NLM_F_MULTI on this single answer and sends no NLMSG_DONE after it"

// labelsSetup describes the netlink update that sets f's labels.
func labelsSetup(f *flow) string {
	bits := make([]string, len(f.labels))
	for i, b := range f.labels {
		bits[i] = strconv.Itoa(b)
	}
	return fmt.Sprintf("netlink: IPCTNL_MSG_CT_NEW (0x0100) without NLM_F_CREATE, CTA_TUPLE_ORIG of the entry, "+
		"CTA_LABELS and CTA_LABELS_MASK both with bits %s set", strings.Join(bits, ", "))
}

// labelBitmap returns the 16-byte label bitmap with the given bits set. The
// kernel copies its bitmap of unsigned longs as is, so words are in host
// byte order; conntrack-tools builds it from 32-bit words the same way.
func labelBitmap(bits []int) []byte {
	b := make([]byte, 16)
	for _, n := range bits {
		w := b[n/32*4:]
		binary.NativeEndian.PutUint32(w, binary.NativeEndian.Uint32(w)|1<<(n%32))
	}
	return b
}

// setLabels sets f's labels on its existing entry with an update request.
func setLabels(c *netlink.Conn, f *flow) error {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(ctaTupleOrig, func(nae *netlink.AttributeEncoder) error {
		return encodeTuple(nae, f.key)
	})
	bm := labelBitmap(f.labels)
	ae.Bytes(ctaLabels, bm)
	ae.Bytes(ctaLabelsMask, bm)
	attrs, err := ae.Encode()
	if err != nil {
		return fmt.Errorf("encode labels update: %w", err)
	}
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{Type: ctNew, Flags: netlink.Request | netlink.Acknowledge},
		Data:   append(nfgenmsg(f.key.family()), attrs...),
	})
	if err != nil {
		return fmt.Errorf("set labels: %w", err)
	}
	return nil
}

// write removes the files of an earlier capture from dir and writes the
// new ones.
func (r *result) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*"+golden.Ext))
	if err != nil {
		return err
	}
	for _, p := range old {
		m, err := golden.ParseFile(p)
		if err != nil || m.Comments["captured"] != capturedBy {
			continue // not ours
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	var errs []error
	for _, m := range r.messages {
		errs = append(errs, m.WriteFile(dir))
	}
	return errors.Join(errs...)
}

// summary prints what was captured, skipped and left unmatched.
func (r *result) summary(w io.Writer, dir string) {
	fmt.Fprintf(w, "captured %d messages from kernel %s into %s:\n", len(r.messages), r.kernel, dir)
	for _, m := range r.messages {
		fmt.Fprintf(w, "  %-18s %4d bytes  %s\n", m.Name, len(m.Payload), m.Description)
	}
	if len(r.skipped) > 0 {
		fmt.Fprintln(w, "skipped:")
		for _, s := range r.skipped {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
	if len(r.unmatched) > 0 {
		fmt.Fprintln(w, "dumped but not set up by the tool:")
		for _, s := range r.unmatched {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
}
