package main

import (
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/clib"
)

// protoHandler is the per-protocol part of the command line, as
// conntrack's extensions/libct_proto_*.c: the options -p adds, their names
// in messages, which of them each command allows or needs, and how they
// print in -o save.
type protoHandler struct {
	name string
	num  uint8
	// opts are the long options; their val is an index into flags, offset
	// by protoOptBase.
	opts []clib.LongOpt
	// flags names each option bit in messages ("sport", "dport", ...).
	flags []string
	// table holds, per command, 0 (illegal), 1 (needed), 2 (optional) or
	// 3 (needed in pairs, see pairs) for each option bit. Commands past
	// the table's end allow none of them.
	table [][]byte
	// pairs are the option bits that must come together, original
	// direction first; pairMsg are the messages for each.
	pairs   []uint32
	pairMsg []string
	// parse applies option bit i with argument arg.
	parse func(c *cmdLine, i int, arg string) error
}

// protoOptBase offsets protocol option values from conntrack's own.
const protoOptBase = 1000

// Option bits shared by the port-based protocols.
const (
	pOrigSport = iota
	pOrigDport
	pReplSport
	pReplDport
	pMaskSport
	pMaskDport
	pState
	pExpSport
	pExpDport
	pSCTPOrigVtag
	pSCTPReplVtag
)

var portOpts = []clib.LongOpt{
	{Name: "orig-port-src", Arg: clib.RequiredArg, Val: pOrigSport},
	{Name: "sport", Arg: clib.RequiredArg, Val: pOrigSport},
	{Name: "orig-port-dst", Arg: clib.RequiredArg, Val: pOrigDport},
	{Name: "dport", Arg: clib.RequiredArg, Val: pOrigDport},
	{Name: "reply-port-src", Arg: clib.RequiredArg, Val: pReplSport},
	{Name: "reply-port-dst", Arg: clib.RequiredArg, Val: pReplDport},
	{Name: "mask-port-src", Arg: clib.RequiredArg, Val: pMaskSport},
	{Name: "mask-port-dst", Arg: clib.RequiredArg, Val: pMaskDport},
}

func withBase(opts []clib.LongOpt) []clib.LongOpt {
	out := make([]clib.LongOpt, len(opts))
	for i, o := range opts {
		o.Val += protoOptBase
		out[i] = o
	}
	return out
}

// Rows of the protocol tables, in command order (see the cmd constants).
// Each row is indexed by option bit.
var (
	tcpTable = [][]byte{
		ctList:    {2, 2, 2, 2, 0, 0, 2, 0, 0},
		ctCreate:  {3, 3, 3, 3, 0, 0, 1, 0, 0},
		ctUpdate:  {2, 2, 2, 2, 0, 0, 2, 0, 0},
		ctDelete:  {2, 2, 2, 2, 0, 0, 2, 0, 0},
		ctGet:     {3, 3, 3, 3, 0, 0, 2, 0, 0},
		ctFlush:   {0, 0, 0, 0, 0, 0, 0, 0, 0},
		ctEvent:   {2, 2, 2, 2, 0, 0, 2, 0, 0},
		ctVersion: {0, 0, 0, 0, 0, 0, 0, 0, 0},
		ctHelp:    {0, 0, 0, 0, 0, 0, 0, 0, 0},
		expList:   {0, 0, 0, 0, 0, 0, 0, 0, 0},
		expCreate: {1, 1, 0, 0, 1, 1, 0, 1, 1},
		expDelete: {1, 1, 1, 1, 0, 0, 0, 0, 0},
		expGet:    {1, 1, 1, 1, 0, 0, 0, 0, 0},
		expFlush:  {0, 0, 0, 0, 0, 0, 0, 0, 0},
		expEvent:  {0, 0, 0, 0, 0, 0, 0, 0, 0},
		ctAdd:     {3, 3, 3, 3, 0, 0, 1, 0, 0},
	}
	udpTable = [][]byte{
		ctList:    {2, 2, 2, 2, 0, 0, 0, 0},
		ctCreate:  {3, 3, 3, 3, 0, 0, 0, 0},
		ctUpdate:  {2, 2, 2, 2, 0, 0, 0, 0},
		ctDelete:  {2, 2, 2, 2, 0, 0, 0, 0},
		ctGet:     {3, 3, 3, 3, 0, 0, 0, 0},
		ctFlush:   {0, 0, 0, 0, 0, 0, 0, 0},
		ctEvent:   {2, 2, 2, 2, 0, 0, 0, 0},
		ctVersion: {0, 0, 0, 0, 0, 0, 0, 0},
		ctHelp:    {0, 0, 0, 0, 0, 0, 0, 0},
		expList:   {0, 0, 0, 0, 0, 0, 0, 0},
		expCreate: {1, 1, 0, 0, 1, 1, 1, 1},
		expDelete: {1, 1, 1, 1, 0, 0, 0, 0},
		expGet:    {1, 1, 1, 1, 0, 0, 0, 0},
		expFlush:  {0, 0, 0, 0, 0, 0, 0, 0},
		expEvent:  {0, 0, 0, 0, 0, 0, 0, 0},
		ctAdd:     {3, 3, 3, 3, 0, 0, 0, 0},
	}
	sctpTable = [][]byte{
		ctList:    {2, 2, 2, 2, 0, 0, 2, 0, 0, 0, 0},
		ctCreate:  {3, 3, 3, 3, 0, 0, 1, 0, 0, 1, 1},
		ctUpdate:  {2, 2, 2, 2, 0, 0, 2, 0, 0, 2, 2},
		ctDelete:  {2, 2, 2, 2, 0, 0, 2, 0, 0, 0, 0},
		ctGet:     {3, 3, 3, 3, 0, 0, 2, 0, 0, 2, 2},
		ctFlush:   {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		ctEvent:   {2, 2, 2, 2, 0, 0, 2, 0, 0, 0, 0},
		ctVersion: {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		ctHelp:    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		expList:   {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		expCreate: {1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1},
		expDelete: {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
		expGet:    {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
		expFlush:  {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		expEvent:  {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		ctAdd:     {3, 3, 3, 3, 0, 0, 1, 0, 0, 1, 1},
	}
	dccpTable = [][]byte{
		ctList:    {2, 2, 2, 2, 0, 0, 2, 0, 0, 0},
		ctCreate:  {3, 3, 3, 3, 0, 0, 1, 0, 0, 1},
		ctUpdate:  {2, 2, 2, 2, 0, 0, 2, 0, 0, 0},
		ctDelete:  {2, 2, 2, 2, 0, 0, 2, 0, 0, 0},
		ctGet:     {3, 3, 3, 3, 0, 0, 2, 0, 0, 0},
		ctFlush:   {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		ctEvent:   {2, 2, 2, 2, 0, 0, 2, 0, 0, 0},
		ctVersion: {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		ctHelp:    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		expList:   {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		expCreate: {1, 1, 0, 0, 1, 1, 0, 1, 1, 1},
		expDelete: {1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
		expGet:    {1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
		expFlush:  {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		expEvent:  {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		ctAdd:     {3, 3, 3, 3, 0, 0, 1, 0, 0, 1},
	}
	greTable  = udpTable
	icmpTable = [][]byte{
		ctList:   {2, 2, 2},
		ctCreate: {1, 1, 2},
		ctUpdate: {2, 2, 2},
		ctDelete: {2, 2, 2},
		ctGet:    {1, 1, 2},
		ctEvent:  {2, 2, 2},
		ctAdd:    {1, 1, 2},
	}
)

// portPairs are the bit pairs checked where a table says 3.
var portPairs = []uint32{1<<pOrigSport | 1<<pOrigDport, 1<<pReplSport | 1<<pReplDport}

// parsePort is htons(clib.Atoi(arg)): any number, truncated to 16 bits.
func parsePort(arg string) uint16 { return uint16(clib.Atoi(arg)) }

// parsePortOpt sets one of the port options shared by TCP, UDP, UDP-Lite,
// SCTP, DCCP and (with keys) GRE.
func parsePortOpt(c *cmdLine, i int, v uint16) bool {
	switch i {
	case pOrigSport:
		c.tmpl.TupleOrig.Proto.SetSrcPort(v)
		c.origL4 = true
	case pOrigDport:
		c.tmpl.TupleOrig.Proto.SetDstPort(v)
		c.origL4 = true
	case pReplSport:
		c.tmpl.TupleReply.Proto.SetSrcPort(v)
		c.replL4 = true
	case pReplDport:
		c.tmpl.TupleReply.Proto.SetDstPort(v)
		c.replL4 = true
	case pMaskSport:
		c.mask.Proto.SetSrcPort(v)
	case pMaskDport:
		c.mask.Proto.SetDstPort(v)
	case pExpSport:
		c.exp.Proto.SetSrcPort(v)
	case pExpDport:
		c.exp.Proto.SetDstPort(v)
	default:
		return false
	}
	return true
}

// TCP state names as conntrack-tools' TCP extension spells them; index is
// the kernel's value. LISTEN is accepted on input for kernels before
// 2.6.31, where it was what SYN_SENT2 is now.
var tcpStates = []string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}

var sctpStates = []string{"NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT", "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT"}

var dccpStates = []string{"NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT", "IGNORE", "INVALID"}

var dccpRoles = []string{"client", "server"}

func portHandler(name string, num uint8, table [][]byte, extra []clib.LongOpt, flags []string, parse func(c *cmdLine, i int, arg string) error) *protoHandler {
	opts := append(append([]clib.LongOpt{}, portOpts...), extra...)
	return &protoHandler{
		name: name, num: num, opts: withBase(opts), flags: flags, table: table,
		pairs:   portPairs,
		pairMsg: []string{"you have to specify `--sport' and `--dport'", "you have to specify `--reply-src-port' and `--reply-dst-port'"},
		parse:   parse,
	}
}

// protoHandlers returns the protocols conntrack-tools knows by name, in
// the order its list holds them (the last registered first). They are
// built on first use: a command line without -p never needs them.
var protoHandlers = sync.OnceValue(func() []*protoHandler {
	return []*protoHandler{
		{
			name: "gre", num: unix.IPPROTO_GRE,
			opts: withBase([]clib.LongOpt{
				{Name: "orig-key-src", Arg: clib.RequiredArg, Val: 0}, {Name: "srckey", Arg: clib.RequiredArg, Val: 0},
				{Name: "orig-key-dst", Arg: clib.RequiredArg, Val: 1}, {Name: "dstkey", Arg: clib.RequiredArg, Val: 1},
				{Name: "reply-key-src", Arg: clib.RequiredArg, Val: 2}, {Name: "reply-key-dst", Arg: clib.RequiredArg, Val: 3},
				{Name: "mask-key-src", Arg: clib.RequiredArg, Val: 4}, {Name: "mask-key-dst", Arg: clib.RequiredArg, Val: 5},
				{Name: "tuple-key-src", Arg: clib.RequiredArg, Val: 6}, {Name: "tuple-key-dst", Arg: clib.RequiredArg, Val: 7},
			}),
			flags:   []string{"srckey", "dstkey", "reply-key-src", "reply-key-dst", "mask-key-src", "mask-key-dst", "tuple-key-src", "tuple-key-dst"},
			table:   greTable,
			pairs:   portPairs,
			pairMsg: []string{"you have to specify `--srckey' and `--dstkey'", "you have to specify `--reply-src-key' and `--reply-dst-key'"},
			parse: func(c *cmdLine, i int, arg string) error {
				v, _, _ := clib.Strtoul(arg, 0)
				key := uint16(v)
				// Keys 6 and 7 are the expectation tuple's, after the masks.
				switch i {
				case 6:
					i = pExpSport
				case 7:
					i = pExpDport
				}
				parsePortOpt(c, i, key)
				return nil
			},
		},
		{
			name: "icmpv6", num: unix.IPPROTO_ICMPV6,
			opts:  withBase([]clib.LongOpt{{Name: "icmpv6-type", Arg: clib.RequiredArg, Val: 0}, {Name: "icmpv6-code", Arg: clib.RequiredArg, Val: 1}, {Name: "icmpv6-id", Arg: clib.RequiredArg, Val: 2}}),
			flags: []string{"icmpv6-type", "icmpv6-code", "icmpv6-id"},
			table: icmpTable,
			parse: parseICMP(unix.IPPROTO_ICMPV6),
		},
		{
			name: "icmp", num: unix.IPPROTO_ICMP,
			opts:  withBase([]clib.LongOpt{{Name: "icmp-type", Arg: clib.RequiredArg, Val: 0}, {Name: "icmp-code", Arg: clib.RequiredArg, Val: 1}, {Name: "icmp-id", Arg: clib.RequiredArg, Val: 2}}),
			flags: []string{"icmp-type", "icmp-code", "icmp-id"},
			table: icmpTable,
			parse: parseICMP(unix.IPPROTO_ICMP),
		},
		portHandler("dccp", unix.IPPROTO_DCCP, dccpTable,
			[]clib.LongOpt{{Name: "state", Arg: clib.RequiredArg, Val: pState}, {Name: "tuple-port-src", Arg: clib.RequiredArg, Val: pExpSport}, {Name: "tuple-port-dst", Arg: clib.RequiredArg, Val: pExpDport}, {Name: "role", Arg: clib.RequiredArg, Val: 9}},
			[]string{"sport", "dport", "reply-port-src", "reply-port-dst", "mask-port-src", "mask-port-dst", "state", "tuple-port-src", "tuple-port-dst", "role"},
			func(c *cmdLine, i int, arg string) error {
				switch i {
				case pState:
					for s, name := range dccpStates {
						if arg == name {
							c.tmpl.ProtoInfo.DCCP.SetState(ctnetlink.DCCPState(s))
							return nil
						}
					}
					return paramError("Unknown DCCP state `%s'", arg)
				case 9:
					switch {
					case arg != "" && strings.HasPrefix("client", strings.ToLower(arg)):
						c.tmpl.ProtoInfo.DCCP.SetRole(ctnetlink.DCCPRoleClient)
					case arg != "" && strings.HasPrefix("server", strings.ToLower(arg)):
						c.tmpl.ProtoInfo.DCCP.SetRole(ctnetlink.DCCPRoleServer)
					default:
						return paramError("Unknown DCCP role `%s'", arg)
					}
					return nil
				}
				parsePortOpt(c, i, parsePort(arg))
				return nil
			}),
		portHandler("sctp", unix.IPPROTO_SCTP, sctpTable,
			[]clib.LongOpt{{Name: "state", Arg: clib.RequiredArg, Val: pState}, {Name: "tuple-port-src", Arg: clib.RequiredArg, Val: pExpSport}, {Name: "tuple-port-dst", Arg: clib.RequiredArg, Val: pExpDport}, {Name: "orig-vtag", Arg: clib.RequiredArg, Val: pSCTPOrigVtag}, {Name: "reply-vtag", Arg: clib.RequiredArg, Val: pSCTPReplVtag}},
			[]string{"sport", "dport", "reply-port-src", "reply-port-dst", "mask-port-src", "mask-port-dst", "state", "tuple-port-src", "tuple-port-dst", "orig-vtag", "reply-vtag"},
			func(c *cmdLine, i int, arg string) error {
				switch i {
				case pState:
					for s, name := range sctpStates {
						if arg == name {
							c.tmpl.ProtoInfo.SCTP.SetState(ctnetlink.SCTPState(s))
							return nil
						}
					}
					return paramError("unknown SCTP state `%s'", arg)
				case pSCTPOrigVtag:
					c.tmpl.ProtoInfo.SCTP.SetVTagOriginal(bswap32(uint32(clib.Atoi(arg))))
					return nil
				case pSCTPReplVtag:
					c.tmpl.ProtoInfo.SCTP.SetVTagReply(bswap32(uint32(clib.Atoi(arg))))
					return nil
				}
				parsePortOpt(c, i, parsePort(arg))
				return nil
			}),
		portHandler("udplite", unix.IPPROTO_UDPLITE, udpTable,
			[]clib.LongOpt{{Name: "tuple-port-src", Arg: clib.RequiredArg, Val: 6}, {Name: "tuple-port-dst", Arg: clib.RequiredArg, Val: 7}},
			[]string{"sport", "dport", "reply-port-src", "reply-port-dst", "mask-port-src", "mask-port-dst", "tuple-port-src", "tuple-port-dst"},
			parseUDPOpt),
		portHandler("udp", unix.IPPROTO_UDP, udpTable,
			[]clib.LongOpt{{Name: "tuple-port-src", Arg: clib.RequiredArg, Val: 6}, {Name: "tuple-port-dst", Arg: clib.RequiredArg, Val: 7}},
			[]string{"sport", "dport", "reply-port-src", "reply-port-dst", "mask-port-src", "mask-port-dst", "tuple-port-src", "tuple-port-dst"},
			parseUDPOpt),
		portHandler("tcp", unix.IPPROTO_TCP, tcpTable,
			[]clib.LongOpt{{Name: "state", Arg: clib.RequiredArg, Val: pState}, {Name: "tuple-port-src", Arg: clib.RequiredArg, Val: pExpSport}, {Name: "tuple-port-dst", Arg: clib.RequiredArg, Val: pExpDport}},
			[]string{"sport", "dport", "reply-port-src", "reply-port-dst", "mask-port-src", "mask-port-dst", "state", "tuple-port-src", "tuple-port-dst"},
			func(c *cmdLine, i int, arg string) error {
				if i == pState {
					for s, name := range tcpStates {
						if arg == name {
							c.tmpl.ProtoInfo.TCP.SetState(ctnetlink.TCPState(s))
							return nil
						}
					}
					if arg == "LISTEN" {
						c.tmpl.ProtoInfo.TCP.SetState(ctnetlink.TCPStateSynSent2)
						return nil
					}
					return paramError("unknown TCP state `%s'", arg)
				}
				parsePortOpt(c, i, parsePort(arg))
				return nil
			}),
	}
})

// unknownHandler stands for any other protocol, named or numbered.
var unknownHandler = &protoHandler{name: "unknown"}

func parseUDPOpt(c *cmdLine, i int, arg string) error {
	// UDP numbers the expectation tuple's ports 6 and 7 (it has no state).
	switch i {
	case 6:
		i = pExpSport
	case 7:
		i = pExpDport
	}
	parsePortOpt(c, i, parsePort(arg))
	return nil
}

func parseICMP(proto uint8) func(c *cmdLine, i int, arg string) error {
	return func(c *cmdLine, i int, arg string) error {
		p := &c.tmpl.TupleOrig.Proto
		switch i {
		case 0:
			v := uint8(clib.Atoi(arg))
			if proto == unix.IPPROTO_ICMPV6 {
				p.SetICMPv6Type(v)
			} else {
				p.SetICMPType(v)
			}
		case 1:
			v := uint8(clib.Atoi(arg))
			if proto == unix.IPPROTO_ICMPV6 {
				p.SetICMPv6Code(v)
			} else {
				p.SetICMPCode(v)
			}
		case 2:
			v := uint16(clib.Atoi(arg))
			if proto == unix.IPPROTO_ICMPV6 {
				p.SetICMPv6ID(v)
			} else {
				p.SetICMPID(v)
			}
		}
		c.tmpl.TupleOrig.Proto.SetNum(proto)
		c.origL4 = true
		return nil
	}
}

// findProto resolves -p's argument as conntrack's findproto does: a known
// protocol's name (any case), then a name in /etc/protocols, then a number
// up to 255.
func findProto(name string) (*protoHandler, uint8, bool) {
	for _, h := range protoHandlers() {
		if strings.EqualFold(h.name, name) {
			return h, h.num, true
		}
	}
	if strings.EqualFold(name, unknownHandler.name) {
		return unknownHandler, 0, true
	}
	if n, ok := clib.ProtoByName(name); ok {
		for _, h := range protoHandlers() {
			if h.num == uint8(n) {
				// conntrack treats a protocol given by its /etc/protocols
				// name as unknown, even one it supports.
				return unknownHandler, uint8(n), true
			}
		}
		return unknownHandler, uint8(n), true
	}
	v, rest, ok := clib.Strtoul(name, 0)
	if ok && rest == "" && v <= unix.IPPROTO_RAW {
		for _, h := range protoHandlers() {
			if h.num == uint8(v) {
				return h, uint8(v), true
			}
		}
		return unknownHandler, uint8(v), true
	}
	return nil, 0, false
}

// protoName returns the name conntrack's -o save prints after -p, or ""
// for a protocol it prints by number.
func protoName(num uint8) string {
	for _, h := range protoHandlers() {
		if h.num == num {
			return h.name
		}
	}
	return ""
}
