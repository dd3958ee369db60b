package ctnetlink

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// listenNS opens a Listener in ns and closes it when the test ends.
func listenNS(t *testing.T, ns *nstest.NS, cfg ListenConfig) *Listener {
	t.Helper()
	cfg.NetNS = ns.FD()
	l, err := Listen(&cfg)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// evRecord is what the tests compare of an event.
type evRecord struct {
	Type EventType
	Orig string
	Mark uint32
}

func tupleString(t *Tuple) string {
	return fmt.Sprintf("%v:%d->%v:%d", t.Src(), t.Proto.SrcPort, t.Dst(), t.Proto.DstPort)
}

func record(ev *Event) evRecord {
	return evRecord{Type: ev.Type, Orig: tupleString(&ev.Flow.TupleOrig), Mark: ev.Flow.Mark}
}

// readIdle calls fn with every value Events yields until fn returns false,
// no value arrives for idle, or total passes. Each round is a fresh Events
// loop with its own deadline, as a caller that polls would run it.
func readIdle(t *testing.T, l *Listener, idle, total time.Duration, fn func(*Event, error) bool) {
	t.Helper()
	end := time.Now().Add(total)
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), idle)
		got := false
		for ev, err := range l.Events(ctx) {
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			got = true
			if !fn(ev, err) {
				cancel()
				return
			}
		}
		cancel()
		if !got {
			return
		}
	}
}

// flowAt returns a TCP test flow whose source port is the index i, for the
// flood tests.
func flowAt(src string, i int) *Flow {
	return testFlow(src, "198.51.100.1", uint16(1+i), 80)
}

func TestEventTypeString(t *testing.T) {
	tests := []struct {
		name string
		typ  EventType
		want string
	}{
		{"new", EventNew, "new"},
		{"update", EventUpdate, "update"},
		{"destroy", EventDestroy, "destroy"},
		{"exp-new", EventExpNew, "exp-new"},
		{"exp-destroy", EventExpDestroy, "exp-destroy"},
		{"zero", 0, "EventType(0)"},
		{"unknown", 42, "EventType(42)"},
	}
	for _, tt := range tests {
		if got := tt.typ.String(); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestListenBadGroup(t *testing.T) {
	for _, g := range []Group{0, GroupExpDestroy + 1} {
		_, err := Listen(&ListenConfig{Groups: []Group{GroupNew, g}})
		var ce *Error
		if !errors.As(err, &ce) || ce.Op != "listen" {
			t.Errorf("group %d: got %v, want a listen *Error", g, err)
		}
	}
}

// nlattrBytes returns one netlink attribute, padded.
func nlattrBytes(typ uint16, payload []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// TestEventDecode feeds hand-made datagrams to the decoder: each message
// becomes one event or one error, and a bad message never hides the ones
// after it.
func TestEventDecode(t *testing.T) {
	f := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)
	f.SetMark(3)
	flowAttrs := f.AppendAttributes
	var e Expect
	e.SetTuple(NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort("192.0.2.1:0"), netip.MustParseAddrPort("192.0.2.2:21")))
	e.SetTimeout(30)
	// tuple-orig.tuple-ip.ip-v4-src of 5 bytes.
	const nested = 0x8000
	bad := func(b []byte) []byte {
		ip := nlattrBytes(uint16(TupleIPAttrV4Src), []byte{192, 0, 2, 1, 9})
		return append(b, nlattrBytes(uint16(FlowAttrTupleOrig)|nested, nlattrBytes(uint16(TupleAttrIP)|nested, ip))...)
	}
	unknownAttr := func(b []byte) []byte {
		b = f.AppendAttributes(b)
		return append(b, nlattrBytes(200, []byte{1, 2, 3, 4})...)
	}
	create := netlink.Create | netlink.Excl

	// withPortID sets the nlmsg_pid of the message at offset start of b.
	withPortID := func(b []byte, start int, pid uint32) []byte {
		binary.NativeEndian.PutUint32(b[start+12:], pid)
		return b
	}
	var dgram []byte
	dgram = appendRequest(dgram, MsgNew, create, 0, unix.AF_INET, flowAttrs)
	dgram = withPortID(appendRequest(dgram, MsgNew, 0, 0, unix.AF_INET, flowAttrs), len(dgram), 0x80000001)
	dgram = appendRequest(dgram, MsgNew, 0, 0, unix.AF_INET, bad)
	dgram = appendRequest(dgram, MsgDelete, 0, 0, unix.AF_INET, unknownAttr)
	dgram = appendRequest(dgram, MsgGetStats, 0, 0, unix.AF_INET, nil)
	dgram = withPortID(appendRequest(dgram, MsgExpNew, create, 0, unix.AF_INET, e.AppendAttributes), len(dgram), 4242)
	dgram = appendRequest(dgram, MsgExpDelete, 0, 0, unix.AF_INET, e.AppendAttributes)
	// Control messages: an acknowledgement, two errors and an overrun.
	control := func(b []byte, typ netlink.HeaderType, payload []byte) []byte {
		b = binary.NativeEndian.AppendUint32(b, uint32(16+len(payload)))
		b = binary.NativeEndian.AppendUint16(b, uint16(typ))
		b = binary.NativeEndian.AppendUint16(b, 0)
		b = binary.NativeEndian.AppendUint64(b, 0)
		b = append(b, payload...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	errMsg := func(code int32) []byte {
		p := binary.NativeEndian.AppendUint32(nil, uint32(code))
		return append(p, make([]byte, 16)...) // the header of the request
	}
	dgram = control(dgram, netlink.Error, errMsg(0))
	dgram = control(dgram, netlink.Error, errMsg(-int32(unix.EPERM)))
	dgram = control(dgram, netlink.Error, errMsg(-int32(unix.ENOBUFS)))
	dgram = control(dgram, netlink.Overrun, nil)
	dgram = control(dgram, netlink.Error, []byte{1, 2})
	dgram = control(dgram, netlink.Noop, nil)
	// A header that claims more bytes than there are.
	dgram = append(dgram, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

	type result struct {
		Type    EventType
		Orig    string
		Mark    uint32
		Unknown uint16
		Expect  string
		PortID  uint32
		Err     string
		Errno   unix.Errno // the errno the error matches
		Lost    bool       // the error matches ErrEventsLost
		Skipped bool       // no event and no error
	}
	want := []result{
		{Type: EventNew, Orig: "192.0.2.1:1000->192.0.2.2:80", Mark: 3},
		{Type: EventUpdate, Orig: "192.0.2.1:1000->192.0.2.2:80", Mark: 3, PortID: 0x80000001},
		{Err: "ctnetlink: events: update: tuple-orig.tuple-ip.ip-v4-src: want 4 bytes, got 5"},
		{Type: EventDestroy, Orig: "192.0.2.1:1000->192.0.2.2:80", Mark: 3, Unknown: 1},
		{Err: "ctnetlink: events: unexpected message type 0x105"},
		{Type: EventExpNew, Expect: "192.0.2.1:0->192.0.2.2:21", PortID: 4242},
		{Type: EventExpDestroy, Expect: "192.0.2.1:0->192.0.2.2:21"},
		{Skipped: true},
		{Err: "ctnetlink: events: kernel error message: operation not permitted", Errno: unix.EPERM},
		{Err: "ctnetlink: events: events lost: receive buffer overrun (no buffer space available, NLMSG_ERROR)", Errno: unix.ENOBUFS, Lost: true},
		{Err: "ctnetlink: events: events lost: receive buffer overrun (no buffer space available, NLMSG_OVERRUN)", Errno: unix.ENOBUFS, Lost: true},
		{Err: "ctnetlink: events: error message of 2 bytes, too short for an error code"},
		{Skipped: true},
		{Err: "ctnetlink: events: netlink message length 65535 out of range (16 bytes left)"},
	}
	l := &Listener{rest: dgram}
	var got []result
	for len(l.rest) > 0 {
		ev, err := l.next()
		switch {
		case err != nil:
			r := result{Err: err.Error(), Lost: errors.Is(err, ErrEventsLost)}
			for _, e := range []unix.Errno{unix.EPERM, unix.ENOBUFS} {
				if errors.Is(err, e) {
					r.Errno = e
				}
			}
			got = append(got, r)
		case ev == nil:
			got = append(got, result{Skipped: true})
		case ev.Flow != nil:
			if ev.Expect != nil {
				t.Fatalf("%v event has both a flow and an expectation", ev.Type)
			}
			got = append(got, result{Type: ev.Type, Orig: tupleString(&ev.Flow.TupleOrig), Mark: ev.Flow.Mark, Unknown: ev.Flow.Unknown, PortID: ev.PortID})
		default:
			got = append(got, result{Type: ev.Type, Expect: tupleString(&ev.Expect.Tuple), PortID: ev.PortID})
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("decoded events (-want +got):\n%s", diff)
	}
	if l.Overruns() != 2 {
		t.Errorf("Overruns() = %d after an ENOBUFS error message and an NLMSG_OVERRUN, want 2", l.Overruns())
	}
}

// TestKernelEventsLifecycle follows one flow through NEW, UPDATE and
// DESTROY.
func TestKernelEventsLifecycle(t *testing.T) {
	ns, c := dialNS(t)
	// Flows created from now on carry start and stop times, and, on
	// Linux 6.14 and later, the event timestamp.
	ns.Sysctl(t, "net.netfilter.nf_conntrack_timestamp", "1")
	l := listenNS(t, ns, ListenConfig{})
	ctx := ctx(t)

	f := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)
	f.SetMark(7)
	before := time.Now()
	if err := c.Create(ctx, f); err != nil {
		t.Fatalf("create: %v", err)
	}
	var u Flow
	u.SetTupleOrig(f.TupleOrig)
	u.SetMark(9)
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := c.Delete(ctx, f); err != nil {
		t.Fatalf("delete: %v", err)
	}
	after := time.Now()

	var got []evRecord
	var flows []Flow
	var times []time.Time
	readIdle(t, l, 300*time.Millisecond, 10*time.Second, func(ev *Event, err error) bool {
		if err != nil {
			t.Errorf("events: %v", err)
			return true
		}
		got = append(got, record(ev))
		flows = append(flows, *ev.Flow)
		if tm, ok := ev.Time(); ok {
			times = append(times, tm)
		}
		return true
	})
	orig := "192.0.2.1:1000->192.0.2.2:80"
	want := []evRecord{{EventNew, orig, 7}, {EventUpdate, orig, 9}, {EventDestroy, orig, 9}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	for i, fl := range flows {
		if fl.ID == 0 || fl.ID != flows[0].ID {
			t.Errorf("%v: id %d, want %d", got[i].Type, fl.ID, flows[0].ID)
		}
		if tupleString(&fl.TupleReply) != "192.0.2.2:80->192.0.2.1:1000" {
			t.Errorf("%v: reply tuple %s", got[i].Type, tupleString(&fl.TupleReply))
		}
	}
	if st := flows[0].ProtoInfo.TCP.State; st != TCPStateEstablished {
		t.Errorf("new: tcp state %v, want established", st)
	}
	if flows[0].Timeout == 0 || flows[0].Timeout > 120 {
		t.Errorf("new: timeout %d", flows[0].Timeout)
	}
	if ts := flows[2].Timestamp; ts.Start == 0 || ts.Stop < ts.Start {
		t.Errorf("destroy: timestamp start %d stop %d", ts.Start, ts.Stop)
	}

	major, minor := kernelVersion(t)
	switch {
	case major < 6 || major == 6 && minor < 14:
		t.Logf("Linux %d.%d has no event timestamps (6.14 and later)", major, minor)
	case len(times) != 3:
		t.Errorf("Linux %d.%d: %d of 3 events carry timestamp-event", major, minor, len(times))
	default:
		for i, tm := range times {
			if tm.Before(before.Add(-time.Second)) || tm.After(after.Add(time.Second)) {
				t.Errorf("%v: event time %v outside [%v, %v]", got[i].Type, tm, before, after)
			}
			if i > 0 && tm.Before(times[i-1]) {
				t.Errorf("%v: event time %v before the previous event's %v", got[i].Type, tm, times[i-1])
			}
		}
	}
}

// TestKernelEventsPortID checks Event.PortID: the events that a Conn's
// requests cause carry the port ID of the Conn's socket, and an event that
// the kernel causes by itself, the removal of an expired flow, carries 0.
func TestKernelEventsPortID(t *testing.T) {
	ns, c := dialNS(t)
	l := listenNS(t, ns, ListenConfig{})
	ctx := ctx(t)

	a := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)
	b := testFlow("192.0.2.3", "192.0.2.2", 1000, 80)
	b.SetTimeout(1)
	for _, f := range []*Flow{a, b} {
		if err := c.Create(ctx, f); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	var u Flow
	u.SetTupleOrig(a.TupleOrig)
	u.SetMark(9)
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := c.Delete(ctx, a); err != nil {
		t.Fatalf("delete: %v", err)
	}

	type rec struct {
		Type   EventType
		Orig   string
		PortID uint32
	}
	var got []rec
	bOrig := tupleString(&b.TupleOrig)
	expired := false
	// b expires a second after its creation. A dump removes the expired
	// flows it meets, as the garbage collector does, both on the kernel's
	// own account.
	for end := time.Now().Add(20 * time.Second); !expired && time.Now().Before(end); {
		if _, err := c.List(ctx, nil); err != nil {
			t.Fatalf("list: %v", err)
		}
		readIdle(t, l, 200*time.Millisecond, 5*time.Second, func(ev *Event, err error) bool {
			if err != nil {
				t.Fatalf("events: %v", err)
			}
			got = append(got, rec{ev.Type, tupleString(&ev.Flow.TupleOrig), ev.PortID})
			if ev.Type == EventDestroy && got[len(got)-1].Orig == bOrig {
				expired = true
			}
			return true
		})
	}
	if len(got) == 0 || got[0].PortID == 0 {
		t.Fatalf("events %+v: want a first event with a port id", got)
	}
	port := got[0].PortID
	aOrig := tupleString(&a.TupleOrig)
	want := []rec{
		{EventNew, aOrig, port},
		{EventNew, bOrig, port},
		{EventUpdate, aOrig, port},
		{EventDestroy, aOrig, port},
		{EventDestroy, bOrig, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}

	// The port ID is that of a socket of this process in the namespace:
	// the Conn's, which joined no group.
	groups, inode := netfilterSocket(t, ns, port)
	if inode == 0 {
		t.Fatalf("port id %d names no NETLINK_NETFILTER socket of the namespace", port)
	}
	if strings.Trim(groups, "0") != "" {
		t.Errorf("port id %d names a socket in groups %s, not the Conn's", port, groups)
	}
	if !ownsSocket(t, inode) {
		t.Errorf("port id %d names socket inode %d, which this process does not hold", port, inode)
	}
}

// netfilterSocket returns the groups and the inode of the
// NETLINK_NETFILTER socket with port id port in ns, from
// /proc/net/netlink, or an inode of 0 if there is none.
func netfilterSocket(t *testing.T, ns *nstest.NS, port uint32) (groups string, inode uint64) {
	t.Helper()
	err := ns.Do(func() error {
		// /proc/thread-self/net is the namespace of this thread.
		b, err := os.ReadFile("/proc/thread-self/net/netlink")
		if err != nil {
			return err
		}
		// sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[1] != strconv.Itoa(unix.NETLINK_NETFILTER) || f[2] != strconv.FormatUint(uint64(port), 10) {
				continue
			}
			groups = f[3]
			inode, err = strconv.ParseUint(f[9], 10, 64)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return groups, inode
}

// ownsSocket reports whether a file descriptor of this process refers to
// the socket with the given inode.
func ownsSocket(t *testing.T, inode uint64) bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("socket:[%d]", inode)
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == want {
			return true
		}
	}
	return false
}

// kernelVersion returns the running kernel's major and minor version.
func kernelVersion(t *testing.T) (int, int) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatalf("uname: %v", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kernel release %q: %v", rel, err)
	}
	return major, minor
}

// TestKernelEventsGroups checks that a Listener receives the groups it
// joined and no others.
func TestKernelEventsGroups(t *testing.T) {
	tests := []struct {
		name   string
		groups []Group
		want   []EventType
	}{
		{"default", nil, []EventType{EventNew, EventUpdate, EventDestroy}},
		{"new", []Group{GroupNew}, []EventType{EventNew}},
		{"destroy", []Group{GroupDestroy}, []EventType{EventDestroy}},
		{"new and destroy", []Group{GroupNew, GroupDestroy}, []EventType{EventNew, EventDestroy}},
		{"expectations only", []Group{GroupExpNew, GroupExpUpdate, GroupExpDestroy}, nil},
	}
	ns, c := dialNS(t)
	ls := make([]*Listener, len(tests))
	for i, tt := range tests {
		ls[i] = listenNS(t, ns, ListenConfig{Groups: tt.groups})
	}
	ctx := ctx(t)
	f := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)
	var u Flow
	u.SetTupleOrig(f.TupleOrig)
	u.SetMark(1)
	if err := c.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, f); err != nil {
		t.Fatal(err)
	}
	// The kernel queued the events before it acknowledged each request.
	for i, tt := range tests {
		var got []EventType
		readIdle(t, ls[i], 200*time.Millisecond, 5*time.Second, func(ev *Event, err error) bool {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			} else {
				got = append(got, ev.Type)
			}
			return true
		})
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestKernelEventsConntrackTool compares our events with what conntrack -E
// prints for the same changes, in the same namespace.
func TestKernelEventsConntrackTool(t *testing.T) {
	ns, c := dialNS(t)
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Skip("conntrack (conntrack-tools) is not installed")
	}
	l := listenNS(t, ns, ListenConfig{})
	cmd := ns.Command("conntrack", "-E", "-p", "tcp")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	waitSubscribers(t, ns, 2)

	const n = 20
	ctx := ctx(t)
	for i := range n {
		f := flowAt("192.0.2.1", i)
		f.SetMark(1)
		if err := c.Create(ctx, f); err != nil {
			t.Fatalf("create: %v", err)
		}
		var u Flow
		u.SetTupleOrig(f.TupleOrig)
		u.SetMark(2)
		if err := c.Update(ctx, &u); err != nil {
			t.Fatalf("update: %v", err)
		}
		if err := c.Delete(ctx, f); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}

	var ours []evRecord
	readIdle(t, l, 300*time.Millisecond, 10*time.Second, func(ev *Event, err error) bool {
		if err != nil {
			t.Errorf("events: %v", err)
		} else {
			ours = append(ours, record(ev))
		}
		return len(ours) < 3*n
	})
	var theirs []evRecord
	timeout := time.After(10 * time.Second)
	for len(theirs) < 3*n {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("conntrack -E ended after %d events: %s", len(theirs), stderr.String())
			}
			r, err := parseConntrackEvent(line)
			if err != nil {
				t.Fatal(err)
			}
			theirs = append(theirs, r)
		case <-timeout:
			t.Fatalf("conntrack -E printed %d events, want %d", len(theirs), 3*n)
		}
	}
	if len(ours) != 3*n {
		t.Errorf("listener saw %d events, want %d", len(ours), 3*n)
	}
	if diff := cmp.Diff(theirs, ours); diff != "" {
		t.Errorf("events (-conntrack -E +listener):\n%s", diff)
	}
}

// parseConntrackEvent parses a line of conntrack -E, such as
// "[NEW] tcp 6 120 ESTABLISHED src=192.0.2.1 dst=192.0.2.2 sport=1 dport=80 ... mark=1".
func parseConntrackEvent(line string) (evRecord, error) {
	var r evRecord
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return r, fmt.Errorf("empty line from conntrack -E")
	}
	switch fields[0] {
	case "[NEW]":
		r.Type = EventNew
	case "[UPDATE]":
		r.Type = EventUpdate
	case "[DESTROY]":
		r.Type = EventDestroy
	default:
		return r, fmt.Errorf("conntrack -E: unknown event in %q", line)
	}
	kv := map[string]string{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if _, seen := kv[k]; ok && !seen {
			kv[k] = v // the first of each key belongs to the original tuple
		}
	}
	if m, ok := kv["mark"]; ok {
		mark, err := strconv.ParseUint(m, 10, 32)
		if err != nil {
			return r, fmt.Errorf("conntrack -E: mark in %q: %v", line, err)
		}
		r.Mark = uint32(mark)
	}
	r.Orig = fmt.Sprintf("%s:%s->%s:%s", kv["src"], kv["sport"], kv["dst"], kv["dport"])
	return r, nil
}

// waitSubscribers waits until n NETLINK_NETFILTER sockets of the namespace
// have joined multicast groups, so that a program started in the
// background receives the events that follow.
func waitSubscribers(t *testing.T, ns *nstest.NS, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got int
		err := ns.Do(func() error {
			// /proc/thread-self/net is the namespace of this thread.
			b, err := os.ReadFile("/proc/thread-self/net/netlink")
			if err != nil {
				return err
			}
			got = 0
			for _, line := range strings.Split(string(b), "\n")[1:] {
				f := strings.Fields(line)
				if len(f) > 3 && f[1] == strconv.Itoa(unix.NETLINK_NETFILTER) && strings.Trim(f[3], "0") != "" {
					got++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d netfilter sockets joined groups, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// floodResult is what a flood test saw.
type floodResult struct {
	events    int // every event yielded
	news      int // EventNew of flood flows
	destroys  int // EventDestroy of flood flows
	lost      int // ErrEventsLost yielded
	afterLoss int // events yielded after the first ErrEventsLost
	markers   int // marker flows created
}

// flood creates and deletes n flows with workers goroutines while the
// Listener is read on the test goroutine, then creates marker flows until
// the listener sees one, which shows that the stream goes on after any
// loss. It then reads what is left and returns the counts.
func flood(t *testing.T, c *Conn, l *Listener, n, workers int) floodResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var res floodResult
	seenMarker := make(chan struct{})
	var markers sync.WaitGroup
	markers.Add(1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				f := flowAt("10.0.0.1", i)
				if err := c.Create(ctx, f); err != nil {
					t.Errorf("create %d: %v", i, err)
					return
				}
				if err := c.Delete(ctx, f); err != nil {
					t.Errorf("delete %d: %v", i, err)
					return
				}
			}
		}()
	}
	go func() {
		defer markers.Done()
		wg.Wait()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := c.Create(ctx, flowAt("10.9.9.9", res.markers)); err != nil {
				t.Errorf("create marker: %v", err)
				return
			}
			res.markers++
			select {
			case <-seenMarker:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	marker := false
	handle := func(ev *Event, err error) {
		switch {
		case errors.Is(err, ErrEventsLost):
			if !errors.Is(err, unix.ENOBUFS) {
				t.Errorf("overrun error %v does not match unix.ENOBUFS", err)
			}
			res.lost++
		case err != nil:
			t.Errorf("events: %v", err)
		default:
			res.events++
			if res.lost > 0 {
				res.afterLoss++
			}
			switch src := ev.Flow.TupleOrig.Src().String(); {
			case src == "10.9.9.9" && !marker:
				marker = true
				close(seenMarker)
			case src == "10.0.0.1" && ev.Type == EventNew:
				res.news++
			case src == "10.0.0.1" && ev.Type == EventDestroy:
				res.destroys++
			}
		}
	}
	var failed error
	for ev, err := range l.Events(ctx) {
		if errors.Is(err, context.DeadlineExceeded) {
			failed = err
			break
		}
		handle(ev, err)
		// Stop once a marker was seen and every overrun read was yielded.
		if marker && uint64(res.lost) == l.Overruns() {
			break
		}
	}
	if failed != nil {
		cancel()
		markers.Wait()
		t.Fatalf("no marker event after %d events, %d losses: %v", res.events, res.lost, failed)
	}
	markers.Wait()
	// Nothing generates events any more: read what is queued.
	readIdle(t, l, 300*time.Millisecond, 30*time.Second, func(ev *Event, err error) bool {
		handle(ev, err)
		return true
	})
	return res
}

// checkFlood checks the flood's accounting: every event arrived, or the
// loss was reported, and the kernel's drop counter makes up the difference
// exactly.
func checkFlood(t *testing.T, l *Listener, n int, res floodResult) {
	t.Helper()
	dropped, err := l.Dropped()
	if err != nil {
		t.Fatalf("dropped: %v", err)
	}
	t.Logf("%d flows created and deleted: %d NEW, %d DESTROY seen; %d events in all, %d after the first loss; "+
		"%d overruns reported, %d events dropped by the kernel; receive buffer %d bytes",
		n, res.news, res.destroys, res.events, res.afterLoss, l.Overruns(), dropped, l.ReadBuffer())
	if uint64(res.lost) != l.Overruns() {
		t.Errorf("ErrEventsLost yielded %d times, Overruns() = %d", res.lost, l.Overruns())
	}
	if res.news+res.destroys < 2*n && (res.lost == 0 || l.Overruns() == 0) {
		t.Errorf("%d of %d flood events arrived and no loss was reported", res.news+res.destroys, 2*n)
	}
	if res.lost > 0 && res.afterLoss == 0 {
		t.Errorf("no event arrived after the overrun")
	}
	if got, want := res.events+int(dropped), 2*n+res.markers; got != want {
		t.Errorf("events seen (%d) + dropped (%d) = %d, want %d generated", res.events, dropped, got, want)
	}
}

// TestKernelEventsOverrun overruns a tiny receive buffer on purpose: a
// burst of flows is created while nobody reads, so the kernel drops most of
// their events. Reading must then yield the events still queued and
// ErrEventsLost, and the stream must go on: a flow created after the loss
// arrives. Every event is either yielded or counted as dropped by the
// kernel.
func TestKernelEventsOverrun(t *testing.T) {
	ns, c := dialNS(t)
	ns.Sysctl(t, "net.netfilter.nf_conntrack_events", "1")
	l := listenNS(t, ns, ListenConfig{Groups: []Group{GroupNew}, ReadBuffer: 4096})
	ctx := ctx(t)
	const n = 1000
	burst := make([]Flow, n)
	for i := range burst {
		burst[i] = *flowAt("10.0.0.1", i)
	}
	if res, err := c.CreateMany(ctx, burst); err != nil || res.Done != n {
		t.Fatalf("create: %+v %v", res, err)
	}
	marker := flowAt("10.9.9.9", 0)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var seen, lost, afterLoss int
	markerSeen := false
	for ev, err := range l.Events(rctx) {
		switch {
		case errors.Is(err, ErrEventsLost):
			if !errors.Is(err, unix.ENOBUFS) {
				t.Errorf("overrun error %v does not match unix.ENOBUFS", err)
			}
			if lost++; lost == 1 {
				if err := c.Create(ctx, marker); err != nil {
					t.Fatalf("create marker: %v", err)
				}
			}
			continue
		case err != nil:
			t.Fatalf("events after %d events and %d losses: %v", seen, lost, err)
		}
		if lost > 0 {
			afterLoss++
		}
		if ev.Flow.TupleOrig.Src() == marker.TupleOrig.Src() {
			markerSeen = true
			break
		}
		if lost > 0 {
			t.Errorf("event of burst flow %v after ErrEventsLost: the error must follow the events queued before the loss", ev.Flow.TupleOrig.Src())
		}
		seen++
	}
	dropped, err := l.Dropped()
	if err != nil {
		t.Fatalf("dropped: %v", err)
	}
	t.Logf("%d flows created unread: %d events yielded, %d dropped by the kernel; %d overruns yielded, %d events after the first; receive buffer %d bytes",
		n, seen, dropped, lost, afterLoss, l.ReadBuffer())
	if lost == 0 {
		t.Fatalf("no ErrEventsLost after %d events of a burst of %d into a %d-byte buffer", seen, n, l.ReadBuffer())
	}
	if !markerSeen {
		t.Errorf("the flow created after the overrun has no event: the stream did not go on")
	}
	if uint64(lost) != l.Overruns() {
		t.Errorf("ErrEventsLost yielded %d times, Overruns() = %d", lost, l.Overruns())
	}
	if seen == n {
		t.Errorf("all %d events arrived although an overrun was reported", n)
	}
	if got := seen + int(dropped); got != n {
		t.Errorf("events yielded (%d) + dropped (%d) = %d, want the %d generated", seen, dropped, got, n)
	}
}

// TestKernelEventsFlood creates and deletes many flows with the default
// buffer: every event arrives, or the loss is reported.
func TestKernelEventsFlood(t *testing.T) {
	ns, c := dialNS(t)
	l := listenNS(t, ns, ListenConfig{})
	n := 20000
	if testing.Short() {
		n = 2000
	}
	res := flood(t, c, l, n, 4)
	checkFlood(t, l, n, res)
}

// TestKernelEventsReliableDestroy deletes many flows while nobody reads a
// small buffer, then counts the DESTROY events that arrive, with and
// without ReliableDestroy.
func TestKernelEventsReliableDestroy(t *testing.T) {
	const n = 2000
	for _, reliable := range []bool{false, true} {
		t.Run(fmt.Sprintf("reliable=%v", reliable), func(t *testing.T) {
			ns, c := dialNS(t)
			l := listenNS(t, ns, ListenConfig{Groups: []Group{GroupDestroy}, ReadBuffer: 16 << 10, ReliableDestroy: reliable})
			ctx := ctx(t)
			for i := range n {
				if err := c.Create(ctx, flowAt("10.0.0.1", i)); err != nil {
					t.Fatalf("create: %v", err)
				}
			}
			start := time.Now()
			for i := range n {
				if err := c.Delete(ctx, flowAt("10.0.0.1", i)); err != nil {
					t.Fatalf("delete: %v", err)
				}
			}
			seen := map[uint16]int{}
			var lost int
			var last time.Duration
			readIdle(t, l, 2*time.Second, 60*time.Second, func(ev *Event, err error) bool {
				switch {
				case errors.Is(err, ErrEventsLost):
					lost++
				case err != nil:
					t.Errorf("events: %v", err)
				case ev.Type != EventDestroy:
					t.Errorf("unexpected %v event", ev.Type)
				default:
					seen[ev.Flow.TupleOrig.Proto.SrcPort]++
					last = time.Since(start)
				}
				return len(seen) < n
			})
			dups := 0
			for _, k := range seen {
				dups += k - 1
			}
			dropped, err := l.Dropped()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("reliable=%v: %d flows deleted, %d DESTROY events received (%d duplicates), last after %v; "+
				"%d overruns reported, %d drops counted by the kernel; receive buffer %d bytes",
				reliable, n, len(seen), dups, last.Round(time.Millisecond), lost, dropped, l.ReadBuffer())
			if reliable {
				if lost != 0 || l.Overruns() != 0 {
					t.Errorf("overruns reported with NETLINK_NO_ENOBUFS: %d yielded, Overruns() = %d", lost, l.Overruns())
				}
				if len(seen) != n {
					t.Errorf("%d of %d DESTROY events arrived with ReliableDestroy", len(seen), n)
				}
			} else if len(seen) < n && lost == 0 {
				t.Errorf("%d of %d DESTROY events arrived and no loss was reported", len(seen), n)
			}
			// The kernel frees a flow once its DESTROY was delivered.
			var entries uint32
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				st, err := c.Stats(ctx)
				if err != nil {
					t.Fatalf("stats: %v", err)
				}
				if entries = st.Entries; entries == 0 || time.Now().After(deadline) {
					break
				}
			}
			if entries != 0 {
				t.Errorf("%d flows still counted after the events", entries)
			}
		})
	}
}

// TestKernelEventsCancel checks that cancelling the context or closing the
// Listener ends an idle loop promptly, and that a Listener outlives a
// finished loop.
func TestKernelEventsCancel(t *testing.T) {
	ns, c := dialNS(t)
	l := listenNS(t, ns, ListenConfig{})

	end := func(ctx context.Context, stop func()) (time.Duration, error) {
		t.Helper()
		if stop != nil {
			time.AfterFunc(100*time.Millisecond, stop)
		}
		start := time.Now()
		var last error
		n := 0
		for ev, err := range l.Events(ctx) {
			n++
			if ev != nil {
				t.Errorf("unexpected %v event", ev.Type)
			}
			last = err
		}
		if n != 1 {
			t.Errorf("loop yielded %d values, want one error", n)
		}
		return time.Since(start), last
	}

	cctx, cancel := context.WithCancel(context.Background())
	d, err := end(cctx, cancel)
	if !errors.Is(err, context.Canceled) || d > 2*time.Second {
		t.Errorf("cancel: got %v after %v, want context.Canceled at once", err, d)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer dcancel()
	d, err = end(dctx, nil)
	if !errors.Is(err, context.DeadlineExceeded) || d > 2*time.Second {
		t.Errorf("deadline: got %v after %v, want context.DeadlineExceeded at once", err, d)
	}

	// A new loop after cancelled ones receives events.
	ctx := ctx(t)
	f := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)
	if err := c.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	for ev, err := range l.Events(ctx) {
		if err != nil || ev.Type != EventNew {
			t.Fatalf("after cancel: got %v, %v, want a new event", ev, err)
		}
		break
	}

	if err := c.Delete(ctx, f); err != nil {
		t.Fatal(err)
	}
	// Only one loop runs at a time.
	for ev, err := range l.Events(ctx) {
		if err != nil || ev.Type != EventDestroy {
			t.Fatalf("outer loop: got %v, %v, want a destroy event", ev, err)
		}
		n := 0
		for _, err := range l.Events(ctx) {
			n++
			if !strings.Contains(fmt.Sprint(err), "another Events loop") {
				t.Errorf("second loop: got %v", err)
			}
		}
		if n != 1 {
			t.Errorf("second loop yielded %d values, want one error", n)
		}
		break
	}

	d, err = end(context.Background(), func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	var ce *Error
	if !errors.Is(err, net.ErrClosed) || !errors.As(err, &ce) || d > 2*time.Second {
		t.Errorf("close: got %v after %v, want net.ErrClosed at once", err, d)
	}
	_, err = end(context.Background(), nil)
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("events after close: got %v, want net.ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := l.Dropped(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("dropped after close: got %v, want net.ErrClosed", err)
	}
}

// TestKernelEventsCloseRace closes Listeners while their loops receive.
func TestKernelEventsCloseRace(t *testing.T) {
	ns, c := dialNS(t)
	ctx := ctx(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f := flowAt("10.0.0.1", i%1000)
			if err := c.Create(ctx, f); err == nil {
				c.Delete(ctx, f)
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for range 20 {
		l := listenNS(t, ns, ListenConfig{})
		go func() {
			time.Sleep(5 * time.Millisecond)
			l.Close()
		}()
		var last error
		for _, err := range l.Events(ctx) {
			if err != nil && !errors.Is(err, ErrEventsLost) {
				last = err
			}
		}
		if !errors.Is(last, net.ErrClosed) {
			t.Fatalf("loop ended with %v, want net.ErrClosed", last)
		}
	}
}

// exampleEvents prints the flow events of the network namespace netns to w
// until ctx ends.
func exampleEvents(ctx context.Context, netns int, w io.Writer) error {
	l, err := Listen(&ListenConfig{
		NetNS:  netns,
		Groups: []Group{GroupNew, GroupDestroy},
	})
	if err != nil {
		return err
	}
	defer l.Close()
	for ev, err := range l.Events(ctx) {
		switch {
		case errors.Is(err, ErrEventsLost):
			log.Printf("events lost (%d overruns so far): resynchronise with a dump", l.Overruns())
		case err != nil && ctx.Err() == nil:
			// A decode error skips one message; a closed Listener
			// ends the loop.
			log.Print(err)
		case err == nil:
			fmt.Fprintf(w, "%v %v\n", ev.Type, tupleString(&ev.Flow.TupleOrig))
		}
	}
	return ctx.Err()
}

// ExampleListener_Events prints the flow events of the caller's network
// namespace until interrupted.
func ExampleListener_Events() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := exampleEvents(ctx, 0, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// lockedBuffer is a strings.Builder for two goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestExampleEvents runs the example's code in a namespace.
func TestExampleEvents(t *testing.T) {
	ns, c := dialNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() { done <- exampleEvents(ctx, ns.FD(), &out) }()
	waitSubscribers(t, ns, 1)
	f := testFlow("192.0.2.1", "192.0.2.2", 1, 2)
	if err := c.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, f); err != nil {
		t.Fatal(err)
	}
	want := "new 192.0.2.1:1->192.0.2.2:2\ndestroy 192.0.2.1:1->192.0.2.2:2\n"
	for deadline := time.Now().Add(10 * time.Second); out.String() != want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("example: %v", err)
	}
	if got := out.String(); got != want {
		t.Errorf("example printed %q, want %q", got, want)
	}
}

// TestKernelEventsForeignUnbind checks that with nf_conntrack_events=2 a
// flow created while a Listener of its namespace is open has events,
// whatever listeners of other namespaces do. The kernel keeps one
// host-wide "has listener" bit per group (nf_ctnetlink_has_listener, Linux
// 6.3 and later), set by nfnetlink_bind and cleared by nfnetlink_unbind
// when netlink_has_listeners finds no socket left in the group. That
// count covers the sockets of every namespace, so a listener that comes
// and goes elsewhere cannot clear the bit while this one listens, and
// flows created meanwhile keep their events. Mirror relies on it: only
// flows of its initial dump count as silent.
func TestKernelEventsForeignUnbind(t *testing.T) {
	auto, cauto := dialNS(t)
	all, call := dialNS(t)
	other := nstest.New(t)
	auto.Sysctl(t, "net.netfilter.nf_conntrack_events", "2")
	all.Sysctl(t, "net.netfilter.nf_conntrack_events", "1")
	lauto := listenNS(t, auto, ListenConfig{Groups: []Group{GroupNew}})
	lall := listenNS(t, all, ListenConfig{Groups: []Group{GroupNew}})
	ctx := ctx(t)

	// seen reads l until the NEW of the flow with source port port arrives
	// or nothing arrived for a while.
	seen := func(l *Listener, port uint16) bool {
		got := false
		readIdle(t, l, 2*time.Second, 10*time.Second, func(ev *Event, err error) bool {
			if err != nil {
				t.Errorf("events: %v", err)
				return true
			}
			got = got || ev.Flow.TupleOrig.Proto.SrcPort == port
			return !got
		})
		return got
	}
	for i := range 20 {
		// A listener of every group that comes and goes in a third
		// namespace, as conntrack -E does.
		lo, err := Listen(&ListenConfig{NetNS: other.FD()})
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		if err := lo.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		f := flowAt("10.0.0.1", i)
		port := f.TupleOrig.Proto.SrcPort
		if err := cauto.Create(ctx, f); err != nil {
			t.Fatalf("create: %v", err)
		}
		if err := call.Create(ctx, f); err != nil {
			t.Fatalf("create: %v", err)
		}
		if !seen(lall, port) {
			t.Errorf("try %d: no NEW event with nf_conntrack_events=1", i)
		}
		if !seen(lauto, port) {
			t.Errorf("try %d: no NEW event with nf_conntrack_events=2 and a listener open", i)
		}
	}
}
