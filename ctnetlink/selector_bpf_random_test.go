package ctnetlink

import (
	"math/rand"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// The random filters draw from the values randomTable and randomUpdates
// use, so that they select some events and not others.
var (
	filterMarks    = []uint32{0, 1, 2, 3, 0x100, 0x101, 0x1ff, 0xff00, 0x80000001, 0xdeadbeef}
	filterMarkMask = []uint32{0, 0xff, 0xff00, 1, 0x100, 0xffff0000, 0xffffffff}
	filterStatus   = []StatusMatch{
		{Status: StatusAssured}, {Status: StatusSeenReply}, {Status: StatusAssured | StatusSeenReply},
		{Mask: StatusAssured}, {Mask: StatusSeenReply}, {Status: StatusConfirmed},
		{Status: StatusSeenReply, Mask: StatusSeenReply | StatusAssured},
	}
)

// randomEventFilter draws a filter of up to five conditions over the
// values of flows, each negated with a probability of 1/3. One filter in
// ten has an address list of hundreds of prefixes.
func randomEventFilter(r *rand.Rand, flows []Flow) *Selector {
	var f Selector
	d := &filterDraw{r: r, flows: flows}
	for _, field := range r.Perm(12)[:r.Intn(6)] {
		if field < 9 {
			d.tupleField(&f, field)
		} else {
			d.metaField(&f, field)
		}
	}
	return &f
}

// filterDraw draws the values of random filters from flows.
type filterDraw struct {
	r     *rand.Rand
	flows []Flow
}

func (d *filterDraw) flow() *Flow { return &d.flows[d.r.Intn(len(d.flows))] }

func (d *filterDraw) n() int { return 1 + d.r.Intn(3) }

func (d *filterDraw) neg() bool { return d.r.Intn(3) == 0 }

func (d *filterDraw) prefix(a netip.Addr) netip.Prefix {
	r := d.r
	if a.Is4() {
		bits := []int{0, 8, 16, 24, 29, 30, 31, 32, 32, r.Intn(33)}[r.Intn(10)]
		return netip.PrefixFrom(a, bits)
	}
	bits := []int{0, 32, 64, 96, 112, 116, 120, 125, 126, 127, 128, 128, r.Intn(129)}[r.Intn(13)]
	return netip.PrefixFrom(a, bits)
}

func (d *filterDraw) randomAddr(v6 bool) netip.Addr {
	var b [16]byte
	d.r.Read(b[:])
	if v6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

func (d *filterDraw) addrs(get func(*Flow) netip.Addr) OneOf[netip.Prefix] {
	var c OneOf[netip.Prefix]
	count := d.n()
	if d.r.Intn(10) == 0 {
		count = 100 + d.r.Intn(200)
	}
	for range count {
		a := get(d.flow())
		if d.r.Intn(4) == 0 {
			a = d.randomAddr(d.r.Intn(2) == 0)
		}
		c.Values = append(c.Values, d.prefix(a))
	}
	c.Negate = d.neg()
	return c
}

// tupleField sets field 0 to 8 of f: types, family, protocol, addresses
// and ports.
func (d *filterDraw) tupleField(f *Selector, field int) {
	r := d.r
	switch field {
	case 0:
		for _, t := range []EventType{EventNew, EventUpdate, EventDestroy, EventExpNew, EventExpDestroy} {
			if r.Intn(2) == 0 {
				f.Types.Values = append(f.Types.Values, t)
			}
		}
		f.Types.Negate = d.neg()
	case 1:
		f.Family = []uint8{unix.AF_INET, unix.AF_INET6}[r.Intn(2)]
	case 2:
		for range d.n() {
			f.Proto.Values = append(f.Proto.Values, []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6, unix.IPPROTO_GRE}[r.Intn(6)])
		}
		f.Proto.Negate = d.neg()
	case 3:
		f.OrigSrc = d.addrs(func(f *Flow) netip.Addr { return f.TupleOrig.Src() })
	case 4:
		f.OrigDst = d.addrs(func(f *Flow) netip.Addr { return f.TupleOrig.Dst() })
	case 5:
		f.ReplySrc = d.addrs(func(f *Flow) netip.Addr { return f.TupleReply.Src() })
	case 6:
		f.ReplyDst = d.addrs(func(f *Flow) netip.Addr { return f.TupleReply.Dst() })
	case 7:
		for range d.n() {
			f.OrigSrcPort.Values = append(f.OrigSrcPort.Values, d.flow().TupleOrig.Proto.SrcPort)
		}
		f.OrigSrcPort.Negate = d.neg()
	case 8:
		for range d.n() {
			f.OrigDstPort.Values = append(f.OrigDstPort.Values, []uint16{0, 53, 80, 443, 5060, d.flow().TupleOrig.Proto.DstPort}[r.Intn(6)])
		}
		f.OrigDstPort.Negate = d.neg()
	}
}

// metaField sets field 9 to 11 of f: mark, zone and status.
func (d *filterDraw) metaField(f *Selector, field int) {
	r := d.r
	switch field {
	case 9:
		for range d.n() {
			m := MarkMatch{Mark: filterMarks[r.Intn(len(filterMarks))], Mask: filterMarkMask[r.Intn(len(filterMarkMask))]}
			if r.Intn(2) == 0 {
				m.Mark = d.flow().Mark
			}
			if r.Intn(8) == 0 {
				m.Mask = r.Uint32()
			}
			f.Mark.Values = append(f.Mark.Values, m)
		}
		f.Mark.Negate = d.neg()
	case 10:
		for range d.n() {
			f.Zone.Values = append(f.Zone.Values, uint16(r.Intn(4)))
		}
		f.Zone.Negate = d.neg()
	case 11:
		for range d.n() {
			f.Status.Values = append(f.Status.Values, filterStatus[r.Intn(len(filterStatus))])
		}
		f.Status.Negate = d.neg()
	}
}

// randomUpdates changes the mark of about half of flows and sets status
// bits on some. The kernel refuses to clear confirmed, seen-reply and
// assured, so the status sent keeps them. It returns the update requests.
func randomUpdates(r *rand.Rand, flows []Flow) []Flow {
	var ups []Flow
	for i := range flows {
		f := &flows[i]
		if r.Intn(2) == 0 {
			continue
		}
		var u Flow
		u.SetTupleOrig(f.TupleOrig)
		if f.Zone != 0 {
			u.SetZone(f.Zone)
		}
		if r.Intn(4) != 0 {
			f.SetMark(filterMarks[r.Intn(len(filterMarks))])
			u.SetMark(f.Mark)
		}
		if r.Intn(3) == 0 {
			f.SetStatus(StatusConfirmed | f.Status | []Status{StatusAssured, StatusSeenReply}[r.Intn(2)])
			u.SetStatus(f.Status)
		}
		ups = append(ups, u)
	}
	return ups
}

// TestEventFilterProgramRandom runs the programs of random filters on
// random events, in the test's own interpreter, and compares each verdict
// with Match.
func TestEventFilterProgramRandom(t *testing.T) {
	r := filterRand(t)
	table := randomTable(r, 200)
	var e Expect
	e.SetTuple(NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort("10.1.0.1:0"), netip.MustParseAddrPort("10.2.0.1:21")))
	e.SetTimeout(30)
	types := []EventType{EventNew, EventUpdate, EventDestroy}
	iterations := 3000
	if testing.Short() {
		iterations = 300
	}
	kept := 0
	for range iterations {
		f := randomEventFilter(r, table)
		prog := assemble(t, f)
		for range 10 {
			one := []Flow{table[r.Intn(len(table))]}
			randomUpdates(r, one)
			fl := &one[0]
			if r.Intn(4) == 0 {
				fl.Mark, fl.present = 0, fl.present&^(1<<FlowAttrMark) // the kernel leaves mark 0 out
			}
			msg := eventMsg(types[r.Intn(3)], fl, nil)
			if r.Intn(10) == 0 {
				msg = eventMsg([]EventType{EventExpNew, EventExpDestroy}[r.Intn(2)], nil, &e)
			}
			want := f.MatchEvent(decodeEvent(t, msg))
			checkProgram(t, f, prog, msg, want)
			if want {
				kept++
			}
		}
	}
	t.Logf("%d of %d random events kept", kept, 10*iterations)
}
