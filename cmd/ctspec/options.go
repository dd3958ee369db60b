package main

import (
	"strings"
	"sync"

	"github.com/ctspec/ctspec/internal/clib"
)

// How a command takes an option: the values of conntrack's
// commands_v_options matrix.
const (
	illegal  = 0 // the option is an error with this command
	needed   = 1 // the command needs the option
	optional = 2 // the command accepts the option
	pair     = 3 // the command needs the original or the reply address pair
)

// command is one command of conntrack's command table: its letter, long
// name and argument kind, the command it selects on the conntrack and the
// expect table (-1 where the expect table has none), and its -h line.
type command struct {
	short string // in getopt(3)'s syntax: the letter, then ':' or "::"
	long  string
	arg   int // argument kind of the long form
	ct    int
	exp   int
	help  string
}

// commands are conntrack's commands, in the order -h lists them.
var commands = [...]command{
	{short: "L", long: "dump", arg: clib.OptionalArg, ct: ctList, exp: expList, help: "  -L [table] [options]\t\tList conntrack or expectation table"},
	{short: "G", long: "get", arg: clib.OptionalArg, ct: ctGet, exp: expGet, help: "  -G [table] parameters\t\tGet conntrack or expectation"},
	{short: "D", long: "delete", arg: clib.OptionalArg, ct: ctDelete, exp: expDelete, help: "  -D [table] parameters\t\tDelete conntrack or expectation"},
	{short: "I", long: "create", arg: clib.OptionalArg, ct: ctCreate, exp: expCreate, help: "  -I [table] parameters\t\tCreate a conntrack or expectation"},
	{short: "U", long: "update", arg: clib.OptionalArg, ct: ctUpdate, exp: -1, help: "  -U [table] parameters\t\tUpdate a conntrack"},
	{short: "E", long: "event", arg: clib.OptionalArg, ct: ctEvent, exp: expEvent, help: "  -E [table] [options]\t\tShow events"},
	{short: "F", long: "flush", arg: clib.OptionalArg, ct: ctFlush, exp: expFlush, help: "  -F [table]\t\t\tFlush table"},
	{short: "C::", long: "counter", arg: clib.OptionalArg, ct: ctCount, exp: expCount, help: "  -C [table]\t\t\tShow counter"},
	{short: "S", long: "stats", arg: clib.NoArg, ct: ctStats, exp: expStats, help: "  -S\t\t\t\tShow statistics"},
	{short: "A", long: "add", arg: clib.OptionalArg, ct: ctAdd, exp: -1},
	{short: "V", long: "version", arg: clib.NoArg, ct: ctVersion, exp: ctVersion},
	{short: "h", long: "help", arg: clib.NoArg, ct: ctHelp, exp: ctHelp},
}

// option is one option of conntrack's option table: its bit (-1 for
// ctspec's own options, which have none), the value getopt returns for
// it, its short form in getopt(3)'s syntax (empty when it has none), its
// long names (the first is the one messages use) and argument kind, the
// name conntrack's messages give it, what it sets, how each command takes
// it, and its -h line under its section.
type option struct {
	bit     int
	code    int
	short   string
	long    []string
	arg     int
	name    string
	set     func(p *parser, o *option, arg string) error
	cmds    [numCmd]byte
	section string
	help    string
}

// Sections of the -h text.
const (
	secConntrack = "Conntrack parameters and options:"
	secExpect    = "Expectation parameters and options:"
	secUpdate    = "Updating parameters and options:"
	secCommon    = "Common parameters and options:"
	secCtspec    = "ctspec extensions of -D (conntrack has none of them):"
)

// options are conntrack's options, in the order -h lists them, and then
// those it does not list. The cmds column of each is its column of
// conntrack's commands_v_options; a command it does not name makes the
// option illegal there.
var options = [...]option{
	{bit: optSrcNAT, code: 'n', short: "n::", long: []string{"src-nat"}, arg: clib.OptionalArg, name: "src-nat", set: (*parser).setNAT,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: optional, ctUpdate: optional, ctDelete: optional, ctEvent: optional, ctAdd: optional},
		section: secConntrack, help: "  -n, --src-nat ip\t\t\tsource NAT ip"},
	{bit: optDstNAT, code: 'g', short: "g::", long: []string{"dst-nat"}, arg: clib.OptionalArg, name: "dst-nat", set: (*parser).setNAT,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: optional, ctUpdate: optional, ctDelete: optional, ctEvent: optional, ctAdd: optional},
		section: secConntrack, help: "  -g, --dst-nat ip\t\t\tdestination NAT ip"},
	{bit: optAnyNAT, code: 'j', short: "j::", long: []string{"any-nat"}, arg: clib.OptionalArg, name: "any-nat", set: (*parser).setNAT,
		cmds:    [numCmd]byte{ctList: optional, ctEvent: optional},
		section: secConntrack, help: "  -j, --any-nat ip\t\t\tsource or destination NAT ip"},
	{bit: optMark, code: 'm', short: "m:", long: []string{"mark"}, arg: clib.RequiredArg, name: "mark", set: (*parser).setMark,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: optional, ctUpdate: optional, ctDelete: optional, ctEvent: optional, ctAdd: optional},
		section: secConntrack, help: "  -m, --mark mark\t\t\tSet mark"},
	{bit: optSecmark, code: 'c', short: "c:", long: []string{"secmark"}, arg: clib.RequiredArg, name: "secmark", set: (*parser).setSecmark,
		cmds:    [numCmd]byte{ctList: optional, ctEvent: optional},
		section: secConntrack, help: "  -c, --secmark secmark\t\t\tSet selinux secmark"},
	{bit: optEventMask, code: 'e', short: "e:", long: []string{"event-mask"}, arg: clib.RequiredArg, name: "event-mask", set: (*parser).setEventMask,
		cmds:    [numCmd]byte{ctEvent: optional},
		section: secConntrack, help: "  -e, --event-mask eventmask\t\tEvent mask, eg. NEW,DESTROY"},
	{bit: optZero, code: 'z', short: "z", long: []string{"zero"}, arg: clib.NoArg, name: "zero", set: (*parser).setZero,
		cmds:    [numCmd]byte{ctList: optional},
		section: secConntrack, help: "  -z, --zero \t\t\t\tZero counters while listing"},
	{bit: optOutput, code: 'o', short: "o:", long: []string{"output"}, arg: clib.RequiredArg, name: "output", set: (*parser).setOutput,
		cmds:    [numCmd]byte{ctList: optional, ctUpdate: optional, ctDelete: optional, ctGet: optional, ctEvent: optional, expList: optional, expEvent: optional},
		section: secConntrack, help: "  -o, --output type[,...]\t\tOutput format, eg. xml"},
	{bit: optLabel, code: 'l', short: "l:", long: []string{"label"}, arg: clib.RequiredArg, name: "label", set: (*parser).setLabel,
		cmds:    [numCmd]byte{ctList: optional, ctUpdate: optional, ctDelete: optional, ctGet: optional, ctEvent: optional},
		section: secConntrack, help: "  -l, --label label[,...]\t\tconntrack labels"},

	{bit: optExpSrc, code: optCodeExpSrc, short: "[:", long: []string{"tuple-src"}, arg: clib.RequiredArg, name: "tuple-src", set: (*parser).setAddr,
		cmds:    [numCmd]byte{expCreate: needed},
		section: secExpect, help: "  --tuple-src ip\tSource address in expect tuple"},
	{bit: optExpDst, code: optCodeExpDst, short: "]:", long: []string{"tuple-dst"}, arg: clib.RequiredArg, name: "tuple-dst", set: (*parser).setAddr,
		cmds:    [numCmd]byte{expCreate: needed},
		section: secExpect, help: "  --tuple-dst ip\tDestination address in expect tuple"},

	{bit: optAddLabel, code: optCodeAddLabel, short: "<:", long: []string{"label-add"}, arg: clib.RequiredArg, name: "label-add", set: (*parser).setLabel,
		cmds:    [numCmd]byte{ctCreate: optional, ctUpdate: optional, ctAdd: optional},
		section: secUpdate, help: "  --label-add label\tAdd label"},
	{bit: optDelLabel, code: optCodeDelLabel, short: ">::", long: []string{"label-del"}, arg: clib.OptionalArg, name: "label-del", set: (*parser).setLabel,
		cmds:    [numCmd]byte{ctUpdate: optional},
		section: secUpdate, help: "  --label-del label\tDelete label"},

	{bit: optOrigSrc, code: 's', short: "s:", long: []string{"orig-src", "src"}, arg: clib.RequiredArg, name: "src", set: (*parser).setAddr,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: pair, ctUpdate: optional, ctDelete: optional, ctGet: pair, ctEvent: optional, expCreate: needed, expDelete: needed, expGet: needed, ctAdd: pair},
		section: secCommon, help: "  -s, --src, --orig-src ip\t\tSource address from original direction"},
	{bit: optOrigDst, code: 'd', short: "d:", long: []string{"orig-dst", "dst"}, arg: clib.RequiredArg, name: "dst", set: (*parser).setAddr,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: pair, ctUpdate: optional, ctDelete: optional, ctGet: pair, ctEvent: optional, expCreate: needed, expDelete: needed, expGet: needed, ctAdd: pair},
		section: secCommon, help: "  -d, --dst, --orig-dst ip\t\tDestination address from original direction"},
	{bit: optReplSrc, code: 'r', short: "r:", long: []string{"reply-src"}, arg: clib.RequiredArg, name: "reply-src", set: (*parser).setAddr,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: pair, ctUpdate: optional, ctDelete: optional, ctGet: pair, ctEvent: optional, expCreate: optional, expDelete: optional, expGet: optional, ctAdd: pair},
		section: secCommon, help: "  -r, --reply-src ip\t\tSource addres from reply direction"},
	{bit: optReplDst, code: 'q', short: "q:", long: []string{"reply-dst"}, arg: clib.RequiredArg, name: "reply-dst", set: (*parser).setAddr,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: pair, ctUpdate: optional, ctDelete: optional, ctGet: pair, ctEvent: optional, expCreate: optional, expDelete: optional, expGet: optional, ctAdd: pair},
		section: secCommon, help: "  -q, --reply-dst ip\t\tDestination address from reply direction"},
	{bit: optProto, code: 'p', short: "p:", long: []string{"protonum"}, arg: clib.RequiredArg, name: "protonum", set: (*parser).setProto,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: needed, ctUpdate: optional, ctDelete: optional, ctGet: needed, ctEvent: optional, ctHelp: optional, expCreate: needed, expDelete: needed, expGet: needed, ctAdd: needed},
		section: secCommon, help: "  -p, --protonum proto\t\tLayer 4 Protocol, eg. 'tcp'"},
	{bit: optFamily, code: 'f', short: "f:", long: []string{"family"}, arg: clib.RequiredArg, name: "family", set: (*parser).setFamilyOpt,
		cmds:    [numCmd]byte{ctList: optional, ctUpdate: optional, ctDelete: optional, ctFlush: optional, ctEvent: optional, expList: optional},
		section: secCommon, help: "  -f, --family proto\t\tLayer 3 Protocol, eg. 'ipv6'"},
	{bit: optTimeout, code: 't', short: "t:", long: []string{"timeout"}, arg: clib.RequiredArg, name: "timeout", set: (*parser).setTimeout,
		cmds:    [numCmd]byte{ctCreate: needed, ctUpdate: optional, ctDelete: optional, expCreate: needed, ctAdd: needed},
		section: secCommon, help: "  -t, --timeout timeout\t\tSet timeout"},
	{bit: optStatus, code: 'u', short: "u:", long: []string{"status"}, arg: clib.RequiredArg, name: "status", set: (*parser).setStatus,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: optional, ctUpdate: optional, ctDelete: optional, expCreate: optional, ctAdd: optional},
		section: secCommon, help: "  -u, --status status\t\tSet status, eg. ASSURED"},
	{bit: optZone, code: 'w', short: "w:", long: []string{"zone"}, arg: clib.RequiredArg, name: "zone", set: (*parser).setZone,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: optional, ctDelete: optional, ctEvent: optional, ctAdd: optional},
		section: secCommon, help: "  -w, --zone value\t\tSet conntrack zone"},
	{bit: optOrigZone, code: optCodeOrigZone, short: "(:", long: []string{"orig-zone"}, arg: clib.RequiredArg, name: "orig-zone", set: (*parser).setZone,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: optional, ctDelete: optional, ctEvent: optional, ctAdd: optional},
		section: secCommon, help: "  --orig-zone value\t\tSet zone for original direction"},
	{bit: optReplZone, code: optCodeReplZone, short: "):", long: []string{"reply-zone"}, arg: clib.RequiredArg, name: "reply-zone", set: (*parser).setZone,
		cmds:    [numCmd]byte{ctList: optional, ctCreate: optional, ctDelete: optional, ctEvent: optional, ctAdd: optional},
		section: secCommon, help: "  --reply-zone value\t\tSet zone for reply direction"},
	{bit: optBufferSize, code: 'b', short: "b:", long: []string{"buffer-size"}, arg: clib.RequiredArg, name: "buffer-size", set: (*parser).setBufferSize,
		cmds:    [numCmd]byte{ctEvent: optional},
		section: secCommon, help: "  -b, --buffer-size\t\tNetlink socket buffer size"},
	{bit: optMaskSrc, code: optCodeMaskSrc, short: "{:", long: []string{"mask-src"}, arg: clib.RequiredArg, name: "mask-src", set: (*parser).setAddr,
		cmds:    [numCmd]byte{ctList: optional, ctUpdate: optional, ctDelete: optional, ctEvent: optional, expCreate: needed},
		section: secCommon, help: "  --mask-src ip\t\t\tSource mask address"},
	{bit: optMaskDst, code: optCodeMaskDst, short: "}:", long: []string{"mask-dst"}, arg: clib.RequiredArg, name: "mask-dst", set: (*parser).setAddr,
		cmds:    [numCmd]byte{ctList: optional, ctUpdate: optional, ctDelete: optional, ctEvent: optional, expCreate: needed},
		section: secCommon, help: "  --mask-dst ip\t\t\tDestination mask address"},

	{bit: optNATRange, code: 'a', short: "a:", long: []string{"nat-range"}, arg: clib.RequiredArg, name: "nat-range", set: (*parser).setNATRange,
		cmds: [numCmd]byte{ctCreate: optional, ctAdd: optional}},
	{bit: optID, code: 'i', short: "i:", long: []string{"id"}, arg: clib.OptionalArg, name: "id", set: (*parser).setID,
		cmds: [numCmd]byte{ctUpdate: optional, ctDelete: optional, ctGet: optional}},

	{bit: -1, code: optCodeDryRun, long: []string{"dry-run"}, arg: clib.NoArg, name: "dry-run", set: (*parser).setDryRun,
		section: secCtspec, help: "  --dry-run\t\t\tPrint the plan and how many flows match; delete nothing"},
	{bit: -1, code: optCodeKernelFlush, long: []string{"kernel-flush"}, arg: clib.NoArg, name: "kernel-flush", set: (*parser).setKernelFlush,
		section: secCtspec, help: "  --kernel-flush\t\tLet the kernel flush what it can evaluate itself;\n\t\t\t\tprints no flows, and no count for what it flushed"},
}

// numCodes bounds the values getopt returns for commands and options.
const numCodes = optCodeKernelFlush + 1

// codeIndex maps the value getopt returns for a command or option to its
// entry: i+1 for commands[i], -(i+1) for options[i], 0 for neither.
var codeIndex = func() (idx [numCodes]int8) {
	for i := range commands {
		idx[commands[i].short[0]] = int8(i + 1)
	}
	for i := range options {
		idx[options[i].code] = -int8(i + 1)
	}
	return idx
}()

// optionByCode returns the option getopt returned code for, or nil.
func optionByCode(code int) *option {
	if code < 0 || code >= numCodes || codeIndex[code] >= 0 {
		return nil
	}
	return &options[-codeIndex[code]-1]
}

// commandByCode returns the command whose letter is code, or nil.
func commandByCode(code int) *command {
	if code < 0 || code >= numCodes || codeIndex[code] <= 0 {
		return nil
	}
	return &commands[codeIndex[code]-1]
}

// getoptSpec is the short option string and long option list of the
// commands and options tables, built once, on first use.
var getoptSpec = sync.OnceValues(buildGetoptSpec)

// buildGetoptSpec builds what getoptSpec returns.
func buildGetoptSpec() (string, []clib.LongOpt) {
	// Sized up front: on a small call this runs cold, where every
	// growth step of a slice is an allocation of a new size class.
	shortLen, longLen := 1, len(commands)
	for _, c := range commands {
		shortLen += len(c.short)
	}
	for _, o := range options {
		shortLen += len(o.short)
		longLen += len(o.long)
	}
	var short strings.Builder
	short.Grow(shortLen)
	long := make([]clib.LongOpt, 0, longLen)
	short.WriteString(":")
	for _, c := range commands {
		short.WriteString(c.short)
		long = append(long, clib.LongOpt{Name: c.long, Arg: c.arg, Val: int(c.short[0])})
	}
	for _, o := range options {
		short.WriteString(o.short)
		for _, n := range o.long {
			long = append(long, clib.LongOpt{Name: n, Arg: o.arg, Val: o.code})
		}
	}
	return short.String(), long
}

// longOptIndex finds the first long option named name, with a map built
// on first use, by the first long option of a command line.
func longOptIndex(name string) (int, bool) {
	i, ok := longOptMap()[name]
	return i, ok
}

var longOptMap = sync.OnceValue(func() map[string]int {
	_, long := getoptSpec()
	m := make(map[string]int, len(long))
	for i := len(long) - 1; i >= 0; i-- {
		m[long[i].Name] = i
	}
	return m
})

// newGetopt returns a parser of args for conntrack's options.
func newGetopt(args []string) *clib.Getopt {
	short, long := getoptSpec()
	g := clib.New(args, short, long)
	g.Index = longOptIndex
	return g
}

// longName returns the first long name of the command or option code,
// for messages.
func longName(code int) string {
	if c := commandByCode(code); c != nil {
		return c.long
	}
	if o := optionByCode(code); o != nil {
		return o.long[0]
	}
	return "unknown"
}

// checkOptions checks the options given against command cmd's column of
// the options table, as conntrack's generic_opt_check: the first needed
// option missing or illegal option given, in option bit order, is the
// error; then, where the command takes address pairs, one pair must be
// complete.
func checkOptions(given uint32, cmd int) error {
	return checkOpts(given, optionRows.cmds[cmd][:], optionRows.names[:], addrPairs, addrPairMsg)
}

// optionRows holds each command's row of the options table in option bit
// order, and the option names in the same order, for checkOptions.
var optionRows = func() (r struct {
	cmds  [numCmd][numOpt]byte
	names [numOpt]string
}) {
	for i := range options {
		if o := &options[i]; o.bit >= 0 {
			r.names[o.bit] = o.name
			for cmd := range numCmd {
				r.cmds[cmd][o.bit] = o.cmds[cmd]
			}
		}
	}
	return r
}()

// addrPairMsg are the errors for an incomplete pair of addrPairs.
var addrPairMsg = []string{
	"you have to specify `--src' and `--dst'",
	"you have to specify `--reply-src' and `--reply-dst'",
}
