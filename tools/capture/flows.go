package main

import (
	"net/netip"
	"strings"
)

// A flow is one conntrack entry the tool sets up and then looks for in the
// kernel's dump by its original tuple. Every flow has its own addresses, so
// the tuple alone identifies it.
type flow struct {
	name string // golden file name
	desc string // first line of the golden file
	key  flowKey
	// setup lists what ran before conntrack -I, or describes the traffic
	// that made the entry.
	setup []string
	// conntrack holds the arguments of the conntrack -I command that
	// creates the entry; nil for flows made by traffic.
	conntrack []string
	// labels, when set, are written with a netlink update after creation.
	labels []int
	// optional flows may be unsupported by the kernel; they are reported
	// instead of failing the capture.
	optional bool
	// note is written to the golden file's note comment.
	note string
}

// setupLines returns the commands that made the entry, for the setup comment.
func (f *flow) setupLines() []string {
	s := append([]string{sysctlSetup()}, f.setup...)
	if f.conntrack != nil {
		s = append(s, "conntrack "+strings.Join(f.conntrack, " "))
	}
	if f.labels != nil {
		s = append(s, labelsSetup(f))
	}
	return s
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func key(proto uint8, src, dst string, sport, dport uint16) flowKey {
	return flowKey{proto: proto, src: addr(src), dst: addr(dst), sport: sport, dport: dport}
}

// Protocol numbers.
const (
	protoICMP    = 1
	protoTCP     = 6
	protoUDP     = 17
	protoDCCP    = 33
	protoGRE     = 47
	protoICMPv6  = 58
	protoSCTP    = 132
	protoUDPLite = 136
	// protoExperimental is reserved for experimentation (RFC 3692); no
	// conntrack tracker knows it, so the kernel uses its generic one.
	protoExperimental = 253
)

// cliFlows are the entries made with conntrack -I. Addresses come from the
// documentation ranges 192.0.2.0/24, 198.51.100.0/24 and 2001:db8::/32.
var cliFlows = []*flow{
	{
		name:      "tcp4-established",
		desc:      "TCP over IPv4, ESTABLISHED, SEEN_REPLY and ASSURED",
		key:       key(protoTCP, "192.0.2.1", "198.51.100.1", 40001, 80),
		conntrack: []string{"-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "198.51.100.1", "--sport", "40001", "--dport", "80", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "600"},
	},
	{
		name:      "tcp4-syn-sent",
		desc:      "TCP over IPv4, SYN_SENT, unreplied",
		key:       key(protoTCP, "192.0.2.2", "198.51.100.2", 40002, 80),
		conntrack: []string{"-I", "-p", "tcp", "-s", "192.0.2.2", "-d", "198.51.100.2", "--sport", "40002", "--dport", "80", "--state", "SYN_SENT", "-t", "120"},
	},
	{
		name:      "tcp6-established",
		desc:      "TCP over IPv6, ESTABLISHED, SEEN_REPLY and ASSURED",
		key:       key(protoTCP, "2001:db8::1", "2001:db8:1::1", 40001, 443),
		conntrack: []string{"-I", "-p", "tcp", "-s", "2001:db8::1", "-d", "2001:db8:1::1", "--sport", "40001", "--dport", "443", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "600"},
	},
	{
		name:      "udp4",
		desc:      "UDP over IPv4, unreplied",
		key:       key(protoUDP, "192.0.2.3", "198.51.100.3", 40003, 53),
		conntrack: []string{"-I", "-p", "udp", "-s", "192.0.2.3", "-d", "198.51.100.3", "--sport", "40003", "--dport", "53", "-t", "30"},
	},
	{
		name:      "udp6",
		desc:      "UDP over IPv6, unreplied",
		key:       key(protoUDP, "2001:db8::3", "2001:db8:1::3", 40003, 53),
		conntrack: []string{"-I", "-p", "udp", "-s", "2001:db8::3", "-d", "2001:db8:1::3", "--sport", "40003", "--dport", "53", "-t", "30"},
	},
	{
		name:      "udplite4",
		desc:      "UDP-Lite over IPv4",
		key:       key(protoUDPLite, "192.0.2.4", "198.51.100.4", 40004, 5004),
		conntrack: []string{"-I", "-p", "udplite", "-s", "192.0.2.4", "-d", "198.51.100.4", "--sport", "40004", "--dport", "5004", "-t", "30"},
		optional:  true,
	},
	{
		name:      "icmp4",
		desc:      "ICMP echo request over IPv4 (type 8, code 0, id 0x1234)",
		key:       key(protoICMP, "192.0.2.5", "198.51.100.5", 0, 0),
		conntrack: []string{"-I", "-p", "icmp", "-s", "192.0.2.5", "-d", "198.51.100.5", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "4660", "-t", "30"},
	},
	{
		name:      "icmp6",
		desc:      "ICMPv6 echo request (type 128, code 0, id 0x1234)",
		key:       key(protoICMPv6, "2001:db8::5", "2001:db8:1::5", 0, 0),
		conntrack: []string{"-I", "-p", "icmpv6", "-s", "2001:db8::5", "-d", "2001:db8:1::5", "--icmpv6-type", "128", "--icmpv6-code", "0", "--icmpv6-id", "4660", "-t", "30"},
	},
	{
		name:      "sctp4",
		desc:      "SCTP over IPv4, ESTABLISHED, with verification tags 0x11111111 and 0x22222222",
		key:       key(protoSCTP, "192.0.2.6", "198.51.100.6", 40006, 5006),
		conntrack: []string{"-I", "-p", "sctp", "-s", "192.0.2.6", "-d", "198.51.100.6", "--sport", "40006", "--dport", "5006", "--state", "ESTABLISHED", "--orig-vtag", "286331153", "--reply-vtag", "572662306", "-t", "600"},
	},
	{
		name:      "sctp6",
		desc:      "SCTP over IPv6, ESTABLISHED, with verification tags 0x11111111 and 0x22222222",
		key:       key(protoSCTP, "2001:db8::6", "2001:db8:1::6", 40006, 5006),
		conntrack: []string{"-I", "-p", "sctp", "-s", "2001:db8::6", "-d", "2001:db8:1::6", "--sport", "40006", "--dport", "5006", "--state", "ESTABLISHED", "--orig-vtag", "286331153", "--reply-vtag", "572662306", "-t", "600"},
	},
	{
		name:      "dccp4",
		desc:      "DCCP over IPv4, OPEN, client role",
		key:       key(protoDCCP, "192.0.2.7", "198.51.100.7", 40007, 5007),
		conntrack: []string{"-I", "-p", "dccp", "-s", "192.0.2.7", "-d", "198.51.100.7", "--sport", "40007", "--dport", "5007", "--state", "OPEN", "--role", "client", "-t", "600"},
		optional:  true,
	},
	{
		name:      "gre4",
		desc:      "GRE over IPv4 with keys 0x1234 and 0x5678",
		key:       key(protoGRE, "192.0.2.8", "198.51.100.8", 0x1234, 0x5678),
		conntrack: []string{"-I", "-p", "gre", "-s", "192.0.2.8", "-d", "198.51.100.8", "--srckey", "0x1234", "--dstkey", "0x5678", "-t", "600"},
		note:      "the kernel's GRE tracker stores the keys in CTA_PROTO_SRC_PORT and CTA_PROTO_DST_PORT",
	},
	{
		name:      "generic4",
		desc:      "an L4 protocol without a tracker (253, RFC 3692 experimentation) over IPv4",
		key:       key(protoExperimental, "192.0.2.9", "198.51.100.9", 0, 0),
		conntrack: []string{"-I", "-p", "253", "-s", "192.0.2.9", "-d", "198.51.100.9", "-t", "600"},
	},
	{
		name:      "nat-snat4",
		desc:      "TCP over IPv4 with source NAT to 198.51.100.110:50010",
		key:       key(protoTCP, "192.0.2.10", "198.51.100.10", 40010, 80),
		conntrack: []string{"-I", "-p", "tcp", "-s", "192.0.2.10", "-d", "198.51.100.10", "--sport", "40010", "--dport", "80", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "--src-nat", "198.51.100.110:50010", "-t", "600"},
	},
	{
		name:      "nat-dnat4",
		desc:      "TCP over IPv4 with destination NAT to 192.0.2.111:8080",
		key:       key(protoTCP, "192.0.2.11", "198.51.100.11", 40011, 80),
		conntrack: []string{"-I", "-p", "tcp", "-s", "192.0.2.11", "-d", "198.51.100.11", "--sport", "40011", "--dport", "80", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "--dst-nat", "192.0.2.111:8080", "-t", "600"},
	},
	{
		name:      "nat-dnat6",
		desc:      "TCP over IPv6 with destination NAT to [2001:db8:2::11]:8080",
		key:       key(protoTCP, "2001:db8::11", "2001:db8:1::11", 40011, 80),
		conntrack: []string{"-I", "-p", "tcp", "-s", "2001:db8::11", "-d", "2001:db8:1::11", "--sport", "40011", "--dport", "80", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "--dst-nat", "[2001:db8:2::11]:8080", "-t", "600"},
	},
	{
		name:      "mark-zone4",
		desc:      "UDP over IPv4 with mark 0x2a in zone 7",
		key:       key(protoUDP, "192.0.2.12", "198.51.100.12", 40012, 53),
		conntrack: []string{"-I", "-p", "udp", "-s", "192.0.2.12", "-d", "198.51.100.12", "--sport", "40012", "--dport", "53", "-m", "0x2a", "-w", "7", "-t", "60"},
	},
	{
		name:      "labels4",
		desc:      "TCP over IPv4 with conntrack labels 1, 42 and 127",
		key:       key(protoTCP, "192.0.2.13", "198.51.100.13", 40013, 80),
		conntrack: []string{"-I", "-p", "tcp", "-s", "192.0.2.13", "-d", "198.51.100.13", "--sport", "40013", "--dport", "80", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "600"},
		setup:     []string{nftSetup},
		labels:    []int{1, 42, 127},
		note:      labelsNote,
	},
}

// sctpXMLNote explains the state in conntrack-tools' XML for SCTP, which
// 1.4.7 names from the TCP state table.
const sctpXMLNote = "CTA_PROTOINFO_SCTP_STATE is 4, SCTP_CONNTRACK_ESTABLISHED; conntrack -L prints ESTABLISHED " +
	"but conntrack -L -o xml prints FIN_WAIT, the name of TCP state 4"

const labelsNote = "conntrack -I cannot set labels without /etc/xtables/connlabel.conf, " +
	"so the capture sets them with a netlink update; the bitmap is in host byte order"

// Ports and addresses of the flows made by traffic over loopback.
var (
	tcp4Client = netip.MustParseAddrPort("127.0.0.1:40100")
	tcp4Server = netip.MustParseAddrPort("127.0.0.1:8080")
	tcp6Client = netip.MustParseAddrPort("[::1]:40100")
	tcp6Server = netip.MustParseAddrPort("[::1]:8080")
	udp4Client = netip.MustParseAddrPort("127.0.0.1:40101")
	udp4Server = netip.MustParseAddrPort("127.0.0.1:5300")
	ftp4Client = netip.MustParseAddrPort("127.0.0.1:40102")
	ftp4Server = netip.MustParseAddrPort("127.0.0.1:21")
	ftp6Client = netip.MustParseAddrPort("[::1]:40102")
	ftp6Server = netip.MustParseAddrPort("[::1]:21")
)

// exchanges is how many request and response pairs each traffic flow sees.
const exchanges = 3

func trafficKey(proto uint8, client, server netip.AddrPort) flowKey {
	return flowKey{proto: proto, src: client.Addr(), dst: server.Addr(), sport: client.Port(), dport: server.Port()}
}

// trafficFlows are the entries made by real packets over loopback.
var trafficFlows = []*flow{
	{
		name:  "tcp4-traffic",
		desc:  "a live TCP connection over IPv4 loopback, with counters and a start timestamp",
		key:   trafficKey(protoTCP, tcp4Client, tcp4Server),
		setup: []string{nftSetup, "go: TCP 127.0.0.1:40100 -> 127.0.0.1:8080, 3 exchanges of 5-byte messages, left open"},
	},
	{
		name:  "tcp6-traffic",
		desc:  "a live TCP connection over IPv6 loopback, with counters and a start timestamp",
		key:   trafficKey(protoTCP, tcp6Client, tcp6Server),
		setup: []string{nftSetup, "go: TCP [::1]:40100 -> [::1]:8080, 3 exchanges of 5-byte messages, left open"},
	},
	{
		name:  "udp4-traffic",
		desc:  "a UDP exchange over IPv4 loopback, with counters and a start timestamp",
		key:   trafficKey(protoUDP, udp4Client, udp4Server),
		setup: []string{nftSetup, "go: UDP 127.0.0.1:40101 -> 127.0.0.1:5300, 3 exchanges of 5-byte datagrams"},
	},
	ftp4Flow,
	ftp6Flow,
}

// The FTP control connections, masters of the expectations.
var (
	ftp4Flow = &flow{
		name: "ftp-helper4",
		desc: "an FTP control connection over IPv4 loopback with the ftp helper attached",
		key:  trafficKey(protoTCP, ftp4Client, ftp4Server),
		setup: []string{
			nftSetup,
			"go: TCP 127.0.0.1:40102 -> 127.0.0.1:21, server sends \"220\", client sends \"PASV\", " +
				"server answers \"227 Entering Passive Mode (127,0,0,1,195,80).\"",
		},
	}
	ftp6Flow = &flow{
		name: "ftp-helper6",
		desc: "an FTP control connection over IPv6 loopback with the ftp helper attached",
		key:  trafficKey(protoTCP, ftp6Client, ftp6Server),
		setup: []string{
			nftSetup,
			"go: TCP [::1]:40102 -> [::1]:21, server sends \"220\", client sends \"EPSV\", " +
				"server answers \"229 Entering Extended Passive Mode (|||50000|)\"",
		},
	}
)

// An expectation is found in the expectation dump by its master's tuple.
type expectation struct {
	name   string
	desc   string
	master *flow
}

var expectations = []*expectation{
	{
		name:   "expect-ftp4",
		desc:   "the expectation the ftp helper made for the PASV data connection, 127.0.0.1 -> 127.0.0.1:50000",
		master: ftp4Flow,
	},
	{
		name:   "expect-ftp6",
		desc:   "the expectation the ftp helper made for the EPSV data connection, ::1 -> [::1]:50000",
		master: ftp6Flow,
	},
}

// ruleset attaches the ftp helper to TCP port 21 in both directions of
// loopback traffic. Its rules also make the kernel track connections in the
// namespace at all, and the never-matching label rule makes it reserve room
// for labels in new entries, without which CTA_LABELS cannot be set. It is
// one line, with the semicolons nft 1.0.6 needs there, so that setup
// comments can quote the command.
const ruleset = `table inet ctspec { ` +
	`ct helper ftp-h { type "ftp" protocol tcp; }; ` +
	`chain pre { type filter hook prerouting priority filter; policy accept; tcp dport 21 ct helper set "ftp-h"; }; ` +
	`chain out { type filter hook output priority filter; policy accept; tcp dport 21 ct helper set "ftp-h"; ` +
	`meta mark 0x6c61626c ct label set 127; }; }`

// nftSetup is the setup line of the ruleset.
const nftSetup = "nft '" + ruleset + "'"
