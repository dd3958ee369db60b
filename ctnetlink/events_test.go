package ctnetlink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
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
	dgram := decodeTestDatagram()
	want := []decodeResult{
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
	got := decodeAll(t, l)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("decoded events (-want +got):\n%s", diff)
	}
	if l.Overruns() != 2 {
		t.Errorf("Overruns() = %d after an ENOBUFS error message and an NLMSG_OVERRUN, want 2", l.Overruns())
	}
}

// decodeTestDatagram returns the messages of TestEventDecode: events,
// malformed and unknown ones, control messages and a truncated header.
func decodeTestDatagram() []byte {
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

	return dgram
}

// decodeResult is what TestEventDecode reads of one message.
type decodeResult struct {
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

// decodeAll decodes every message of l.rest with next.
func decodeAll(t *testing.T, l *Listener) []decodeResult {
	t.Helper()
	var got []decodeResult
	for len(l.rest) > 0 {
		ev, err := l.next()
		switch {
		case err != nil:
			r := decodeResult{Err: err.Error(), Lost: errors.Is(err, ErrEventsLost)}
			for _, e := range []unix.Errno{unix.EPERM, unix.ENOBUFS} {
				if errors.Is(err, e) {
					r.Errno = e
				}
			}
			got = append(got, r)
		case ev == nil:
			got = append(got, decodeResult{Skipped: true})
		case ev.Flow != nil:
			if ev.Expect != nil {
				t.Fatalf("%v event has both a flow and an expectation", ev.Type)
			}
			got = append(got, decodeResult{Type: ev.Type, Orig: tupleString(&ev.Flow.TupleOrig), Mark: ev.Flow.Mark, Unknown: ev.Flow.Unknown, PortID: ev.PortID})
		default:
			got = append(got, decodeResult{Type: ev.Type, Expect: tupleString(&ev.Expect.Tuple), PortID: ev.PortID})
		}
	}
	return got
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
