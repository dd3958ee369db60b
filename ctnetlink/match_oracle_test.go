package ctnetlink

import (
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// matchTestFlows are the flows of TestMatchTable, written out so that the
// expected result of each row can be worked out by reading them.
func matchTestFlows() map[string]*Flow {
	ap := netip.MustParseAddrPort
	flow := func(proto uint8, orig, reply [2]string) *Flow {
		var f Flow
		f.SetTupleOrig(NewTuple(proto, ap(orig[0]), ap(orig[1])))
		f.SetTupleReply(NewTuple(proto, ap(reply[0]), ap(reply[1])))
		return &f
	}
	fs := map[string]*Flow{}

	// tcp4: 10.1.0.5:40000 -> 10.2.0.1:80, destination NAT to
	// 192.168.0.10:8080; ESTABLISHED, mark 0x1234, assured, seen reply and
	// confirmed, labels 0, 1 and 70, helper ftp, no zone.
	f := flow(unix.IPPROTO_TCP, [2]string{"10.1.0.5:40000", "10.2.0.1:80"}, [2]string{"192.168.0.10:8080", "10.1.0.5:40000"})
	f.ProtoInfo.TCP.SetState(TCPStateEstablished)
	f.SetMark(0x1234)
	f.SetStatus(StatusAssured | StatusSeenReply | StatusConfirmed)
	f.SetLabels([]byte{0x03, 8: 0x40, 15: 0})
	f.SetHelp(helpNamed("ftp"))
	fs["tcp4"] = f

	// tcp6: [2001:db8::1:7]:41000 -> [2001:db8::2:1]:443, TIME_WAIT,
	// confirmed, mark 0, no labels, zone 0.
	f = flow(unix.IPPROTO_TCP, [2]string{"[2001:db8::1:7]:41000", "[2001:db8::2:1]:443"}, [2]string{"[2001:db8::2:1]:443", "[2001:db8::1:7]:41000"})
	f.ProtoInfo.TCP.SetState(TCPStateTimeWait)
	f.SetStatus(StatusConfirmed)
	fs["tcp6"] = f

	// udp6: [2001:db8::1:5]:5353 -> [2001:db8::2:1]:53, zone 3 in both
	// directions (CTA_ZONE), confirmed only, mark 0, labels {4} in a short
	// 4-byte bitmap.
	f = flow(unix.IPPROTO_UDP, [2]string{"[2001:db8::1:5]:5353", "[2001:db8::2:1]:53"}, [2]string{"[2001:db8::2:1]:53", "[2001:db8::1:5]:5353"})
	f.SetZone(3)
	f.SetStatus(StatusConfirmed)
	f.SetLabels([]byte{0x10, 0, 0, 0})
	fs["udp6"] = f

	// sctp4: 10.1.0.9:5000 -> 10.2.0.2:3868, ESTABLISHED, zone 7 in the
	// original direction only (CTA_TUPLE_ZONE in tuple-orig), mark 0x100.
	f = flow(unix.IPPROTO_SCTP, [2]string{"10.1.0.9:5000", "10.2.0.2:3868"}, [2]string{"10.2.0.2:3868", "10.1.0.9:5000"})
	f.ProtoInfo.SCTP.SetState(SCTPStateEstablished)
	f.TupleOrig.SetZone(7)
	f.SetMark(0x100)
	fs["sctp4"] = f

	// icmp4: 10.1.0.6 -> 10.2.0.3 echo request (type 8, code 0, id 77),
	// reply echo reply; zone 5 in the reply direction only.
	f = flow(unix.IPPROTO_ICMP, [2]string{"10.1.0.6:0", "10.2.0.3:0"}, [2]string{"10.2.0.3:0", "10.1.0.6:0"})
	f.TupleOrig.SetICMP(8, 0, 77)
	f.TupleReply.SetICMP(0, 0, 77)
	f.TupleReply.SetZone(5)
	fs["icmp4"] = f

	// icmp6: 2001:db8::1:8 -> 2001:db8::2:4 echo request (type 128, code
	// 0, id 99).
	f = flow(unix.IPPROTO_ICMPV6, [2]string{"[2001:db8::1:8]:0", "[2001:db8::2:4]:0"}, [2]string{"[2001:db8::2:4]:0", "[2001:db8::1:8]:0"})
	f.TupleOrig.SetICMP(128, 0, 99)
	f.TupleReply.SetICMP(129, 0, 99)
	fs["icmp6"] = f

	// dccp4: 10.1.0.4:6000 -> 10.2.0.5:5001 in state OPEN.
	f = flow(unix.IPPROTO_DCCP, [2]string{"10.1.0.4:6000", "10.2.0.5:5001"}, [2]string{"10.2.0.5:5001", "10.1.0.4:6000"})
	f.ProtoInfo.DCCP.SetState(DCCPStateOpen)
	fs["dccp4"] = f
	return fs
}

// matchRow is one row of TestMatchTable: whether selector m selects the
// flow of matchTestFlows named flow.
type matchRow struct {
	name string
	flow string
	m    Selector
	want bool
}

var pfx = netip.MustParsePrefix

// matchRowsTuple test the tuple's fields.
var matchRowsTuple = []matchRow{
	// The zero matcher.
	{"zero matcher selects a v4 flow", "tcp4", Selector{}, true},
	{"zero matcher selects a v6 flow", "icmp6", Selector{}, true},

	// Family.
	{"family v4 selects a v4 flow", "tcp4", Selector{Family: unix.AF_INET}, true},
	{"family v4 leaves a v6 flow", "udp6", Selector{Family: unix.AF_INET}, false},
	{"family v6 selects a v6 flow", "udp6", Selector{Family: unix.AF_INET6}, true},
	{"family v6 leaves a v4 flow", "tcp4", Selector{Family: unix.AF_INET6}, false},

	// Protocol.
	{"proto tcp selects tcp", "tcp4", Selector{Proto: Protocol(unix.IPPROTO_TCP)}, true},
	{"proto tcp selects tcp over v6", "tcp6", Selector{Proto: Protocol(unix.IPPROTO_TCP)}, true},
	{"proto udp leaves tcp", "tcp4", Selector{Proto: Protocol(unix.IPPROTO_UDP)}, false},
	{"proto icmp leaves icmpv6", "icmp6", Selector{Proto: Protocol(unix.IPPROTO_ICMP)}, false},

	// Original direction prefixes.
	{"orig src /16 holds 10.1.0.5", "tcp4", Selector{OrigSrc: Is(pfx("10.1.0.0/16"))}, true},
	{"orig src /24 of another net", "tcp4", Selector{OrigSrc: Is(pfx("10.1.1.0/24"))}, false},
	{"orig src /32 exact", "tcp4", Selector{OrigSrc: Is(pfx("10.1.0.5/32"))}, true},
	{"orig src /31 holds .4 and .5", "tcp4", Selector{OrigSrc: Is(pfx("10.1.0.4/31"))}, true},
	{"orig src /31 holds .6 and .7 only", "tcp4", Selector{OrigSrc: Is(pfx("10.1.0.6/31"))}, false},
	{"orig src /0 v4 selects any v4", "tcp4", Selector{OrigSrc: Is(pfx("0.0.0.0/0"))}, true},
	{"orig src /0 v4 leaves v6", "udp6", Selector{OrigSrc: Is(pfx("0.0.0.0/0"))}, false},
	{"orig src ::/0 leaves v4", "tcp4", Selector{OrigSrc: Is(pfx("::/0"))}, false},
	{"orig dst /32 exact", "tcp4", Selector{OrigDst: Is(pfx("10.2.0.1/32"))}, true},
	{"orig dst is not the NAT target", "tcp4", Selector{OrigDst: Is(pfx("192.168.0.10/32"))}, false},
	{"orig src v6 /112", "udp6", Selector{OrigSrc: Is(pfx("2001:db8::1:0/112"))}, true},
	{"orig src v6 /112 of another net", "udp6", Selector{OrigSrc: Is(pfx("2001:db8::2:0/112"))}, false},
	{"orig src v6 /127 holds ::1:4 and ::1:5", "udp6", Selector{OrigSrc: Is(pfx("2001:db8::1:4/127"))}, true},
	{"orig src v6 /128 other host", "udp6", Selector{OrigSrc: Is(pfx("2001:db8::1:6/128"))}, false},
	{"orig src and dst both hold", "tcp4", Selector{OrigSrc: Is(pfx("10.1.0.0/24")), OrigDst: Is(pfx("10.2.0.0/24"))}, true},
	{"orig src holds, dst does not", "tcp4", Selector{OrigSrc: Is(pfx("10.1.0.0/24")), OrigDst: Is(pfx("10.3.0.0/24"))}, false},

	// Reply direction prefixes: the NAT target is the reply source.
	{"reply src is the NAT target", "tcp4", Selector{ReplySrc: Is(pfx("192.168.0.10/32"))}, true},
	{"reply src is not the orig dst", "tcp4", Selector{ReplySrc: Is(pfx("10.2.0.1/32"))}, false},
	{"reply dst /30 stops below the orig src", "tcp4", Selector{ReplyDst: Is(pfx("10.1.0.0/30"))}, false},
	{"reply dst /29 holds the orig src", "tcp4", Selector{ReplyDst: Is(pfx("10.1.0.0/29"))}, true},
	{"reply dst v6 /128", "udp6", Selector{ReplyDst: Is(pfx("2001:db8::1:5/128"))}, true},
	{"reply src v6 /120 of the server", "udp6", Selector{ReplySrc: Is(pfx("2001:db8::2:0/120"))}, true},

	// Ports in both directions.
	{"orig sport", "tcp4", Selector{OrigSrcPort: Is[uint16](40000)}, true},
	{"orig sport is not the dport", "tcp4", Selector{OrigSrcPort: Is[uint16](80)}, false},
	{"orig dport", "tcp4", Selector{OrigDstPort: Is[uint16](80)}, true},
	{"orig dport is not the NAT port", "tcp4", Selector{OrigDstPort: Is[uint16](8080)}, false},
	{"reply sport is the NAT port", "tcp4", Selector{ReplySrcPort: Is[uint16](8080)}, true},
	{"reply sport is not the orig dport", "tcp4", Selector{ReplySrcPort: Is[uint16](80)}, false},
	{"reply dport is the orig sport", "tcp4", Selector{ReplyDstPort: Is[uint16](40000)}, true},
	{"udp orig dport 53 over v6", "udp6", Selector{Proto: Protocol(unix.IPPROTO_UDP), OrigDstPort: Is[uint16](53)}, true},
	{"sctp orig dport", "sctp4", Selector{Proto: Protocol(unix.IPPROTO_SCTP), OrigDstPort: Is[uint16](3868)}, true},
	{"sctp orig dport other", "sctp4", Selector{Proto: Protocol(unix.IPPROTO_SCTP), OrigDstPort: Is[uint16](3869)}, false},
	{"a port leaves an icmp flow", "icmp4", Selector{OrigDstPort: Is[uint16](80)}, false},
	{"address and port, port differs", "tcp4", Selector{Proto: Protocol(unix.IPPROTO_TCP), OrigDst: Is(pfx("10.2.0.1/32")), OrigDstPort: Is[uint16](81)}, false},

	// ICMP and ICMPv6 fields of the original tuple.
	{"icmp type 8", "icmp4", Selector{Proto: Protocol(unix.IPPROTO_ICMP), ICMPType: Is[uint8](8)}, true},
	{"icmp type 0 is the reply's", "icmp4", Selector{Proto: Protocol(unix.IPPROTO_ICMP), ICMPType: Is[uint8](0)}, false},
	{"icmp code 0 (zero value)", "icmp4", Selector{Proto: Protocol(unix.IPPROTO_ICMP), ICMPCode: Is[uint8](0)}, true},
	{"icmp code 1", "icmp4", Selector{Proto: Protocol(unix.IPPROTO_ICMP), ICMPCode: Is[uint8](1)}, false},
	{"icmp id 77", "icmp4", Selector{ICMPID: Is[uint16](77)}, true},
	{"icmp id 78", "icmp4", Selector{ICMPID: Is[uint16](78)}, false},
	{"icmp type, code and id", "icmp4", Selector{ICMPType: Is[uint8](8), ICMPCode: Is[uint8](0), ICMPID: Is[uint16](77)}, true},
	{"icmp type and code hold, id does not", "icmp4", Selector{ICMPType: Is[uint8](8), ICMPCode: Is[uint8](0), ICMPID: Is[uint16](7)}, false},
	{"icmpv6 type 128 in the v6 attributes", "icmp6", Selector{Proto: Protocol(unix.IPPROTO_ICMPV6), ICMPType: Is[uint8](128)}, true},
	{"icmpv6 type 8 is a v4 type", "icmp6", Selector{ICMPType: Is[uint8](8)}, false},
	{"icmpv6 id 99", "icmp6", Selector{ICMPID: Is[uint16](99)}, true},
	{"icmpv6 id 77 is the v4 flow's", "icmp6", Selector{ICMPID: Is[uint16](77)}, false},
	{"icmp type 8 with proto icmpv6", "icmp4", Selector{Proto: Protocol(unix.IPPROTO_ICMPV6), ICMPType: Is[uint8](8)}, false},
	{"icmp code 0 leaves a tcp flow", "tcp4", Selector{ICMPCode: Is[uint8](0)}, false},
	{"icmp type 0 leaves a udp flow", "udp6", Selector{ICMPType: Is[uint8](0)}, false},
	{"icmp id 0 leaves an sctp flow", "sctp4", Selector{ICMPID: Is[uint16](0)}, false},
}

// matchRowsMeta test mark, zones and status.
var matchRowsMeta = []matchRow{
	// Mark and mask.
	{"mark alone compares all bits", "tcp4", Selector{Mark: Is(MarkMatch{Mark: 0x1234})}, true},
	{"mark alone, low byte only, fails", "tcp4", Selector{Mark: Is(MarkMatch{Mark: 0x34})}, false},
	{"mark low byte under mask 0xff", "tcp4", Selector{Mark: Is(MarkMatch{0x34, 0xff})}, true},
	{"mark high byte under mask 0xff00", "tcp4", Selector{Mark: Is(MarkMatch{0x1200, 0xff00})}, true},
	{"mark under the other byte's mask", "tcp4", Selector{Mark: Is(MarkMatch{0x34, 0xff00})}, false},
	{"mark zero under mask 0xffff0000", "tcp4", Selector{Mark: Is(MarkMatch{0, 0xffff0000})}, true},
	{"mark zero under mask 0xff00 fails", "tcp4", Selector{Mark: Is(MarkMatch{0, 0xff00})}, false},
	{"mark 0x34 under the inverted mask", "tcp4", Selector{Mark: Is(MarkMatch{0x34, 0xffffff00})}, false},
	{"mark value bits outside its mask are ignored", "tcp4", Selector{Mark: Is(MarkMatch{0x1234, 0xff})}, true},
	{"mark value bits outside its mask, low byte differs", "tcp4", Selector{Mark: Is(MarkMatch{0x1235, 0xff})}, false},
	{"mark zero (zero mask: all bits) on an unmarked flow", "udp6", Selector{Mark: Is(MarkMatch{})}, true},
	{"mark zero (zero mask: all bits) on a marked flow", "tcp4", Selector{Mark: Is(MarkMatch{})}, false},
	{"mark none of 0x1234, 5", "tcp4", Selector{Mark: NoneOf(MarkMatch{Mark: 0x1234}, MarkMatch{Mark: 5})}, false},
	{"mark one of 5, 0x1234", "tcp4", Selector{Mark: AnyOf(MarkMatch{Mark: 5}, MarkMatch{Mark: 0x1234})}, true},
	{"mark zero all bits on an unmarked flow", "udp6", Selector{Mark: Is(MarkMatch{0, 0xffffffff})}, true},
	{"mark 1/1 on an unmarked flow", "udp6", Selector{Mark: Is(MarkMatch{1, 1})}, false},
	{"mark 0x100/0xf00", "sctp4", Selector{Mark: Is(MarkMatch{0x100, 0xf00})}, true},

	// Zones: none, both directions, original only, reply only.
	{"zone 0 selects a flow without zone", "tcp4", Selector{Zone: Is[uint16](0)}, true},
	{"zone 3 leaves a flow without zone", "tcp4", Selector{Zone: Is[uint16](3)}, false},
	{"orig zone 0 without zone", "tcp4", Selector{OrigZone: Is[uint16](0)}, true},
	{"reply zone 0 without zone", "tcp4", Selector{ReplyZone: Is[uint16](0)}, true},
	{"zone 3 of both directions", "udp6", Selector{Zone: Is[uint16](3)}, true},
	{"zone 0 leaves zone 3", "udp6", Selector{Zone: Is[uint16](0)}, false},
	{"orig zone of a both-direction zone", "udp6", Selector{OrigZone: Is[uint16](3)}, true},
	{"reply zone of a both-direction zone", "udp6", Selector{ReplyZone: Is[uint16](3)}, true},
	{"orig zone 0 leaves a both-direction zone", "udp6", Selector{OrigZone: Is[uint16](0)}, false},
	{"zone 7 applying to orig only", "sctp4", Selector{Zone: Is[uint16](7)}, true},
	{"zone 0 leaves an orig-only zone 7", "sctp4", Selector{Zone: Is[uint16](0)}, false},
	{"orig zone 7 of an orig-only zone", "sctp4", Selector{OrigZone: Is[uint16](7)}, true},
	{"reply zone 0 of an orig-only zone", "sctp4", Selector{ReplyZone: Is[uint16](0)}, true},
	{"reply zone 7 of an orig-only zone", "sctp4", Selector{ReplyZone: Is[uint16](7)}, false},
	{"zone 5 applying to reply only", "icmp4", Selector{Zone: Is[uint16](5)}, true},
	{"reply zone 5 of a reply-only zone", "icmp4", Selector{ReplyZone: Is[uint16](5)}, true},
	{"orig zone 0 of a reply-only zone", "icmp4", Selector{OrigZone: Is[uint16](0)}, true},
	{"orig zone 5 of a reply-only zone", "icmp4", Selector{OrigZone: Is[uint16](5)}, false},

	// Status bits.
	{"status assured", "tcp4", Selector{Status: Is(StatusMatch{StatusAssured, StatusAssured})}, true},
	{"status assured on an unassured flow", "udp6", Selector{Status: Is(StatusMatch{StatusAssured, StatusAssured})}, false},
	{"status not assured (zero under mask)", "udp6", Selector{Status: Is(StatusMatch{0, StatusAssured})}, true},
	{"status not assured on an assured flow", "tcp4", Selector{Status: Is(StatusMatch{0, StatusAssured})}, false},
	{"status two bits both set", "tcp4", Selector{Status: Is(StatusMatch{StatusAssured | StatusSeenReply, StatusAssured | StatusSeenReply})}, true},
	{"status two bits, one set", "tcp6", Selector{Status: Is(StatusMatch{StatusConfirmed | StatusSeenReply, StatusConfirmed | StatusSeenReply})}, false},
	{"status one set, one clear", "tcp6", Selector{Status: Is(StatusMatch{StatusConfirmed, StatusConfirmed | StatusSeenReply})}, true},
	{"status value bit outside its mask", "tcp4", Selector{Status: Is(StatusMatch{StatusAssured, StatusSeenReply})}, false},
	{"status without mask needs its bits", "udp6", Selector{Status: Is(StatusMatch{Status: StatusAssured})}, false},
	{"status without mask, bits set", "tcp4", Selector{Status: Is(StatusMatch{Status: StatusAssured | StatusSeenReply})}, true},
	{"zero status match selects every flow", "udp6", Selector{Status: Is(StatusMatch{})}, true},
	{"status none of assured", "udp6", Selector{Status: NoneOf(StatusMatch{Status: StatusAssured})}, true},
}

// matchRowsRest test labels, states, helper, AND and Func.
var matchRowsRest = []matchRow{
	// Labels: all-of and any-of.
	{"labels all {0,1} on {0,1,70}", "tcp4", Selector{LabelsAll: []byte{0x03}}, true},
	{"labels all {0,1,2} on {0,1,70}", "tcp4", Selector{LabelsAll: []byte{0x07}}, false},
	{"labels all {70}", "tcp4", Selector{LabelsAll: []byte{8: 0x40}}, true},
	{"labels all {0,70}", "tcp4", Selector{LabelsAll: []byte{0x01, 8: 0x40}}, true},
	{"labels all {0,71}", "tcp4", Selector{LabelsAll: []byte{0x01, 8: 0x80}}, false},
	{"labels all {2} alone", "tcp4", Selector{LabelsAll: []byte{0x04}}, false},
	{"labels all with no bit set selects", "tcp6", Selector{LabelsAll: []byte{0, 0, 0, 0}}, true},
	{"labels all {0} on a flow without labels", "tcp6", Selector{LabelsAll: []byte{0x01}}, false},
	{"labels all {4} on a short bitmap", "udp6", Selector{LabelsAll: []byte{0x10}}, true},
	{"labels all {4,100} past a short bitmap", "udp6", Selector{LabelsAll: []byte{0x10, 12: 0x10}}, false},
	{"labels any {2} on {0,1,70}", "tcp4", Selector{LabelsAny: []byte{0x04}}, false},
	{"labels any {1,2} on {0,1,70}", "tcp4", Selector{LabelsAny: []byte{0x06}}, true},
	{"labels any {127} on {0,1,70}", "tcp4", Selector{LabelsAny: []byte{15: 0x80}}, false},
	{"labels any {70,127}", "tcp4", Selector{LabelsAny: []byte{8: 0x40, 15: 0x80}}, true},
	{"labels any on a flow without labels", "tcp6", Selector{LabelsAny: []byte{0xff}}, false},
	{"labels any {100} past a short bitmap", "udp6", Selector{LabelsAny: []byte{12: 0x10}}, false},
	{"labels all {0} and any {2,70}", "tcp4", Selector{LabelsAll: []byte{0x01}, LabelsAny: []byte{0x04, 8: 0x40}}, true},
	{"labels all {0} and any {2}", "tcp4", Selector{LabelsAll: []byte{0x01}, LabelsAny: []byte{0x04}}, false},
	{"labels all {0,2} and any {1}", "tcp4", Selector{LabelsAll: []byte{0x05}, LabelsAny: []byte{0x02}}, false},

	// TCP states: the flow's state anywhere in the list.
	{"tcp state alone", "tcp4", Selector{TCPStates: AnyOf(TCPStateEstablished)}, true},
	{"tcp state second of two", "tcp4", Selector{TCPStates: AnyOf(TCPStateTimeWait, TCPStateEstablished)}, true},
	{"tcp state first of two", "tcp4", Selector{TCPStates: AnyOf(TCPStateEstablished, TCPStateTimeWait)}, true},
	{"tcp state third of three", "tcp6", Selector{TCPStates: AnyOf(TCPStateEstablished, TCPStateFinWait, TCPStateTimeWait)}, true},
	{"tcp state in none of two", "tcp4", Selector{TCPStates: AnyOf(TCPStateSynSent, TCPStateFinWait)}, false},
	{"tcp state on a udp flow", "udp6", Selector{TCPStates: AnyOf(TCPStateNone, TCPStateEstablished)}, false},
	{"tcp state NONE on an sctp flow", "sctp4", Selector{TCPStates: AnyOf(TCPStateNone)}, false},

	// SCTP and DCCP states.
	{"sctp state alone", "sctp4", Selector{SCTPStates: AnyOf(SCTPStateEstablished)}, true},
	{"sctp state second of two", "sctp4", Selector{SCTPStates: AnyOf(SCTPStateCookieWait, SCTPStateEstablished)}, true},
	{"sctp state in none", "sctp4", Selector{SCTPStates: AnyOf(SCTPStateClosed, SCTPStateShutdownSent)}, false},
	{"sctp state on a tcp flow", "tcp4", Selector{SCTPStates: AnyOf(SCTPStateNone, SCTPStateEstablished)}, false},
	{"dccp state second of two", "dccp4", Selector{DCCPStates: AnyOf(DCCPStateRequest, DCCPStateOpen)}, true},
	{"dccp state in none", "dccp4", Selector{DCCPStates: AnyOf(DCCPStateRequest)}, false},
	{"dccp state on a tcp flow", "tcp4", Selector{DCCPStates: AnyOf(DCCPStateNone)}, false},

	// Helper.
	{"helper ftp", "tcp4", Selector{Helper: "ftp"}, true},
	{"helper sip on an ftp flow", "tcp4", Selector{Helper: "sip"}, false},
	{"helper on a flow without one", "udp6", Selector{Helper: "ftp"}, false},

	// Fields combine with AND.
	{"every field of tcp4", "tcp4", Selector{Family: unix.AF_INET, Proto: Protocol(unix.IPPROTO_TCP), OrigSrc: Is(pfx("10.1.0.0/24")), OrigDst: Is(pfx("10.2.0.1/32")), OrigSrcPort: Is[uint16](40000), OrigDstPort: Is[uint16](80), ReplySrc: Is(pfx("192.168.0.10/32")), ReplyDst: Is(pfx("10.1.0.5/32")), ReplySrcPort: Is[uint16](8080), ReplyDstPort: Is[uint16](40000), Mark: Is(MarkMatch{0x34, 0xff}), Zone: Is[uint16](0), OrigZone: Is[uint16](0), ReplyZone: Is[uint16](0), LabelsAll: []byte{0x01}, LabelsAny: []byte{8: 0x40}, Status: Is(StatusMatch{StatusAssured, StatusAssured}), TCPStates: AnyOf(TCPStateSynSent, TCPStateEstablished), Helper: "ftp"}, true},
	{"every field of tcp4 but the family", "tcp4", Selector{Family: unix.AF_INET6, Proto: Protocol(unix.IPPROTO_TCP), OrigDst: Is(pfx("10.2.0.1/32")), OrigDstPort: Is[uint16](80), Mark: Is(MarkMatch{0x34, 0xff}), TCPStates: AnyOf(TCPStateEstablished), Helper: "ftp"}, false},
	{"every field of tcp4 but the reply port", "tcp4", Selector{Proto: Protocol(unix.IPPROTO_TCP), OrigDst: Is(pfx("10.2.0.1/32")), OrigDstPort: Is[uint16](80), ReplySrcPort: Is[uint16](80), TCPStates: AnyOf(TCPStateEstablished)}, false},
	{"zone and mark of sctp4", "sctp4", Selector{Zone: Is[uint16](7), Mark: Is(MarkMatch{0x100, 0xffff}), Proto: Protocol(unix.IPPROTO_SCTP)}, true},

	// Func is ANDed with the fields.
	{"func true with fields", "tcp4", Selector{Proto: Protocol(unix.IPPROTO_TCP), Func: func(*Flow) bool { return true }}, true},
	{"func false with fields", "tcp4", Selector{Proto: Protocol(unix.IPPROTO_TCP), Func: func(*Flow) bool { return false }}, false},
	{"func true, a field fails", "tcp4", Selector{Proto: Protocol(unix.IPPROTO_UDP), Func: func(*Flow) bool { return true }}, false},
	{"func reads the flow", "tcp6", Selector{Func: func(f *Flow) bool { return f.TupleOrig.Proto.DstPort == 443 }}, true},
}

// TestMatchTable checks Selector.Match, and the oracle the cleanup tests
// use, against results worked out by hand from matchTestFlows.
func TestMatchTable(t *testing.T) {
	tests := slices.Concat(matchRowsTuple, matchRowsMeta, matchRowsRest)
	flows := matchTestFlows()
	for _, tt := range tests {
		f, ok := flows[tt.flow]
		if !ok {
			t.Fatalf("%s: no flow %q", tt.name, tt.flow)
		}
		if got := tt.m.Match(f); got != tt.want {
			t.Errorf("%s: Match on %s = %v, want %v", tt.name, tt.flow, got, tt.want)
		}
		if got := oracleSelects(&tt.m, f); got != tt.want {
			t.Errorf("%s: oracle on %s = %v, want %v", tt.name, tt.flow, got, tt.want)
		}
	}
}
