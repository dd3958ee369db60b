// Command report runs the benchmark suite of the bench module and prints
// one Markdown table of the results, for the README.
//
// Run it from the bench directory, as root:
//
//	go run ./report > results.md
//	go run ./report -bench Dump/n=10k          # a part of the suite
//	go run ./report -bench 'Cleanup.*|Command' # several benchmarks
//	go run ./report -from bench.txt            # the table of saved output
//
// It prints the README's performance tables first (a line naming the
// machine, the library workloads with one column per tool, the command as
// whole processes), every cell naming the method it measures, then one
// row per benchmark with all its figures.
//
// It builds the test binary once and runs it in four passes: the
// read-only workloads (dumps, decoding and the list commands) with the
// default -benchtime of one second; the workloads that change the table
// (create, delete, events) with -benchtime=3x; the cheap flush with
// -benchtime=10x; the cleanups of 250k tables, whose slowest runs take
// minutes, with -benchtime=1x; and the whole-process command rows
// (CommandRuns), which interleave their own runs, once. Go runs one iteration before a fixed count
// of n greater than one and discards its figures, so those figures are of a
// warm process; a cleanup's single run follows the fill of its table. The
// raw benchmark output goes to standard error as it comes. The whole suite
// takes about ten minutes on two cores.
//
// In the table, Time/op is the median iteration's time. Ratio is a dump's
// time as a multiple of the raw receive loop's for the same table, and for
// the other workloads the time as a multiple of the reference ctspec row's
// (marked "ref"); for the command rows, conntrack's median time over the
// row's, from the same interleaved run. Allocs/flow and B/flow are those of Go code; the
// conntrack command's are not measured. Peak RSS is of a child process that
// dumps the 250k table once, or runs ctspec's cleanup once.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// pass is one run of the test binary: the top-level benchmarks it runs and
// their -benchtime.
type pass struct {
	benchmarks []string
	benchtime  string
}

var passes = []pass{
	{[]string{"Dump", "Dial", "Decode", "Command"}, "1s"},
	{[]string{"Create", "Delete", "Events"}, "3x"},
	{[]string{"Flush"}, "10x"},
	{[]string{"CleanupEndpoints", "CleanupMark", "CleanupState"}, "1x"},
	{[]string{"CommandRuns"}, "1x"},
}

// reference names, per workload, the ctspec row that the others' Ratio is
// relative to. Dumps are relative to "raw" instead.
var reference = map[string]string{
	"Create":           "ctspec-createmany",
	"Delete":           "ctspec-list-deletemany/mark",
	"Flush":            "ctspec",
	"CleanupEndpoints": "ctspec",
	"CleanupMark":      "ctspec",
	"CleanupState":     "ctspec",
}

// workloadTitle describes each benchmark for the table.
var workloadTitle = map[string]string{
	"Dump":   "Dump all, %s TCP flows",
	"Decode": "Decode one flow message, geometric mean of %d kinds",
	"Create": "Create 100k TCP flows",
	"Delete": "Delete 100k of 200k flows by filter",
	"Flush":  "Flush 100k flows",
	"Events": "Events of create 100k + flush (200k)",

	"CleanupEndpoints": "Cleanup of 1,000 UDP endpoints (20k of 250k flows)",
	"CleanupMark":      "Cleanup by mark 0x300/0xff00 (25k of 250k flows)",
	"CleanupState":     "Cleanup of TCP TIME_WAIT (50k of 250k flows)",
	"Command":          "Command %s > /dev/null, %s TCP flows",
}

func main() {
	filter := flag.String("bench", "", "run only the benchmarks this pattern names: a regular expression of top-level benchmarks, such as Delete or 'Cleanup.*|Command', then optionally a slash and the -test.bench pattern of their sub-benchmarks, such as Dump/n=10k")
	from := flag.String("from", "", "print the table of this saved benchmark output instead of running the suite")
	flag.Parse()
	var err error
	if *from != "" {
		err = reprint(*from)
	} else {
		err = run(*filter)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// reprint prints the table of saved benchmark output.
func reprint(path string) error {
	out, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	results := parse(out)
	printReadme(os.Stdout, results, "?")
	fmt.Println()
	printTable(os.Stdout, results, 0, "?", "?")
	return nil
}

func run(filter string) error {
	dir, err := os.MkdirTemp("", "ctspec-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bench.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}

	start := time.Now()
	load0 := loadavg()
	var results []result
	for _, p := range passes {
		pattern, ok, err := passPattern(p, filter)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		out, err := runPass(bin, pattern, p.benchtime)
		results = append(results, parse(out)...)
		if err != nil {
			return fmt.Errorf("bench %s: %w", pattern, err)
		}
	}
	if len(results) == 0 {
		return fmt.Errorf("no benchmark results: are you root?")
	}
	printReadme(os.Stdout, results, load0)
	fmt.Println()
	printTable(os.Stdout, results, time.Since(start), load0, loadavg())
	return nil
}

// passPattern returns the -test.bench pattern of pass p narrowed by the
// -bench filter, and false if the filter leaves nothing of the pass.
func passPattern(p pass, filter string) (string, bool, error) {
	top, sub, _ := strings.Cut(filter, "/")
	if top == "" {
		top = ".*"
	}
	re, err := regexp.Compile("^(?:" + top + ")$")
	if err != nil {
		return "", false, fmt.Errorf("-bench: %w", err)
	}
	var names []string
	for _, name := range p.benchmarks {
		if re.MatchString(name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", false, nil
	}
	pattern := "^Benchmark(" + strings.Join(names, "|") + ")$"
	if sub != "" {
		pattern += "/" + sub
	}
	return pattern, true, nil
}

func runPass(bin, pattern, benchtime string) ([]byte, error) {
	cmd := exec.Command(bin, "-test.run=^$", "-test.bench="+pattern, "-test.benchmem",
		"-test.benchtime="+benchtime, "-test.timeout=60m")
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	return out.Bytes(), err
}

// result is one benchmark line.
type result struct {
	name    string // without "Benchmark" and the -GOMAXPROCS suffix
	iters   int
	metrics map[string]float64
}

var procSuffix = regexp.MustCompile(`-\d+$`)

func parse(out []byte) []result {
	var rs []result
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		r := result{
			name:    procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), ""),
			iters:   n,
			metrics: map[string]float64{},
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			r.metrics[f[i+1]] = v
		}
		rs = append(rs, r)
	}
	return rs
}

// row is one line of the table.
type row struct {
	workload, tool     string
	nsPerOp, perSecond float64
	ratio              string
	allocs, bytes      float64
	goAllocs           bool
	rss, notes         string
}

// topOrder is the order of the workloads in the table.
var topOrder = []string{"Dump", "Command", "CommandRuns", "Decode", "Create", "Delete", "Flush",
	"CleanupEndpoints", "CleanupMark", "CleanupState", "Events"}

// rowNotes are the notes of particular rows, by benchmark name.
var rowNotes = map[string]string{
	"Dump/raw":           "floor: raw netlink receive loop, no decoding",
	"Dump/ctspec-stream": "Dump iterator: one flow at a time, nothing kept",
	"Dump/ctspec-list":   "List: builds a slice of all flows, as the peers do",
	"Dump/vishvananda":   "ConntrackTableList: builds a slice",
	"Dump/ti-mo":         "Dump: builds a slice",
	"Dump/conntrack-cli": "conntrack -L > /dev/null: whole process under nsenter, start-up and text formatting included; the Go clients are dialled before timing",

	"Create/ctspec-createmany": "CreateMany: pipelined batch",
	"Create/conntrack-cli":     "conntrack -R of a saved file: whole process under nsenter",
	"Create/vishvananda":       "ConntrackCreate per flow: the library has no batch call",
	"Create/ti-mo":             "Create per flow: the library has no batch call",

	"Delete/ctspec-list-deletemany/mark": "kernel-filtered List, then pipelined DeleteMany",
	"Delete/ctspec-list-deletemany/tcp":  "kernel-filtered List, then pipelined DeleteMany",
	"Delete/ctspec-flush-filter/mark":    "Flush with a Selector: one filtered kernel flush",
	"Delete/ctspec-flush-filter/tcp":     "Flush with a Selector: one filtered kernel flush",
	"Delete/conntrack-cli/mark":          "conntrack -D -m 1: whole process under nsenter, dump then one delete per flow",
	"Delete/conntrack-cli/tcp":           "conntrack -D -p tcp: whole process under nsenter, dump then one delete per flow",
	"Delete/vishvananda/mark":            "ConntrackDeleteFilters: whole dump, match in Go, one delete per flow",
	"Delete/vishvananda/tcp":             "ConntrackDeleteFilters: whole dump, match in Go, one delete per flow",
	"Delete/ti-mo-dump-delete/mark":      "DumpFilter, then one Delete per flow",
	"Delete/ti-mo-flush-filter/mark":     "FlushFilter: one filtered kernel flush",

	"CleanupEndpoints/ctspec":        "one Cleanup, 1,000 matchers; the planner runs them over one dump, matchers by hash",
	"CleanupEndpoints/ctspec-scan":   "the same with NoKernelFilters: one dump, matchers by hash",
	"CleanupEndpoints/vishvananda":   "ConntrackDeleteFilters, 1,000 ConntrackFilters",
	"CleanupEndpoints/conntrack-cli": "conntrack -D -p udp --orig-dst A --dport P, once per endpoint",
	"CleanupMark/ctspec":             "kernel filtered flush",
	"CleanupMark/vishvananda":        "ConntrackDeleteFilters, filter function",
	"CleanupMark/conntrack-cli":      "conntrack -D -m 0x300/0xff00",
	"CleanupState/ctspec":            "one dump, deletes pipelined",
	"CleanupState/vishvananda":       "ConntrackDeleteFilters, filter function",
	"CleanupState/conntrack-cli":     "conntrack -D -p tcp --state TIME_WAIT",
}

// commandRunTitles and commandRunTools describe the rows of CommandRuns,
// by row and by tool.
var commandRunTitles = map[string]string{
	"small-C":    "One small call: -C",
	"small-G":    "One small call: -G of one flow",
	"small-I":    "One small call: -I of one flow",
	"R-100k":     "-R of 100k -I lines into an empty table",
	"R-1M":       "-R of 1M -I lines (-F every 200k)",
	"D-mark":     "-D -m 1/1 (50k of 100k flows)",
	"D-udp-53":   "-D -p udp --dport 53 (40k of 100k)",
	"D-timewait": "-D -p tcp --state TIME_WAIT (20k of 100k)",
	"L":          "-L > /dev/null, 100k flows",
	"L-xml":      "-L -o xml > /dev/null, 100k flows",
}

var commandRunTools = map[string]string{
	"conntrack":           "conntrack 1.4.7, whole process",
	"ctspec":              "ctspec built static (CGO_ENABLED=0), whole process",
	"ctspec-dynamic":      "ctspec as a plain go build makes it (dynamically linked), whole process",
	"floor-netlink":       "floor: a Go program sending one request through mdlayher/netlink",
	"floor-raw":           "floor: a Go program sending one request on a raw netlink socket",
	"flush-all":           "floor: one unfiltered kernel flush of the same table, in-process (no process start)",
	"raw-dump":            "floor: raw netlink receive of the same dump, in-process (no process start)",
	"ctspec-kernel-flush": "floor: ctspec --kernel-flush, one filtered kernel flush; prints no flows and no count",
	"go-hello":            "floor: a Go program that prints one line (Go start-up)",
	"true":                "floor: /bin/true (fork, exec, exit)",
}

// commandArgs are the arguments of the Command benchmarks' formats.
var commandArgs = map[string]string{"L": "-L", "L-xml": "-L -o xml"}

func printTable(w io.Writer, results []result, took time.Duration, load0, load1 string) {
	byName := map[string]result{}
	groups := map[string][]result{}
	for _, r := range results {
		byName[r.name] = r
		top, _, _ := strings.Cut(r.name, "/")
		if !strings.Contains(r.name, "/peak-rss/") {
			groups[top] = append(groups[top], r)
		}
	}

	var rows []row
	for _, top := range topOrder {
		if top == "Decode" {
			rows = append(rows, decodeRows(groups[top])...)
			continue
		}
		refName := top + "/" + reference[top]
		for _, r := range groups[top] {
			m := r.metrics
			parts := strings.Split(r.name, "/")
			rw := row{
				workload:  workloadTitle[top],
				tool:      strings.Join(parts[1:], "/"),
				nsPerOp:   m["ns/op"],
				perSecond: m["flows/s"],
				allocs:    m["allocs/flow"],
				bytes:     m["B/flow"],
			}
			_, rw.goAllocs = m["allocs/flow"]
			rw.notes = rowNotes[r.name]
			switch top {
			case "Dump":
				rw.workload = fmt.Sprintf(rw.workload, strings.TrimPrefix(parts[1], "n="))
				rw.tool = strings.Join(parts[2:], "/")
				rw.notes = rowNotes[top+"/"+rw.tool]
				if v, ok := m["x-raw"]; ok {
					rw.ratio = fmt.Sprintf("%.2f× raw", v)
				}
				if p, ok := byName[parts[0]+"/"+parts[1]+"/peak-rss/"+rw.tool]; ok {
					rw.rss = fmt.Sprintf("%.0f MiB", p.metrics["peak-MiB"])
				}
			case "Command":
				// Command/n=<size>/<format>/<tool>, relative to ctspec
				// in the same format and size.
				rw.workload = fmt.Sprintf(rw.workload, commandArgs[parts[2]], strings.TrimPrefix(parts[1], "n="))
				rw.tool = strings.Join(parts[3:], "/")
				ref := strings.Join(parts[:3], "/") + "/ctspec"
				if rv := byName[ref].metrics["ns/op"]; rv > 0 {
					rw.ratio = fmtRatio(m["ns/op"] / rv)
				}
				if r.name == ref {
					rw.ratio += " ref"
				}
			case "CommandRuns":
				// CommandRuns/<row>/<tool>: median of interleaved whole
				// processes; Ratio is conntrack's median over this one's.
				rw.workload = commandRunTitles[parts[1]]
				rw.tool = parts[2]
				rw.perSecond = 0
				if v, ok := m["x-conntrack"]; ok {
					rw.ratio = fmt.Sprintf("conntrack ÷ this: %.2f", v)
				}
				if v := m["peak-MiB"]; v > 0 {
					rw.rss = fmt.Sprintf("%.0f MiB", v)
				}
				rw.notes = fmt.Sprintf("%s; median of %.0f runs interleaved with the other tools; CPU %s", commandRunTools[parts[2]], m["runs"], fmtDuration(m["cpu-ms"]*1e6))
			case "Events":
				// A listener that lost events finished early: its time
				// is no match for one that received them all.
				rw.notes = fmt.Sprintf("received %.1f%% of events, %.0f overruns", 100*m["recv/expected"], m["overruns"])
			default:
				if rv := byName[refName].metrics["ns/op"]; rv > 0 {
					rw.ratio = fmtRatio(m["ns/op"] / rv)
				}
				if r.name == refName {
					rw.ratio += " ref"
				}
				if p, ok := byName[top+"/peak-rss/"+rw.tool]; ok {
					rw.rss = fmt.Sprintf("%.0f MiB", p.metrics["peak-MiB"])
				}
				if v, ok := m["cli-sample"]; ok {
					rw.notes += fmt.Sprintf("; %.0f of the commands run, time scaled up", v)
				}
			}
			rows = append(rows, rw)
		}
	}

	fmt.Fprintf(w, "Kernel %s, %s, %d CPUs, %s, %s.", kernel(), cpuModel(), runtime.NumCPU(), runtime.Version(), conntrackVersion())
	if took > 0 {
		fmt.Fprintf(w, " Load average %s before, %s after; the suite took %s.", load0, load1, took.Round(time.Second))
	}
	fmt.Fprint(w, "\n\n")
	fmt.Fprintln(w, "| Workload | Tool | Time/op | Flows/s | Ratio | Allocs/flow | B/flow | Peak RSS | Notes |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|---|")
	for _, rw := range rows {
		allocCol, bytesCol := "—", "—"
		if rw.goAllocs {
			allocCol, bytesCol = fmtNum(rw.allocs), fmtNum(rw.bytes)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			rw.workload, rw.tool, fmtDuration(rw.nsPerOp), fmtRate(rw.perSecond), rw.ratio, allocCol, bytesCol, rw.rss, rw.notes)
	}
	if idle, ok := byName["Dump/n=250k/peak-rss/idle"]; ok {
		fmt.Fprintf(w, "\nPeak RSS of a Go child that only dials every client, for comparison: %.0f MiB.\n", idle.metrics["peak-MiB"])
	}
}

// decodeRows sums up the decode benchmarks, Decode/<kind>/<tool>, in one
// row per tool: the geometric mean of ns/op over the kinds, the mean
// allocations, and the range in the notes.
func decodeRows(results []result) []row {
	type agg struct {
		logSum, allocs, bytes, lo, hi float64
		n                             int
	}
	var tools []string
	byTool := map[string]*agg{}
	for _, r := range results {
		parts := strings.Split(r.name, "/")
		if len(parts) != 3 {
			continue
		}
		tool, ns := parts[2], r.metrics["ns/op"]
		a := byTool[tool]
		if a == nil {
			a = &agg{lo: ns, hi: ns}
			byTool[tool] = a
			tools = append(tools, tool)
		}
		a.logSum += math.Log(ns)
		a.allocs += r.metrics["allocs/op"]
		a.bytes += r.metrics["B/op"]
		a.lo, a.hi = min(a.lo, ns), max(a.hi, ns)
		a.n++
	}
	ref := byTool["ctspec"]
	var rows []row
	for _, tool := range tools {
		a := byTool[tool]
		n := float64(a.n)
		gm := math.Exp(a.logSum / n)
		rw := row{
			workload:  fmt.Sprintf(workloadTitle["Decode"], a.n),
			tool:      tool,
			nsPerOp:   gm,
			perSecond: 1e9 / gm,
			allocs:    a.allocs / n,
			bytes:     a.bytes / n,
			goAllocs:  true,
			notes:     fmt.Sprintf("%s to %s per message", fmtDuration(a.lo), fmtDuration(a.hi)),
		}
		if ref != nil {
			rw.ratio = fmt.Sprintf("%.2f", gm/math.Exp(ref.logSum/float64(ref.n)))
			if tool == "ctspec" {
				rw.ratio += " ref"
			}
		}
		rows = append(rows, rw)
	}
	return rows
}

func fmtDuration(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// fmtRatio prints a ratio with two decimals, or three below 0.1 so that a
// row much faster than its reference does not show as 0.00.
func fmtRatio(v float64) string {
	if v < 0.1 {
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtRate(v float64) string {
	switch {
	case v == 0:
		return ""
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0f k", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 0.01:
		return "<0.01"
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return "Linux " + strings.TrimSpace(string(b))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "?"
}

func conntrackVersion() string {
	out, err := exec.Command("conntrack", "--version").Output()
	if err != nil {
		return "conntrack ?"
	}
	f := strings.Fields(string(out))
	if len(f) >= 2 {
		return "conntrack " + f[1]
	}
	return strings.TrimSpace(string(out))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], "/")
}
