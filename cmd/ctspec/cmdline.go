package main

import (
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/clib"
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

// parser is the state of parseCmdLine while it reads one command line.
type parser struct {
	c      *cmdLine // &line
	line   cmdLine  // held by the parser: a command line costs no allocation of its own
	g      *clib.Getopt
	warn   func(string)
	family uint8 // the family the options named, 0 if none yet
}

// setFamily records the address family an option implies; options that
// imply different ones are an error.
func (p *parser) setFamily(f uint8) error {
	if p.family == 0 {
		p.family = f
	} else if p.family != f {
		return paramError("mismatched address family")
	}
	return nil
}

// parseCmdLine parses one command line (args[0] is the program name) as
// conntrack's do_parse does. warn receives warnings conntrack prints on
// stderr while parsing.
func parseCmdLine(args []string, warn func(string)) (*cmdLine, error) {
	var lp lineParser
	return lp.parse(args, warn)
}

// lineParser parses command lines one after another with one parser and
// one getopt, as -R does for every line of its file. The *cmdLine that
// parse returns is valid until the next call.
//
// A lineParser is not safe for concurrent use.
type lineParser struct {
	p parser
	g *clib.Getopt
	// args is the program name, then the words of the line parseLine
	// parsed last; parseLine needs the program name set.
	args []string
}

// parse parses one command line as parseCmdLine does.
func (lp *lineParser) parse(args []string, warn func(string)) (*cmdLine, error) {
	if lp.g == nil {
		lp.g = newGetopt(args)
	} else {
		lp.g.Reset(args)
	}
	p := &lp.p
	*p = parser{line: cmdLine{cmd: noCmd}, g: lp.g, warn: warn}
	p.c = &p.line
	for {
		code := p.g.Next()
		if code == clib.End {
			break
		}
		if err := p.option(code); err != nil {
			return nil, err
		}
	}
	return p.finish()
}

// option handles the option or command getopt returned code for.
func (p *parser) option(code int) error {
	switch code {
	case clib.Missing:
		return paramError("option `%s' requires an argument", p.g.Last)
	case clib.Unknown:
		return paramError("unknown option `%s'", p.g.Last)
	}
	if cmd := commandByCode(code); cmd != nil {
		return p.command(cmd)
	}
	if o := optionByCode(code); o != nil {
		if o.bit >= 0 {
			p.c.options |= bit(o.bit)
		}
		return o.set(p, o, p.g.Arg)
	}
	if c := p.c; code >= protoOptBase && c.proto != nil {
		i := code - protoOptBase
		c.l4flags |= 1 << i
		return c.proto.parse(c, i, p.g.Arg)
	}
	return nil
}

// command selects the command of cmd on the table named after it.
func (p *parser) command(cmd *command) error {
	table := tableConntrack
	if !p.g.Has {
		var err error
		if table, err = p.table(); err != nil {
			return err
		}
	}
	sel := cmd.ct
	switch {
	case cmd.ct == ctList && (table == tableDying || table == tableUnconfirmed):
	case table == tableDying || table == tableUnconfirmed:
		return paramError("Can't do that command with tables `dying' and `unconfirmed'")
	case table == tableExpect && cmd.exp < 0:
		return paramError("Can't do --%s on expectations", cmd.long)
	case table == tableExpect:
		sel = cmd.exp
	}
	if p.c.cmd != noCmd {
		return paramError("Invalid commands combination")
	}
	p.c.cmd, p.c.table = sel, table
	return nil
}

// tableNames are the tables a command may name, in the order a prefix
// matches them.
var tableNames = [...]struct {
	name  string
	table int
}{{"expect", tableExpect}, {"conntrack", tableConntrack}, {"dying", tableDying}, {"unconfirmed", tableUnconfirmed}}

// table reads the table name that may follow a command.
func (p *parser) table() (int, error) {
	name, ok := p.g.NextArg()
	if !ok {
		return tableConntrack, nil
	}
	for _, t := range tableNames {
		if strings.HasPrefix(t.name, name) {
			return t.table, nil
		}
	}
	return 0, paramError("unknown type `%s'", name)
}

// finish completes a command line once all options are read: the
// default family, labels, netmasks, then the checks of the options
// against the command, as the end of conntrack's do_parse.
func (p *parser) finish() (*cmdLine, error) {
	c := p.c
	c.family = p.family
	if c.family == 0 {
		switch c.cmd {
		case ctList, ctUpdate, ctDelete, ctGet, ctFlush, ctEvent:
		default:
			c.family = unix.AF_INET
		}
	}
	if c.options&(bit(optLabel)|bit(optAddLabel)|bit(optDelLabel)) != 0 || c.output&outLabels != 0 {
		c.labels = loadLabelMap(p.warn)
		var err error
		if c.filterBits, err = c.labels.bits(c.labelFilter); err != nil {
			return nil, err
		}
		if c.modifyBits, err = c.labels.bits(c.labelModify); err != nil {
			return nil, err
		}
	}
	c.applyNetmasks()
	if c.options&bit(optAnyNAT) != 0 && c.options&(bit(optSrcNAT)|bit(optDstNAT)) != 0 {
		return nil, paramError("cannot specify `--src-nat' or `--dst-nat' with `--any-nat'")
	}
	if c.cmd == noCmd {
		return c, nil
	}
	if err := checkOptions(c.options, c.cmd); err != nil {
		return nil, err
	}
	if err := c.checkDeleteOpts(); err != nil {
		return nil, err
	}
	if err := c.checkProtoOpts(); err != nil {
		return nil, err
	}
	return c, nil
}

// applyNetmasks makes a netmask replace the exact address match
// (nfct_filter_init). Expectation commands keep the address: there
// --mask-src and --mask-dst are the expectation's mask, and -s and -d its
// master's.
func (c *cmdLine) applyNetmasks() {
	if c.cmd >= expList && c.cmd <= expEvent {
		return
	}
	if c.options&bit(optMaskSrc) != 0 && c.options&bit(optOrigSrc) != 0 {
		c.netSrc = c.tmpl.TupleOrig.Src()
		c.tmpl.TupleOrig.IP.Clear(ctnetlink.TupleIPAttrV4Src)
		c.tmpl.TupleOrig.IP.Clear(ctnetlink.TupleIPAttrV6Src)
	}
	if c.options&bit(optMaskDst) != 0 && c.options&bit(optOrigDst) != 0 {
		c.netDst = c.tmpl.TupleOrig.Dst()
		c.tmpl.TupleOrig.IP.Clear(ctnetlink.TupleIPAttrV4Dst)
		c.tmpl.TupleOrig.IP.Clear(ctnetlink.TupleIPAttrV6Dst)
	}
}

// checkProtoOpts checks the protocol's options against its table, and
// turns off window tracking for TCP flows, as conntrack does for the
// flows it creates.
func (c *cmdLine) checkProtoOpts() error {
	if c.cmd == ctHelp || c.proto == nil || c.proto == unknownHandler {
		return nil
	}
	var row []byte
	if c.cmd < len(c.proto.table) {
		row = c.proto.table[c.cmd]
	}
	if row == nil {
		row = make([]byte, len(c.proto.flags))
	}
	if err := checkOpts(c.l4flags, row, c.proto.flags, c.proto.pairs, c.proto.pairMsg); err != nil {
		return err
	}
	if c.proto.num == unix.IPPROTO_TCP {
		fl := ctnetlink.TCPFlagsBeLiberal | ctnetlink.TCPFlagsSACKPerm
		if c.tmpl.ProtoInfo.TCP.State >= ctnetlink.TCPStateTimeWait {
			fl |= ctnetlink.TCPFlagsCloseInit
		}
		c.tmpl.ProtoInfo.TCP.SetFlagsOriginal(ctnetlink.TCPFlagsMask{Flags: fl, Mask: fl})
		c.tmpl.ProtoInfo.TCP.SetFlagsReply(ctnetlink.TCPFlagsMask{Flags: fl, Mask: fl})
	}
	return nil
}
