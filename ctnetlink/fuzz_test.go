package ctnetlink

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/fuzzattr"
	"github.com/ctspec/ctspec/internal/golden"
	"github.com/ctspec/ctspec/internal/nlattr"
)

// goldenDir holds the messages captured from a real kernel.
var goldenDir = filepath.Join("..", "testdata", "messages")

// topSet returns the schema index of the attribute set at the top of a
// message of type t, or -1.
func topSet(t uint16) int {
	switch MsgType(t) {
	case MsgNew, MsgGet, MsgDelete, MsgGetDying, MsgGetUnconfirmed:
		return schemaFlow
	case MsgGetCtrZero:
		// Flows come back as MsgNew; this type is what the kernel answers
		// EXP_GET_STATS_CPU with.
		return schemaExpectStatsCPU
	case MsgGetStatsCPU:
		return schemaStatsCPU
	case MsgGetStats:
		return schemaStatsGlobal
	case MsgExpNew, MsgExpGet, MsgExpDelete:
		return schemaExpect
	case MsgExpGetStatsCPU:
		return schemaExpectStatsCPU
	}
	return -1
}

// collectPayloads appends to out every payload of set target found in b,
// which holds the attributes of set cur, looking into every attribute the
// schema says is a nest.
func collectPayloads(b []byte, cur, target int, out *[][]byte) {
	if cur == target {
		*out = append(*out, b)
	}
	d := nlattr.NewDecoder(b)
	for d.Next() {
		attrs := schema[cur].attrs
		if int(d.Type()) < len(attrs) && attrs[d.Type()].nested >= 0 {
			collectPayloads(d.Bytes(), attrs[d.Type()].nested, target, out)
		}
	}
}

// goldenMessages loads the captured messages; tb may be nil.
func goldenMessages(tb testing.TB) []*golden.Message {
	msgs, err := golden.ParseDir(goldenDir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		tb.Fatal(err)
	}
	return msgs
}

// seedMessage is a message the fuzz seeds are taken from: the attributes of
// the set top, and whether the kernel sent them, which makes their encoding
// canonical.
type seedMessage struct {
	name   string
	top    int
	attrs  []byte
	kernel bool
}

// seedMessages returns the golden messages, then the requests.
func seedMessages(tb testing.TB) []seedMessage {
	var out []seedMessage
	for _, m := range goldenMessages(tb) {
		if top := topSet(m.Type); top >= 0 && len(m.Payload) >= 4 {
			out = append(out, seedMessage{name: m.Name, top: top, attrs: m.Payload[4:], kernel: true})
		}
	}
	return append(out, requestMessages()...)
}

// requestMessages are requests encoded by this package, for the sets that
// the kernel sends rarely or never in a dump and no golden message holds:
// NAT setup, sequence adjustment, security contexts, dump filters, DCCP
// state and expectation NAT.
func requestMessages() []seedMessage {
	addr := netip.MustParseAddr
	var create Flow
	create.TupleOrig = NewTuple(unix.IPPROTO_DCCP, netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("198.51.100.7:5001"))
	create.TupleReply = NewTuple(unix.IPPROTO_DCCP, netip.MustParseAddrPort("198.51.100.7:5001"), netip.MustParseAddrPort("203.0.113.9:40000"))
	create.SetTimeout(120)
	create.ProtoInfo.DCCP.SetState(DCCPStateOpen)
	create.ProtoInfo.DCCP.SetRole(DCCPRoleClient)
	create.ProtoInfo.DCCP.SetHandshakeSeq(0x0102030405)
	create.SetHelp(helpNamed("ftp"))
	snat := &NAT{V4MinIP: addr("203.0.113.9"), V4MaxIP: addr("203.0.113.10")}
	snat.Proto.SetPortMin(40000)
	snat.Proto.SetPortMax(40100)
	create.SetNATSrc(snat)
	create.SetNATDst(&NAT{V6MinIP: addr("2001:db8::1"), V6MaxIP: addr("2001:db8::2")})
	create.SetSeqAdjOrig(seqAdj(1000, 0, 12))
	create.SetSeqAdjReply(seqAdj(2000, 12, 24))
	var secctx SecCtx
	secctx.SetSecCtxName("system_u:object_r:unlabeled_t:s0")
	create.SetSecCtx(&secctx)

	port := uint16(22)
	_, dump := (&Selector{OrigSrc: HostIs(addr("192.0.2.1")), Proto: Protocol(unix.IPPROTO_TCP), OrigDstPort: Is(port)}).kernelRequest()

	var exp Expect
	exp.Master = NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort("192.0.2.1:40102"), netip.MustParseAddrPort("198.51.100.7:21"))
	exp.Tuple = NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort("192.0.2.1:0"), netip.MustParseAddrPort("198.51.100.7:50000"))
	exp.Mask = NewExpectMask(unix.IPPROTO_TCP, addr("255.255.255.255"), 0)
	exp.SetHelpName("ftp")
	exp.NAT.SetDir(DirectionReply)
	exp.NAT.Tuple = NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort("203.0.113.9:0"), netip.MustParseAddrPort("198.51.100.7:50000"))

	// No set nests nat-seq-attrs, the kernel's name for seqadj-attrs before
	// Linux 3.12; it is seeded on its own.
	var natSeq NATSeq
	natSeq.SetCorrectionPos(1000)
	natSeq.SetOffsetAfter(12)

	return []seedMessage{
		{name: "create dccp with helper, nat, seqadj and secctx", top: schemaFlow, attrs: create.AppendAttributes(nil)},
		{name: "dump with filter", top: schemaFlow, attrs: dump.AppendAttributes(nil)},
		{name: "create expectation with nat", top: schemaExpect, attrs: exp.AppendAttributes(nil)},
		{name: "nat-seq", top: schemaNATSeq, attrs: natSeq.AppendAttributes(nil)},
	}
}

// fuzzSeeds returns every payload of set found in the golden messages and
// the requests; a payload from a golden message is canonical.
func fuzzSeeds(tb testing.TB, set int) []fuzzattr.Seed {
	var seeds []fuzzattr.Seed
	for _, m := range seedMessages(tb) {
		var found [][]byte
		collectPayloads(m.attrs, m.top, set, &found)
		for _, b := range found {
			seeds = append(seeds, fuzzattr.Seed{Name: m.name, Data: b, Canonical: m.kernel})
		}
	}
	return seeds
}
