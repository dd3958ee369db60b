package main

import (
	"fmt"
	"github.com/ctspec/ctspec/internal/clib"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
)

// Commands, in the order of conntrack's command bits: the index selects
// the row of the option tables.
const (
	ctList = iota
	ctCreate
	ctUpdate
	ctDelete
	ctGet
	ctFlush
	ctEvent
	ctVersion
	ctHelp
	expList
	expCreate
	expDelete
	expGet
	expFlush
	expEvent
	ctCount
	expCount
	ctStats
	expStats
	ctAdd
	numCmd
	noCmd = numCmd
)

// Options, in the order of conntrack's option bits.
const (
	optOrigSrc = iota
	optOrigDst
	optReplSrc
	optReplDst
	optProto
	optTimeout
	optStatus
	optZero
	optEventMask
	optExpSrc
	optExpDst
	optMaskSrc
	optMaskDst
	optNATRange
	optMark
	optID
	optFamily
	optSrcNAT
	optDstNAT
	optOutput
	optSecmark
	optBufferSize
	optAnyNAT
	optZone
	optLabel
	optAddLabel
	optDelLabel
	optOrigZone
	optReplZone
	numOpt
)

func bit(o int) uint32 { return 1 << o }

// optNames are the option names conntrack uses in its messages.
var optNames = [numOpt]string{
	"src", "dst", "reply-src", "reply-dst", "protonum", "timeout", "status", "zero",
	"event-mask", "tuple-src", "tuple-dst", "mask-src", "mask-dst", "nat-range", "mark",
	"id", "family", "src-nat", "dst-nat", "output", "secmark", "buffer-size", "any-nat",
	"zone", "label", "label-add", "label-del", "orig-zone", "reply-zone",
}

// cmdOpts says, per command, which options are illegal (0), needed (1),
// optional (2), or needed as a pair of addresses (3).
var cmdOpts = [numCmd][numOpt]byte{
	/*                  s d r q p t u z e [ ] { } a m i f n g o c b j w l < > ( ) */
	ctList:    {2, 2, 2, 2, 2, 0, 2, 2, 0, 0, 0, 2, 2, 0, 2, 0, 2, 2, 2, 2, 2, 0, 2, 2, 2, 0, 0, 2, 2},
	ctCreate:  {3, 3, 3, 3, 1, 1, 2, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 0, 0, 2, 0, 2, 0, 2, 2},
	ctUpdate:  {2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 0, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 0, 0},
	ctDelete:  {2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 0, 2, 2, 2, 2, 2, 2, 0, 0, 0, 2, 2, 0, 0, 2, 2},
	ctGet:     {3, 3, 3, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0},
	ctFlush:   {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	ctEvent:   {2, 2, 2, 2, 2, 0, 0, 0, 2, 0, 0, 2, 2, 0, 2, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 2, 2},
	ctHelp:    {0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	expList:   {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	expCreate: {1, 1, 2, 2, 1, 1, 2, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	expDelete: {1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	expGet:    {1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	expEvent:  {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	ctAdd:     {3, 3, 3, 3, 1, 1, 2, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 0, 0, 2, 0, 2, 0, 2, 2},
}

// addrPairs are the address options that must come together where the
// table says 3: the original pair first, then the reply pair.
var addrPairs = []uint32{bit(optOrigSrc) | bit(optOrigDst), bit(optReplSrc) | bit(optReplDst)}

// Tables, as named after a command.
const (
	tableConntrack = iota
	tableExpect
	tableDying
	tableUnconfirmed
)

// Output flags of -o.
const (
	outXML = 1 << iota
	outExtended
	outTimestamp
	outID
	outKTimestamp
	outLabels
	outSave
	outJSON
	outUserspace
)

// Event mask bits of -e.
const (
	evNew = 1 << iota
	evUpdate
	evDestroy
	evAll = evNew | evUpdate | evDestroy
)

// natSpec is a --src-nat or --dst-nat argument.
type natSpec struct {
	addr netip.Addr
	port uint16
	// hasPort is true when "addr:port" named a port.
	hasPort bool
}

// cmdLine is one parsed command line (one line of a -R file).
type cmdLine struct {
	cmd     int
	table   int
	options uint32
	family  uint8

	proto    *protoHandler
	protoNum uint8
	l4flags  uint32

	// tmpl holds what the options set, with presence bits: the tuples
	// (without addresses' family), protocol state, timeout, zones,
	// secmark, ID and status for a create or update.
	tmpl ctnetlink.Flow
	// origL3 and replL3 are the families the address options of each
	// direction set; origL4 and replL4 whether protocol fields of each
	// direction were set.
	origL3, replL3 uint8
	origL4, replL4 bool

	mark, markMask     uint32
	status, statusMask uint32

	// mask is the expectation mask or, for a filter, the netmask that
	// -s/-d ADDR/BITS and --mask-src/--mask-dst set.
	mask ctnetlink.Tuple
	// netSrc and netDst are the addresses of -s/-d ADDR/BITS, which match
	// under the netmask only; the template then has no exact address.
	netSrc, netDst netip.Addr
	// exp is the expectation tuple (--tuple-src, --tuple-dst, ports).
	exp ctnetlink.Tuple

	snat, dnat natSpec
	hasSNAT    bool
	hasDNAT    bool

	// labelNames are the label lists of -l, --label-add and --label-del,
	// resolved once the whole line is read.
	labelFilter, labelModify []string
	labelDelAll              bool
	labels                   *labelMap
	filterBits, modifyBits   []byte

	output    uint32
	eventMask uint32
	bufSize   int64

	// dryRun and kernelFlush are ctspec's own options of -D: --dry-run
	// prints the plan and deletes nothing; --kernel-flush lets the kernel
	// flush what it can evaluate, printing counts only.
	dryRun, kernelFlush bool
}

// exitError is a failure with conntrack's exit status and message.
type exitError struct {
	status int // 1: OTHER_PROBLEM, 2: PARAMETER_PROBLEM
	msg    string
}

func (e *exitError) Error() string { return e.msg }

func paramError(format string, args ...any) error {
	return &exitError{status: 2, msg: fmt.Sprintf(format, args...)}
}

func otherError(format string, args ...any) error {
	return &exitError{status: 1, msg: fmt.Sprintf(format, args...)}
}

// Codes of options that have no short letter.
const (
	optCodeExpSrc   = '['
	optCodeExpDst   = ']'
	optCodeMaskSrc  = '{'
	optCodeMaskDst  = '}'
	optCodeAddLabel = '<'
	optCodeDelLabel = '>'
	optCodeOrigZone = '('
	optCodeReplZone = ')'
	// ctspec's own options, which conntrack does not have.
	optCodeDryRun      = 0x100
	optCodeKernelFlush = 0x101
)

const shortOpts = ":LIUDGEFAhVs:d:r:q:p:t:u:e:a:z[:]:{:}:m:i:f:o:n::g::c:b:C::Sj::w:l:<:>::(:):"

var longOpts = []clib.LongOpt{
	{Name: "dump", Arg: clib.OptionalArg, Val: 'L'},
	{Name: "create", Arg: clib.OptionalArg, Val: 'I'},
	{Name: "add", Arg: clib.OptionalArg, Val: 'A'},
	{Name: "delete", Arg: clib.OptionalArg, Val: 'D'},
	{Name: "update", Arg: clib.OptionalArg, Val: 'U'},
	{Name: "get", Arg: clib.OptionalArg, Val: 'G'},
	{Name: "flush", Arg: clib.OptionalArg, Val: 'F'},
	{Name: "event", Arg: clib.OptionalArg, Val: 'E'},
	{Name: "counter", Arg: clib.OptionalArg, Val: 'C'},
	{Name: "stats", Arg: clib.NoArg, Val: 'S'},
	{Name: "version", Arg: clib.NoArg, Val: 'V'},
	{Name: "help", Arg: clib.NoArg, Val: 'h'},
	{Name: "orig-src", Arg: clib.RequiredArg, Val: 's'},
	{Name: "src", Arg: clib.RequiredArg, Val: 's'},
	{Name: "orig-dst", Arg: clib.RequiredArg, Val: 'd'},
	{Name: "dst", Arg: clib.RequiredArg, Val: 'd'},
	{Name: "reply-src", Arg: clib.RequiredArg, Val: 'r'},
	{Name: "reply-dst", Arg: clib.RequiredArg, Val: 'q'},
	{Name: "protonum", Arg: clib.RequiredArg, Val: 'p'},
	{Name: "timeout", Arg: clib.RequiredArg, Val: 't'},
	{Name: "status", Arg: clib.RequiredArg, Val: 'u'},
	{Name: "zero", Arg: clib.NoArg, Val: 'z'},
	{Name: "event-mask", Arg: clib.RequiredArg, Val: 'e'},
	{Name: "tuple-src", Arg: clib.RequiredArg, Val: optCodeExpSrc},
	{Name: "tuple-dst", Arg: clib.RequiredArg, Val: optCodeExpDst},
	{Name: "mask-src", Arg: clib.RequiredArg, Val: optCodeMaskSrc},
	{Name: "mask-dst", Arg: clib.RequiredArg, Val: optCodeMaskDst},
	{Name: "nat-range", Arg: clib.RequiredArg, Val: 'a'},
	{Name: "mark", Arg: clib.RequiredArg, Val: 'm'},
	{Name: "secmark", Arg: clib.RequiredArg, Val: 'c'},
	{Name: "id", Arg: clib.OptionalArg, Val: 'i'},
	{Name: "family", Arg: clib.RequiredArg, Val: 'f'},
	{Name: "src-nat", Arg: clib.OptionalArg, Val: 'n'},
	{Name: "dst-nat", Arg: clib.OptionalArg, Val: 'g'},
	{Name: "output", Arg: clib.RequiredArg, Val: 'o'},
	{Name: "buffer-size", Arg: clib.RequiredArg, Val: 'b'},
	{Name: "any-nat", Arg: clib.OptionalArg, Val: 'j'},
	{Name: "zone", Arg: clib.RequiredArg, Val: 'w'},
	{Name: "label", Arg: clib.RequiredArg, Val: 'l'},
	{Name: "label-add", Arg: clib.RequiredArg, Val: optCodeAddLabel},
	{Name: "label-del", Arg: clib.OptionalArg, Val: optCodeDelLabel},
	{Name: "orig-zone", Arg: clib.RequiredArg, Val: optCodeOrigZone},
	{Name: "reply-zone", Arg: clib.RequiredArg, Val: optCodeReplZone},
	{Name: "dry-run", Arg: clib.NoArg, Val: optCodeDryRun},
	{Name: "kernel-flush", Arg: clib.NoArg, Val: optCodeKernelFlush},
}

// newGetopt returns a parser of args for conntrack's options.
func newGetopt(args []string) *clib.Getopt {
	g := clib.New(args, shortOpts, longOpts)
	g.Index = longOptIndex
	return g
}

// longOptIndex finds the first option of longOpts named name, with a map
// built on first use, by the first long option of a command line.
func longOptIndex(name string) (int, bool) {
	i, ok := longOptMap()[name]
	return i, ok
}

var longOptMap = sync.OnceValue(func() map[string]int {
	m := make(map[string]int, len(longOpts))
	for i := len(longOpts) - 1; i >= 0; i-- {
		m[longOpts[i].Name] = i
	}
	return m
})

// longName returns the first long option name of code, for messages.
func longName(code int) string {
	for _, o := range longOpts {
		if o.Val == code {
			return o.Name
		}
	}
	return "unknown"
}

// cmdByLetter maps a command letter to its conntrack and expect forms
// (-1 where the table has no such command).
var cmdByLetter = map[int][2]int{
	'L': {ctList, expList},
	'I': {ctCreate, expCreate},
	'D': {ctDelete, expDelete},
	'G': {ctGet, expGet},
	'F': {ctFlush, expFlush},
	'E': {ctEvent, expEvent},
	'V': {ctVersion, ctVersion},
	'h': {ctHelp, ctHelp},
	'C': {ctCount, expCount},
	'S': {ctStats, expStats},
	'U': {ctUpdate, -1},
	'A': {ctAdd, -1},
}

// parseParameter parses a comma-separated list of names, each of which may
// be abbreviated and is matched without regard to case, into bits, as
// conntrack's parse_parameter does for -o, -e and -u.
type paramName struct {
	name string
	bits uint32
}

var (
	statusParams = []paramName{{"ASSURED", uint32(ctnetlink.StatusAssured)}, {"SEEN_REPLY", uint32(ctnetlink.StatusSeenReply)}, {"UNSET", 0},
		{"FIXED_TIMEOUT", uint32(ctnetlink.StatusFixedTimeout)}, {"EXPECTED", uint32(ctnetlink.StatusExpected)},
		{"OFFLOAD", uint32(ctnetlink.StatusOffload)}, {"HW_OFFLOAD", uint32(ctnetlink.StatusHWOffload)}}
	eventParams  = []paramName{{"ALL", evAll}, {"NEW", evNew}, {"UPDATES", evUpdate}, {"DESTROY", evDestroy}}
	outputParams = []paramName{{"xml", outXML}, {"extended", outExtended}, {"timestamp", outTimestamp}, {"id", outID},
		{"ktimestamp", outKTimestamp}, {"labels", outLabels}, {"userspace", outUserspace}, {"save", outSave}, {"json", outJSON}}
)

// matchParam matches one word as conntrack's do_parse_parameter: a
// case-insensitive prefix of a name. SRC_NAT and DST_NAT, which older
// versions accepted for -u, are recognised first and ignored with a
// warning, and so is any prefix of them.
func matchParam(word string, params []paramName, warn func(string)) (uint32, bool) {
	hasPrefix := func(name string) bool {
		return len(word) <= len(name) && strings.EqualFold(word, name[:len(word)])
	}
	if hasPrefix("SRC_NAT") {
		warn("WARNING: ignoring SRC_NAT, use --src-nat instead\n")
		return 0, true
	}
	if hasPrefix("DST_NAT") {
		warn("WARNING: ignoring DST_NAT, use --dst-nat instead\n")
		return 0, true
	}
	for _, p := range params {
		if hasPrefix(p.name) {
			return p.bits, true
		}
	}
	return 0, false
}

func parseParams(arg string, params []paramName, warn func(string)) (uint32, error) {
	var v uint32
	for rest := arg; ; {
		word, tail, more := strings.Cut(rest, ",")
		if word == "" {
			return 0, paramError("Bad parameter `%s'", rest)
		}
		b, ok := matchParam(word, params, warn)
		if !ok {
			return 0, paramError("Bad parameter `%s'", rest)
		}
		v |= b
		if !more {
			return v, nil
		}
		rest = tail
	}
}

// parseStatus parses -u: names, "!NAME" for a bit that must be clear, and
// UNREPLIED for SEEN_REPLY clear. It returns the value and the mask.
func parseStatus(arg string, warn func(string)) (value, mask uint32, err error) {
	for rest := arg; ; {
		word, tail, more := strings.Cut(rest, ",")
		bad := rest
		neg := strings.HasPrefix(word, "!")
		if neg {
			word = word[1:]
			bad = rest[1:]
		}
		if word == "" && (more || neg) {
			return 0, 0, paramError("Bad parameter `%s'", bad)
		}
		switch {
		case !neg && strings.HasPrefix(word, "UNREPLIED"):
			mask |= uint32(ctnetlink.StatusSeenReply)
		default:
			b, ok := matchParam(word, statusParams, warn)
			if word == "" || !ok {
				return 0, 0, paramError("Bad parameter `%s'", bad)
			}
			if neg {
				mask |= b
			} else {
				value |= b
			}
		}
		if !more {
			break
		}
		rest = tail
	}
	if mask == 0 {
		mask = value
	} else {
		mask |= value
	}
	return value, mask, nil
}

// splitNATArg splits "ADDR", "ADDR:PORT" or "[IPV6]:PORT" as conntrack's
// split_address_and_port does.
func splitNATArg(arg string) (addr, port string, hasPort bool, err error) {
	if i := strings.IndexByte(arg, '['); i >= 0 {
		start := arg[i+1:]
		end := strings.IndexByte(start, ']')
		switch {
		case end == 0:
			return "", "", false, paramError("No IPv6 address specified")
		case end < 0:
			return "", "", false, paramError("No closing ']' around IPv6 address")
		}
		if j := strings.IndexByte(start[end:], ':'); j >= 0 {
			addr = start[:end]
			port, hasPort = start[end+j+1:], true
		} else {
			return arg, "", false, nil
		}
	} else if i := strings.IndexByte(arg, ':'); i >= 0 && !strings.Contains(arg[i+1:], ":") {
		addr, port, hasPort = arg[:i], arg[i+1:], true
	} else {
		return arg, "", false, nil
	}
	if port == "" {
		return "", "", false, paramError("No port specified after `:'")
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", "", false, paramError("Invalid port `%s'", port)
		}
	}
	if v, _, _ := clib.Strtoul(port, 10); v > 65535 || len(port) > 6 {
		return "", "", false, paramError("Invalid port `%s'", port)
	}
	return addr, port, true, nil
}

// parseCmdLine parses one command line (args[0] is the program name) as
// conntrack's do_parse does. warn receives warnings conntrack prints on
// stderr while parsing.
func parseCmdLine(args []string, warn func(string)) (*cmdLine, error) {
	c := &cmdLine{cmd: noCmd}
	var family uint8
	setFamily := func(f uint8) error {
		if family == 0 {
			family = f
		} else if family != f {
			return paramError("mismatched address family")
		}
		return nil
	}
	addCommand := func(cmd int) error {
		if c.cmd != noCmd {
			return paramError("Invalid commands combination")
		}
		c.cmd = cmd
		return nil
	}
	g := newGetopt(args)

	checkType := func() (int, error) {
		name, ok := g.NextArg()
		if !ok {
			return tableConntrack, nil
		}
		for _, t := range []struct {
			name  string
			table int
		}{{"expect", tableExpect}, {"conntrack", tableConntrack}, {"dying", tableDying}, {"unconfirmed", tableUnconfirmed}} {
			if strings.HasPrefix(t.name, name) {
				return t.table, nil
			}
		}
		return 0, paramError("unknown type `%s'", name)
	}

	// addrOpt parses an address option into the field it sets; for -s and
	// -d a "/bits" suffix sets the netmask too.
	addrOpt := func(code int, arg string) error {
		withMask := code == 's' || code == 'd' || code == optCodeExpSrc || code == optCodeExpDst
		a, m := parseAddr(arg, true)
		if !a.IsValid() {
			return paramError("Invalid IP address `%s'", arg)
		}
		fam := uint8(unix.AF_INET)
		if a.Is6() {
			fam = unix.AF_INET6
		}
		if err := setFamily(fam); err != nil {
			return err
		}
		if m != noMask && !withMask {
			return paramError("CIDR notation unavailable for `--%s'", longName(code))
		}
		if m == invalidMask {
			return paramError("Invalid netmask")
		}
		var maskAddr netip.Addr
		if m != noMask && !(fam == unix.AF_INET && m == 32) && !(fam == unix.AF_INET6 && m == 128) {
			maskAddr = prefixMask(fam, m)
		}
		switch code {
		case 's':
			c.options |= bit(optOrigSrc)
			setTupleSrc(&c.tmpl.TupleOrig, a)
			c.origL3 = fam
			if maskAddr.IsValid() {
				c.options |= bit(optMaskSrc)
				setTupleSrc(&c.mask, maskAddr)
			}
		case 'd':
			c.options |= bit(optOrigDst)
			setTupleDst(&c.tmpl.TupleOrig, a)
			c.origL3 = fam
			if maskAddr.IsValid() {
				c.options |= bit(optMaskDst)
				setTupleDst(&c.mask, maskAddr)
			}
		case 'r':
			c.options |= bit(optReplSrc)
			setTupleSrc(&c.tmpl.TupleReply, a)
			c.replL3 = fam
		case 'q':
			c.options |= bit(optReplDst)
			setTupleDst(&c.tmpl.TupleReply, a)
			c.replL3 = fam
		case optCodeExpSrc:
			c.options |= bit(optExpSrc)
			setTupleSrc(&c.exp, a)
			if maskAddr.IsValid() {
				c.options |= bit(optMaskSrc)
				setTupleSrc(&c.mask, maskAddr)
			}
		case optCodeExpDst:
			c.options |= bit(optExpDst)
			setTupleDst(&c.exp, a)
			if maskAddr.IsValid() {
				c.options |= bit(optMaskDst)
				setTupleDst(&c.mask, maskAddr)
			}
		case optCodeMaskSrc:
			c.options |= bit(optMaskSrc)
			setTupleSrc(&c.mask, a)
		case optCodeMaskDst:
			c.options |= bit(optMaskDst)
			setTupleDst(&c.mask, a)
		}
		return nil
	}

	for {
		code := g.Next()
		if code == clib.End {
			break
		}
		arg := g.Arg
		var err error
		switch code {
		case 'L', 'I', 'D', 'G', 'F', 'E', 'V', 'h', 'C', 'S', 'U', 'A':
			var table int
			if !g.Has {
				table, err = checkType()
				if err != nil {
					return nil, err
				}
			}
			forms := cmdByLetter[code]
			switch {
			case code == 'L' && (table == tableDying || table == tableUnconfirmed):
				err = addCommand(ctList)
			case table == tableDying || table == tableUnconfirmed:
				return nil, paramError("Can't do that command with tables `dying' and `unconfirmed'")
			case table == tableExpect && forms[1] < 0:
				return nil, paramError("Can't do --%s on expectations", longName(code))
			case table == tableExpect:
				err = addCommand(forms[1])
			default:
				err = addCommand(forms[0])
			}
			c.table = table
		case 's', 'd', 'r', 'q', optCodeExpSrc, optCodeExpDst, optCodeMaskSrc, optCodeMaskDst:
			err = addrOpt(code, arg)
		case 'p':
			c.options |= bit(optProto)
			h, num, ok := findProto(arg)
			if !ok {
				return nil, paramError("`%s' unsupported protocol", arg)
			}
			c.proto, c.protoNum = h, num
			g.AddLong(h.opts)
			c.tmpl.TupleOrig.Proto.SetNum(num)
			c.origL4 = true
		case 't':
			c.options |= bit(optTimeout)
			c.tmpl.SetTimeout(uint32(clib.Atoi(arg)))
		case 'u':
			c.options |= bit(optStatus)
			c.status, c.statusMask, err = parseStatus(arg, warn)
			c.tmpl.SetStatus(ctnetlink.Status(c.status))
		case 'e':
			c.options |= bit(optEventMask)
			var m uint32
			m, err = parseParams(arg, eventParams, warn)
			c.eventMask |= m
		case 'o':
			c.options |= bit(optOutput)
			var m uint32
			m, err = parseParams(arg, outputParams, warn)
			c.output |= m
			if err == nil && c.output&outSave != 0 && c.output&(outExtended|outTimestamp|outID|outKTimestamp|outLabels|outXML|outJSON) != 0 {
				return nil, otherError("cannot combine save output with any other output type, use -o save only")
			}
			if err == nil && c.output&outJSON != 0 && c.output&outXML != 0 {
				return nil, otherError("cannot combine json output with xml output")
			}
		case 'z':
			c.options |= bit(optZero)
		case 'n', 'g', 'j':
			opt := map[int]int{'n': optSrcNAT, 'g': optDstNAT, 'j': optAnyNAT}[code]
			c.options |= bit(opt)
			if !g.Has {
				arg, g.Has = g.NextArg()
			}
			if !g.Has {
				break
			}
			var addrStr, portStr string
			var hasPort bool
			addrStr, portStr, hasPort, err = splitNATArg(arg)
			if err != nil {
				return nil, err
			}
			a, m := parseAddr(addrStr, true)
			if !a.IsValid() {
				return nil, paramError("Invalid IP address `%s'", addrStr)
			}
			fam := uint8(unix.AF_INET)
			if a.Is6() {
				fam = unix.AF_INET6
			}
			if err := setFamily(fam); err != nil {
				return nil, err
			}
			if m != noMask {
				return nil, paramError("CIDR notation unavailable for `--%s'", longName(code))
			}
			spec := natSpec{addr: a, hasPort: hasPort}
			if hasPort {
				spec.port = uint16(clib.Atoi(portStr))
			}
			if code == 'n' || code == 'j' {
				c.snat, c.hasSNAT = spec, true
			}
			if code == 'g' || code == 'j' {
				c.dnat, c.hasDNAT = spec, true
			}
			c.origL3 = fam
		case 'w', optCodeOrigZone, optCodeReplZone:
			v, _, _ := clib.Strtoul(arg, 0)
			z := uint16(v)
			switch code {
			case 'w':
				c.options |= bit(optZone)
				c.tmpl.SetZone(z)
			case optCodeOrigZone:
				c.options |= bit(optOrigZone)
				c.tmpl.TupleOrig.SetZone(z)
			case optCodeReplZone:
				c.options |= bit(optReplZone)
				c.tmpl.TupleReply.SetZone(z)
			}
		case 'i', 'c':
			if !g.Has && code == 'i' {
				arg, _ = g.NextArg()
			}
			v, _, _ := clib.Strtoul(arg, 0)
			if code == 'i' {
				c.options |= bit(optID)
				c.tmpl.SetID(uint32(v))
			} else {
				c.options |= bit(optSecmark)
				c.tmpl.SetSecmark(uint32(v))
			}
		case 'm':
			c.options |= bit(optMark)
			c.mark, c.markMask = parseMark(arg)
		case 'l', optCodeAddLabel, optCodeDelLabel:
			opt := map[int]int{'l': optLabel, optCodeAddLabel: optAddLabel, optCodeDelLabel: optDelLabel}[code]
			c.options |= bit(opt)
			if c.options&(bit(optAddLabel)|bit(optDelLabel)) == bit(optAddLabel)|bit(optDelLabel) {
				return nil, otherError("cannot use --label-add and --label-del at the same time")
			}
			if code == optCodeDelLabel && !g.Has {
				arg, g.Has = g.NextArg()
				if !g.Has {
					c.labelDelAll = true
					break
				}
			}
			if code == 'l' {
				c.labelFilter = append(c.labelFilter, arg)
			} else {
				c.labelModify = append(c.labelModify, arg)
			}
		case optCodeDryRun:
			c.dryRun = true
		case optCodeKernelFlush:
			c.kernelFlush = true
		case 'a':
			warn("WARNING: ignoring -a, deprecated option.\n")
		case 'f':
			c.options |= bit(optFamily)
			switch {
			case strings.HasPrefix(arg, "ipv4"):
				err = setFamily(unix.AF_INET)
			case strings.HasPrefix(arg, "ipv6"):
				err = setFamily(unix.AF_INET6)
			default:
				err = paramError("`%s' unsupported protocol", arg)
			}
		case 'b':
			c.options |= bit(optBufferSize)
			c.bufSize = clib.Atoi(arg)
		case clib.Missing:
			return nil, paramError("option `%s' requires an argument", g.Last)
		case clib.Unknown:
			return nil, paramError("unknown option `%s'", g.Last)
		default:
			if code >= protoOptBase && c.proto != nil {
				i := code - protoOptBase
				c.l4flags |= 1 << i
				err = c.proto.parse(c, i, arg)
			}
		}
		if err != nil {
			return nil, err
		}
	}

	if family == 0 {
		switch c.cmd {
		case ctList, ctUpdate, ctDelete, ctGet, ctFlush, ctEvent:
		default:
			family = unix.AF_INET
		}
	}
	c.family = family

	if c.options&(bit(optLabel)|bit(optAddLabel)|bit(optDelLabel)) != 0 || c.output&outLabels != 0 {
		c.labels = loadLabelMap(warn)
		var err error
		if c.filterBits, err = c.labels.bits(c.labelFilter); err != nil {
			return nil, err
		}
		if c.modifyBits, err = c.labels.bits(c.labelModify); err != nil {
			return nil, err
		}
	}

	// A netmask replaces the exact address match (nfct_filter_init).
	// Expectation commands keep the address: there --mask-src and
	// --mask-dst are the expectation's mask, and -s and -d its master's.
	isExp := c.cmd >= expList && c.cmd <= expEvent
	if !isExp && c.options&bit(optMaskSrc) != 0 && c.options&bit(optOrigSrc) != 0 {
		c.netSrc = c.tmpl.TupleOrig.Src()
		c.tmpl.TupleOrig.IP.Clear(ctnetlink.TupleIPAttrV4Src)
		c.tmpl.TupleOrig.IP.Clear(ctnetlink.TupleIPAttrV6Src)
	}
	if !isExp && c.options&bit(optMaskDst) != 0 && c.options&bit(optOrigDst) != 0 {
		c.netDst = c.tmpl.TupleOrig.Dst()
		c.tmpl.TupleOrig.IP.Clear(ctnetlink.TupleIPAttrV4Dst)
		c.tmpl.TupleOrig.IP.Clear(ctnetlink.TupleIPAttrV6Dst)
	}
	if c.options&bit(optAnyNAT) != 0 && c.options&(bit(optSrcNAT)|bit(optDstNAT)) != 0 {
		return nil, paramError("cannot specify `--src-nat' or `--dst-nat' with `--any-nat'")
	}
	if c.cmd == noCmd {
		return c, nil
	}
	if err := checkOpts(c.options, cmdOpts[c.cmd][:], optNames[:], addrPairs, []string{
		"you have to specify `--src' and `--dst'",
		"you have to specify `--reply-src' and `--reply-dst'",
	}); err != nil {
		return nil, err
	}
	if err := c.checkDeleteOpts(); err != nil {
		return nil, err
	}
	if c.cmd != ctHelp && c.proto != nil && c.proto != unknownHandler {
		var row []byte
		if c.cmd < len(c.proto.table) {
			row = c.proto.table[c.cmd]
		}
		if row == nil {
			row = make([]byte, len(c.proto.flags))
		}
		if err := checkOpts(c.l4flags, row, c.proto.flags, c.proto.pairs, c.proto.pairMsg); err != nil {
			return nil, err
		}
		if c.proto.num == unix.IPPROTO_TCP {
			// conntrack disables window tracking for flows it creates.
			fl := ctnetlink.TCPFlagsBeLiberal | ctnetlink.TCPFlagsSACKPerm
			if c.tmpl.ProtoInfo.TCP.State >= ctnetlink.TCPStateTimeWait {
				fl |= ctnetlink.TCPFlagsCloseInit
			}
			c.tmpl.ProtoInfo.TCP.SetFlagsOriginal(ctnetlink.TCPFlagsMask{Flags: fl, Mask: fl})
			c.tmpl.ProtoInfo.TCP.SetFlagsReply(ctnetlink.TCPFlagsMask{Flags: fl, Mask: fl})
		}
	}
	return c, nil
}

// checkOpts checks the options given against a row of a table, as
// conntrack's generic_opt_check: the first needed option missing or
// illegal option given, in option order, is the error; then, where the row
// says 3, one of the pairs must be complete.
func checkOpts(given uint32, row []byte, names []string, pairs []uint32, pairMsg []string) error {
	special := false
	for i, v := range row {
		if given&(1<<i) == 0 {
			if v == 1 {
				return paramError("You need to supply the `--%s' option for this command", names[i])
			}
		} else if v == 0 {
			return paramError("Illegal option `--%s' with this command", names[i])
		}
		if v == 3 {
			special = true
		}
	}
	if !special || len(pairs) == 0 {
		return nil
	}
	partial := -1
	for i, p := range pairs {
		if given&p == p {
			return nil
		}
		if given&p != 0 && partial < 0 {
			partial = i
		}
	}
	if partial < 0 {
		partial = 0
	}
	return paramError("%s", pairMsg[partial])
}

// parseMark parses -m VALUE[/MASK] with strtoul, as conntrack 1.4.7 does:
// trailing junk is ignored. Without a mask all bits count.
func parseMark(arg string) (value, mask uint32) {
	v, rest, _ := clib.Strtoul(arg, 0)
	value, mask = uint32(v), ^uint32(0)
	if strings.HasPrefix(rest, "/") {
		m, _, _ := clib.Strtoul(rest[1:], 0)
		mask = uint32(m)
	}
	return value, mask
}

func prefixMask(fam uint8, bits int) netip.Addr {
	if fam == unix.AF_INET {
		var b [4]byte
		for i := range b {
			switch {
			case bits >= 8:
				b[i] = 0xff
				bits -= 8
			case bits > 0:
				b[i] = byte(0xff << (8 - bits))
				bits = 0
			}
		}
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	for i := range b {
		switch {
		case bits >= 8:
			b[i] = 0xff
			bits -= 8
		case bits > 0:
			b[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return netip.AddrFrom16(b)
}

// setTupleSrc and setTupleDst set an address in the attribute of its
// family; an IPv4-mapped IPv6 address stays IPv6, as in conntrack.
func setTupleSrc(t *ctnetlink.Tuple, a netip.Addr) {
	if a.Is4() {
		t.IP.SetV4Src(a)
	} else {
		t.IP.SetV6Src(a)
	}
}

func setTupleDst(t *ctnetlink.Tuple, a netip.Addr) {
	if a.Is4() {
		t.IP.SetV4Dst(a)
	} else {
		t.IP.SetV6Dst(a)
	}
}
