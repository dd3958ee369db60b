package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// The event tests run conntrack -E and ctspec -E side by side in one
// namespace, one pair per option set, cause the same events for all of
// them, stop them with SIGINT once every listening socket has been read
// empty, and compare standard output and standard error byte for byte.
//
// Events that a netlink request causes end in conntrack 1.4.7's
// " [USERSPACE] portid=N progname=P". The program name is found only
// while the requesting socket is open, so the events are caused by this
// test process through a Conn that stays open until both programs have
// stopped; traffic over loopback causes events without the suffix.

// eventSets are the option sets. kernel says whether ctspec hands a filter
// to the kernel for the set; the test checks that it then drops events
// in the kernel.
var eventSets = []struct {
	args   []string
	kernel bool
}{
	{nil, false},
	{[]string{"-o", "xml"}, false},
	{[]string{"-o", "xml,id"}, false},
	{[]string{"-o", "save"}, false},
	{[]string{"-o", "extended"}, false},
	{[]string{"-o", "id"}, false},
	{[]string{"-o", "userspace"}, false},
	{[]string{"-o", "extended,userspace"}, false},
	{[]string{"-o", "save,userspace"}, false},
	{[]string{"-o", "timestamp"}, false},
	{[]string{"-o", "xml,timestamp"}, false},
	{[]string{"-o", "ktimestamp"}, false},
	{[]string{"-e", "NEW,DESTROY"}, false},
	{[]string{"-e", "UPDATES", "-o", "extended"}, false},
	{[]string{"-p", "udp"}, true},
	{[]string{"-p", "tcp", "--dport", "20"}, true},
	{[]string{"-p", "tcp", "--sport", "11"}, true},
	{[]string{"-p", "sctp"}, true},
	{[]string{"-p", "gre"}, true},
	{[]string{"-p", "icmp"}, true},
	{[]string{"-p", "icmpv6", "-o", "xml"}, true},
	{[]string{"-p", "99"}, true},
	{[]string{"-p", "udp", "-o", "userspace,xml"}, true},
	{[]string{"-s", "192.0.2.1"}, true},
	{[]string{"-d", "192.0.2.2", "-e", "NEW"}, true},
	{[]string{"-s", "192.0.2.0/24"}, true},
	{[]string{"-s", "192.0.9.1", "--mask-src", "255.255.0.255"}, true},
	{[]string{"-s", "2001:db8::1"}, true},
	{[]string{"-s", "2001:db8::/64", "-p", "udp"}, true},
	{[]string{"-r", "203.0.113.8"}, true},
	{[]string{"-q", "10.0.0.1", "-o", "save"}, true},
	{[]string{"-f", "ipv6"}, true},
	{[]string{"-f", "ipv4", "-p", "udp"}, true},
	{[]string{"-m", "5"}, true},
	{[]string{"-m", "0x10/0xf0"}, true},
	{[]string{"-m", "2", "-p", "udp"}, true},
	{[]string{"-m", "0"}, true},
	{[]string{"-m", "0/0"}, false},
	{[]string{"-w", "7"}, true},
	{[]string{"-w", "0", "-p", "tcp"}, true},
	{[]string{"--orig-zone", "7"}, false},
}

// causeEvents causes flow events of several protocols, families, marks
// and zones in ns: UDP traffic over loopback (events of the kernel), then
// flows that c creates, updates, deletes and flushes (events of a
// request).
func causeEvents(t *testing.T, ns *nstest.NS, c *ctnetlink.Conn) {
	t.Helper()
	nstest.RequireCommands(t, "nft")
	// The kernel tracks traffic only once a ruleset uses conntrack.
	nftOutputRule(t, ns, "ct state new counter")
	err := ns.Do(loopbackTraffic)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	flows := []*ctnetlink.Flow{
		flowOf(unix.IPPROTO_TCP, "192.0.2.1", "192.0.2.2", 10, 20, 5, 0),
		flowOf(unix.IPPROTO_TCP, "192.0.2.3", "192.0.2.2", 11, 22, 0x11, 7),
		flowOf(unix.IPPROTO_UDP, "192.0.2.1", "192.0.2.53", 1053, 53, 2, 0),
		flowOf(unix.IPPROTO_UDP, "2001:db8::1", "2001:db8::2", 5, 53, 2, 0),
		flowOf(unix.IPPROTO_ICMP, "192.0.2.1", "192.0.2.2", 0, 0, 0, 0),
		flowOf(unix.IPPROTO_ICMPV6, "2001:db8::1", "2001:db8::2", 0, 0, 0x13, 0),
		flowOf(unix.IPPROTO_SCTP, "192.0.2.4", "192.0.2.2", 10, 20, 0, 0),
		flowOf(unix.IPPROTO_GRE, "192.0.2.1", "192.0.2.2", 1, 2, 0, 0),
		flowOf(99, "192.0.2.9", "192.0.2.2", 0, 0, 0, 0),
		flowOf(unix.IPPROTO_UDP, "192.0.2.5", "192.0.2.6", 7, 8, 0, 7),
		flowOf(unix.IPPROTO_TCP, "2001:db8::5", "2001:db8::6", 1000, 80, 0x15, 0),
	}
	// A flow whose reply goes to another address, as after DNAT.
	nat := flowOf(unix.IPPROTO_UDP, "10.0.0.1", "10.0.0.2", 5, 6, 0, 0)
	nat.SetTupleReply(ctnetlink.NewTuple(unix.IPPROTO_UDP, netip.MustParseAddrPort("203.0.113.8:99"), netip.MustParseAddrPort("10.0.0.1:5")))
	flows = append(flows, nat)
	for _, f := range flows {
		if err := c.Create(ctx, f); err != nil {
			t.Fatalf("create %v: %v", f.TupleOrig.Src(), err)
		}
	}
	update := func(f *ctnetlink.Flow, set func(*ctnetlink.Flow)) {
		u := key(f)
		set(u)
		if err := c.Update(ctx, u); err != nil {
			t.Fatalf("update %v: %v", f.TupleOrig.Src(), err)
		}
	}
	update(flows[0], func(u *ctnetlink.Flow) { u.SetMark(0x10) })
	update(flows[1], func(u *ctnetlink.Flow) { u.SetMark(0) })
	update(flows[2], func(u *ctnetlink.Flow) { u.SetTimeout(500) })
	update(flows[3], func(u *ctnetlink.Flow) { u.SetMark(0x12) })
	for _, f := range []*ctnetlink.Flow{flows[0], flows[4], nat} {
		if err := c.Delete(ctx, key(f)); err != nil {
			t.Fatalf("delete %v: %v", f.TupleOrig.Src(), err)
		}
	}
	if err := c.Flush(ctx, nil); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// eventKey identifies an event in the comparison of two streams.
func eventKey(ev *ctnetlink.Event) string {
	o := &ev.Flow.TupleOrig
	return fmt.Sprintf("%v id=%d proto=%d %v:%d->%v:%d", ev.Type, ev.Flow.ID, o.Proto.Num, o.Src(), o.Proto.SrcPort, o.Dst(), o.Proto.DstPort)
}

// queuedEvents reads the flow events queued on l, which holds every event
// caused so far: the requests that cause events return once the events
// are queued. It returns their keys and copies of their flows.
func queuedEvents(t *testing.T, l *ctnetlink.Listener) ([]string, []ctnetlink.Event) {
	t.Helper()
	var keys []string
	var evs []ctnetlink.Event
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		got := 0
		for ev, err := range l.Events(ctx) {
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			if err != nil {
				cancel()
				t.Fatalf("events: %v", err)
			}
			got++
			if ev.Flow == nil {
				continue
			}
			keys = append(keys, eventKey(ev))
			e := *ev
			f := *ev.Flow
			e.Flow = &f
			evs = append(evs, e)
		}
		cancel()
		if got == 0 {
			return keys, evs
		}
	}
}

var (
	// "[1700000000.123456]\t" before an event with -o timestamp: the time
	// each program printed it.
	eventTimeRE = regexp.MustCompile(`(?m)^\[\d+\.\d+\]\t`)
	// The same time in XML.
	xmlWhenRE = regexp.MustCompile(`<when>.*?</when>`)
)

// eventPrintTimes replaces the time at which each program printed an
// event, its own clock and not a value of the event.
func eventPrintTimes(s string) string {
	s = eventTimeRE.ReplaceAllString(s, "[T]\t")
	return xmlWhenRE.ReplaceAllString(s, "<when>T</when>")
}

// listenEventSets parses the -E command line of each of eventSets and
// listens with the kernel filter ctspec uses for it, until t ends.
func listenEventSets(t *testing.T, ns *nstest.NS) ([]*cmdLine, []*ctnetlink.Listener) {
	t.Helper()
	cmds := make([]*cmdLine, len(eventSets))
	filtered := make([]*ctnetlink.Listener, len(eventSets))
	for i, set := range eventSets {
		cmd, err := parseCmdLine(append([]string{"conntrack", "-E"}, set.args...), func(string) {})
		if err != nil {
			t.Fatalf("%v: %v", set.args, err)
		}
		cmds[i] = cmd
		cfg := cmd.listenConfig()
		if (cfg.Filter != nil) != set.kernel {
			t.Errorf("%v: kernel filter %+v, want one: %v", set.args, cfg.Filter, set.kernel)
		}
		cfg.NetNS = ns.FD()
		if filtered[i], err = ctnetlink.Listen(cfg); err != nil {
			t.Fatalf("%v: listen: %v", set.args, err)
		}
		t.Cleanup(func() { filtered[i].Close() })
	}
	return cmds, filtered
}

func TestDifferentialEvents(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	ns := nstest.New(t)
	ns.Sysctl(t, "net.netfilter.nf_conntrack_acct", "1")
	ns.Sysctl(t, "net.netfilter.nf_conntrack_timestamp", "1")
	c, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	// The Conn's socket must outlive both programs: they look its port
	// id up to name this process.
	defer c.Close()

	// Next to the programs, the test listens itself with the filter that
	// ctspec uses for each set, and once without filter.
	all, err := ctnetlink.Listen(&ctnetlink.ListenConfig{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	cmds, filtered := listenEventSets(t, ns)

	procs := make([][2]*eventProc, len(eventSets))
	var flat []*eventProc
	for i, set := range eventSets {
		for j, prog := range []string{"conntrack", bin} {
			procs[i][j] = startEvents(t, ns, prog, set.args...)
			flat = append(flat, procs[i][j])
		}
	}
	waitListeners(t, ns, 1+3*len(eventSets))

	causeEvents(t, ns, c)

	allKeys, allEvents := queuedEvents(t, all)
	if len(allEvents) < 30 {
		t.Fatalf("only %d events: %q", len(allEvents), allKeys)
	}
	for i, set := range eventSets {
		checkKernelFilter(t, set.args, cmds[i], filtered[i], allKeys, allEvents)
	}

	waitPrinted(t, ns, flat)
	for _, p := range flat {
		p.stop(t)
	}
	for i, set := range eventSets {
		want, got := procs[i][0], procs[i][1]
		name := strings.Join(append([]string{"-E"}, set.args...), " ")
		// Both print the same events a moment apart.
		if diff := diffVolatile(eventPrintTimes(want.stdout.String()), eventPrintTimes(got.stdout.String()), 0); diff != "" {
			t.Errorf("conntrack %s: stdout (-conntrack +ctspec)\n%s", name, diff)
		}
		if diff := cmp.Diff(want.stderr.String(), got.stderr.String()); diff != "" {
			t.Errorf("conntrack %s: stderr (-conntrack +ctspec)\n%s", name, diff)
		}
		if i == 0 {
			// The suffix is there, with and without a program name.
			out := got.stdout.String()
			if !strings.Contains(out, " [USERSPACE] portid=") || !strings.Contains(out, " progname=") {
				t.Errorf("ctspec -E: no [USERSPACE] suffix with a program name:\n%s", out)
			}
		}
	}
}

// checkKernelFilter compares the events that a Listener with ctspec's
// configuration for cmd received with all events: it must have received
// every event that ctspec prints, and, with a kernel filter, fewer than
// all, none of them discarded in user space, so that the kernel dropped
// the others.
func checkKernelFilter(t *testing.T, args []string, cmd *cmdLine, l *ctnetlink.Listener, allKeys []string, all []ctnetlink.Event) {
	t.Helper()
	keys, _ := queuedEvents(t, l)
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[k] = true
	}
	cfg := cmd.listenConfig()
	inGroups := 0
	for i := range all {
		ev := &all[i]
		group := map[ctnetlink.EventType]ctnetlink.Group{ctnetlink.EventNew: ctnetlink.GroupNew,
			ctnetlink.EventUpdate: ctnetlink.GroupUpdate, ctnetlink.EventDestroy: ctnetlink.GroupDestroy}[ev.Type]
		joined := false
		for _, g := range cfg.Groups {
			joined = joined || g == group
		}
		if !joined {
			continue
		}
		inGroups++
		printed := (cmd.family == 0 || flowFamily(ev.Flow) == cmd.family) && cmd.matches(ev.Flow)
		if printed && !have[allKeys[i]] {
			t.Errorf("-E %v: the kernel dropped %s, which ctspec prints", args, allKeys[i])
		}
	}
	if n := l.Discarded(); n != 0 {
		t.Errorf("-E %v: %d events discarded in user space, not in the kernel", args, n)
	}
	if cfg.Filter != nil && len(keys) >= inGroups {
		t.Errorf("-E %v: the filter let all %d events of the groups through, want fewer", args, inGroups)
	}
}

func TestDifferentialEventErrors(t *testing.T) {
	needConntrack(t)
	ns := nstest.New(t)
	for _, args := range [][]string{
		{"-E", "-u", "ASSURED"},
		{"-E", "-i", "1"},
		{"-E", "-p", "tcp", "--state", "FOO"},
		{"-E", "--mask-src", "255.255.255.0"},
		{"-E", "-o", "userspace,foo"},
	} {
		compareRun(t, ns, args...)
	}
}

// hostSysctl reads a sysctl of the network namespace the test runs in.
func hostSysctl(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEventsNoEventsWarning runs both programs in a namespace whose
// nf_conntrack_events is 0, where no event comes: ctspec says why on
// stderr and otherwise prints what conntrack prints. With events on, it
// prints nothing more than conntrack.
func TestEventsNoEventsWarning(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	const key = "net.netfilter.nf_conntrack_events"
	host := hostSysctl(t, key)
	t.Cleanup(func() {
		// The key belongs to the namespace. Should writing it in one
		// change the host's value, the host gets its value back.
		if now := hostSysctl(t, key); now != host {
			os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(host), 0)
			t.Errorf("setting %s in a namespace changed the host's from %q to %q", key, host, now)
		}
	})
	for _, tt := range []struct {
		value string
		hint  string // the start of ctspec's extra line, "" for none
	}{
		{"0", "WARNING: net.netfilter.nf_conntrack_events is 0: the kernel sends no conntrack events"},
		{"1", ""},
		{"2", ""},
	} {
		t.Run("events="+tt.value, func(t *testing.T) {
			ns := nstest.New(t)
			ns.Sysctl(t, key, tt.value)
			want := startEvents(t, ns, "conntrack")
			got := startEvents(t, ns, bin)
			waitListeners(t, ns, 2)
			if tt.hint != "" {
				waitFor(t, "the warning", func() bool { return strings.Contains(got.stderr.String(), "\n") })
			}
			// Whether the kernel sends events or not, a flow's creation
			// shows it.
			ns.Run(t, "conntrack", "-I", "-p", "udp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "1", "--dport", "2", "-t", "100")
			waitPrinted(t, ns, []*eventProc{want, got})
			want.stop(t)
			got.stop(t)
			wantOut := want.stdout.String()
			if (wantOut == "") != (tt.value == "0") {
				t.Errorf("nf_conntrack_events=%s: conntrack printed %q", tt.value, wantOut)
			}
			userspace := regexp.MustCompile(` progname=\S+`)
			if diff := cmp.Diff(userspace.ReplaceAllString(wantOut, ""), userspace.ReplaceAllString(got.stdout.String(), "")); diff != "" {
				t.Errorf("stdout (-conntrack +ctspec)\n%s", diff)
			}
			stderr := got.stderr.String()
			if tt.hint != "" {
				line, rest, _ := strings.Cut(stderr, "\n")
				if !strings.HasPrefix(line, tt.hint) {
					t.Errorf("ctspec's first line on stderr %q, want one starting %q", line, tt.hint)
				}
				stderr = rest
			}
			if diff := cmp.Diff(want.stderr.String(), stderr); diff != "" {
				t.Errorf("stderr (-conntrack +ctspec)\n%s", diff)
			}
		})
	}
}

func TestEventFilterOptions(t *testing.T) {
	pfx := func(s ...string) ctnetlink.OneOf[netip.Prefix] {
		var c ctnetlink.OneOf[netip.Prefix]
		for _, p := range s {
			c.Values = append(c.Values, netip.MustParsePrefix(p))
		}
		return c
	}
	for _, tt := range []struct {
		name string
		args []string
		want *ctnetlink.Selector
	}{
		{"none", nil, nil},
		{"output and groups", []string{"-o", "xml,userspace", "-e", "NEW"}, nil},
		{"protocol", []string{"-p", "udp"}, &ctnetlink.Selector{Proto: ctnetlink.Protocol(unix.IPPROTO_UDP)}},
		{"ports", []string{"-p", "tcp", "--sport", "1", "--dport", "2"}, &ctnetlink.Selector{
			Proto:       ctnetlink.Protocol(unix.IPPROTO_TCP),
			OrigSrcPort: ctnetlink.Port(1),
			OrigDstPort: ctnetlink.Port(2),
		}},
		// compareTuple does not compare GRE keys.
		{"gre keys", []string{"-p", "gre", "--srckey", "1"}, &ctnetlink.Selector{Proto: ctnetlink.Protocol(unix.IPPROTO_GRE)}},
		{"addresses", []string{"-s", "192.0.2.1", "-d", "192.0.2.2", "-r", "192.0.2.3", "-q", "192.0.2.4"}, &ctnetlink.Selector{
			Family:  unix.AF_INET,
			OrigSrc: pfx("192.0.2.1/32"), OrigDst: pfx("192.0.2.2/32"),
			ReplySrc: pfx("192.0.2.3/32"), ReplyDst: pfx("192.0.2.4/32"),
		}},
		{"ipv6 network", []string{"-s", "2001:db8::/48"}, &ctnetlink.Selector{Family: unix.AF_INET6, OrigSrc: pfx("2001:db8::/48")}},
		{"ipv4 mapped", []string{"-d", "::ffff:192.0.2.4"}, &ctnetlink.Selector{Family: unix.AF_INET6, OrigDst: pfx("::ffff:192.0.2.4/128")}},
		// The bits after the first 0 of a mask are left to user space.
		{"mask", []string{"-d", "192.0.2.1", "--mask-dst", "255.255.0.255"}, &ctnetlink.Selector{Family: unix.AF_INET, OrigDst: pfx("192.0.0.0/16")}},
		{"family", []string{"-f", "ipv6"}, &ctnetlink.Selector{Family: unix.AF_INET6}},
		{"mark", []string{"-m", "5"}, &ctnetlink.Selector{Mark: ctnetlink.Is(ctnetlink.MarkMatch{Mark: 5, Mask: 0xffffffff})}},
		{"mark mask", []string{"-m", "0x10/0xf0"}, &ctnetlink.Selector{Mark: ctnetlink.Is(ctnetlink.MarkMatch{Mark: 0x10, Mask: 0xf0})}},
		// A zero mask is all bits to the kernel program, none to conntrack.
		{"mark zero mask", []string{"-m", "3/0"}, nil},
		{"zone", []string{"-w", "7"}, &ctnetlink.Selector{Zone: ctnetlink.Is[uint16](7)}},
		// conntrack's zone 0 holds for a zone of one direction, which
		// the selector reads as that zone's id.
		{"zone 0", []string{"-w", "0"}, nil},
		{"user space only", []string{"-p", "icmp", "--icmp-type", "8", "--orig-zone", "3", "-c", "4"}, &ctnetlink.Selector{Proto: ctnetlink.Protocol(unix.IPPROTO_ICMP)}},
		{"nat", []string{"--src-nat", "192.0.2.9"}, &ctnetlink.Selector{Family: unix.AF_INET}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseCmdLine(append([]string{"conntrack", "-E"}, tt.args...), func(string) {})
			if err != nil {
				t.Fatal(err)
			}
			got := c.eventFilter()
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if got != nil {
				if _, err := got.Program(); err != nil {
					t.Errorf("program: %v", err)
				}
			}
		})
	}
}

func TestCommOf(t *testing.T) {
	name, ok := commOf(uint64(os.Getpid()))
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(b)); !ok || name != want {
		t.Errorf("commOf(own pid) = %q, %v, want %q", name, ok, want)
	}
	if name, ok := commOf(0); ok {
		t.Errorf("commOf(0) = %q, want none", name)
	}
}
