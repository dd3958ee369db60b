package mirror

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/ctspec/ctspec/ctnetlink"
)

// flowState is what the mirror tests compare of a flow: every value an
// Entry keeps except those the kernel changes without events (timeout,
// counters).
func flowState(f *ctnetlink.Flow) string {
	tuple := func(t *ctnetlink.Tuple) string {
		p := &t.Proto
		return fmt.Sprintf("%d %v:%d>%v:%d icmp=%d/%d/%d icmp6=%d/%d/%d", p.Num, t.Src(), p.SrcPort, t.Dst(), p.DstPort,
			p.ICMPType, p.ICMPCode, p.ICMPID, p.ICMPv6Type, p.ICMPv6Code, p.ICMPv6ID)
	}
	return fmt.Sprintf("id=%d %s | %s zone=%d mark=%d status=%v tcp=%v sctp=%v labels=%x",
		f.ID, tuple(&f.TupleOrig), tuple(&f.TupleReply), f.Zone, f.Mark, f.Status,
		f.ProtoInfo.TCP.State, f.ProtoInfo.SCTP.State, f.Labels)
}

func entryText(e *Entry) string {
	f := e.Flow()
	return flowState(&f)
}

func TestMirrorEntryZero(t *testing.T) {
	var e Entry
	f := e.Flow()
	if b := f.AppendAttributes(nil); len(b) == 0 {
		t.Error("the zero Entry's ctnetlink.Flow encodes to nothing")
	}
	if _, ok := e.Timeout(); ok {
		t.Error("the zero Entry has a timeout")
	}
	if e.Key() != (ctnetlink.EntryKey{}) {
		t.Error("the zero Entry has a key")
	}
}

func TestMirrorEntrySize(t *testing.T) {
	if got := unsafe.Sizeof(Entry{}); got != 152 {
		t.Errorf("Entry is %d bytes, the docs say 152", got)
	}
	if got := unsafe.Sizeof(slot{}); got != 168 {
		t.Errorf("mirrorSlot is %d bytes, the docs say 152+16", got)
	}
}

// TestMirrorEntryRoundTrip converts flows to entries and back: every value
// an Entry keeps survives.
func TestMirrorEntryRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	table := randomTable(r, 500)
	for i := range table {
		f := &table[i]
		f.SetID(r.Uint32())
		f.SetStatus(ctnetlink.StatusConfirmed | ctnetlink.StatusAssured)
		if i%2 == 0 {
			f.CountersOrig.SetPackets(uint64(i))
			f.CountersOrig.SetBytes(uint64(i) * 100)
			f.CountersReply.SetPackets(uint64(i) + 1)
			f.CountersReply.SetBytes(uint64(i)*100 + 1)
			f.Timestamp.SetStart(uint64(1700000000000000000 + i))
		}
	}
	for i := range table {
		f := &table[i]
		var e Entry
		e.setFlow(f)
		g := e.Flow()
		if diff := cmp.Diff(flowState(f), flowState(&g)); diff != "" {
			t.Fatalf("flow %d (-flow +entry):\n%s", i, diff)
		}
		var e2 Entry
		e2.setFlow(&g)
		if e2 != e {
			t.Fatalf("flow %d: entry changed on a round trip:\n%+v\n%+v", i, e, e2)
		}
		if to, ok := e.Timeout(); !ok || to != f.Timeout {
			t.Errorf("flow %d: timeout %d %v, want %d", i, to, ok, f.Timeout)
		}
		o, rep, ok := e.Counters()
		if ok != f.Has(ctnetlink.FlowAttrCountersOrig) || o.Packets != f.CountersOrig.Packets || rep.Bytes != f.CountersReply.Bytes {
			t.Errorf("flow %d: counters %+v %+v %v", i, o, rep, ok)
		}
		if st, ok := e.Start(); ok != f.Timestamp.Has(ctnetlink.TimestampAttrStart) || (ok && uint64(st.UnixNano()) != f.Timestamp.Start) {
			t.Errorf("flow %d: start %v %v", i, st, ok)
		}
		orig := e.Orig()
		if !(&ctnetlink.Selector{OrigSrc: ctnetlink.HostIs(f.TupleOrig.Src()), OrigDst: ctnetlink.HostIs(f.TupleOrig.Dst()), Proto: ctnetlink.Is[uint8](e.Proto())}).Match(&g) ||
			orig.Src() != f.TupleOrig.Src() || e.Family() != f.Family() {
			t.Errorf("flow %d: tuple %v", i, orig)
		}
	}
}

func TestMirrorChangeKindString(t *testing.T) {
	got := strings.Join([]string{ChangeAdded.String(), ChangeUpdated.String(), ChangeRemoved.String(), ChangeKind(9).String()}, ",")
	if want := "added,updated,removed,ChangeKind(9)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
