package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
)

// The README's performance tables: one line naming the machine, then one
// table of the library workloads with a column per tool and one of the
// command as whole processes. Every cell names the method it measures;
// an empty cell is a method the tool lacks or the suite did not run.

// figures indexes benchmark results by name.
type figures map[string]result

// metric returns metric m of benchmark name, and whether it is there.
func (f figures) metric(name, m string) (float64, bool) {
	r, ok := f[name]
	if !ok {
		return 0, false
	}
	v, ok := r.metrics[m]
	return v, ok
}

// ns returns the ns/op of benchmark name, or 0.
func (f figures) ns(name string) float64 {
	v, _ := f.metric(name, "ns/op")
	return v
}

// cell joins the parts of a cell that are not empty.
func cell(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

// timed is "<time> (<method>)" for benchmark name, or "" if it did not
// run.
func (f figures) timed(name, method string) string {
	ns := f.ns(name)
	if ns == 0 {
		return ""
	}
	return fmt.Sprintf("%s (%s)", fmtDuration(ns), method)
}

// allocs is ", N allocs/flow" of benchmark name when it has Go figures.
func (f figures) allocs(name string) string {
	v, ok := f.metric(name, "allocs/flow")
	if !ok {
		return ""
	}
	b, _ := f.metric(name, "B/flow")
	return fmt.Sprintf("%s allocs/flow, %s B/flow", fmtNum(v), fmtNum(b))
}

// childRun describes the child-process run of a peak-rss benchmark: its
// time and peak RSS, from the same run.
func (f figures) childRun(name string) string {
	mib, ok := f.metric(name, "peak-MiB")
	if !ok {
		return ""
	}
	if ns := f.ns(name); ns > 0 {
		return fmt.Sprintf("one run in a child process: %s, peak RSS %.0f MiB", fmtDuration(ns), mib)
	}
	return fmt.Sprintf("peak RSS %.0f MiB", mib)
}

// printReadme prints the machine line and the README's two tables.
func printReadme(w io.Writer, results []result, load0 string) {
	f := figures{}
	for _, r := range results {
		f[r.name] = r
	}
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %s, %s, %s; load average %s (1/5/15 min) when the suite started.\n\n",
		runtime.NumCPU(), cpuModel(), kernel(), runtime.Version(), conntrackVersion(), load0)
	libraryTable(w, f, results)
	fmt.Fprintln(w)
	commandTable(w, f)
}

func libraryTable(w io.Writer, f figures, results []result) {
	fmt.Fprintln(w, "| workload | ctspec | raw netlink | vishvananda/netlink | ti-mo/conntrack | conntrack(8) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	// row prints a row unless ctspec's cell is empty: the workload did
	// not run.
	row := func(workload string, cells ...string) {
		if cells[0] != "" {
			fmt.Fprintf(w, "| %s | %s |\n", workload, strings.Join(cells, " | "))
		}
	}
	for _, size := range []string{"10k", "100k", "250k"} {
		d := "Dump/n=" + size + "/"
		if f.ns(d+"raw") == 0 {
			continue
		}
		xraw := func(tool string) string {
			if v, ok := f.metric(d+tool, "x-raw"); ok {
				return fmt.Sprintf("%.2f× raw", v)
			}
			return ""
		}
		row("dump "+size+" flows, streaming: one flow at a time, nothing kept (Go clients dialled before timing, see the dial row)",
			cell(f.timed(d+"ctspec-stream", "`Dump`: reused struct, no formatting"), xraw("ctspec-stream"), f.allocs(d+"ctspec-stream"), f.childRun(d+"peak-rss/ctspec-stream")),
			cell(f.timed(d+"raw", "receive loop, no decoding: the floor"), f.childRun(d+"peak-rss/raw")),
			"no streaming call", "no streaming call",
			cell(f.timed(d+"conntrack-cli", "`-L > /dev/null`: whole process under nsenter, start-up and text formatting included"), xraw("conntrack-cli"), f.childRun(d+"peak-rss/conntrack-cli")))
		row("dump "+size+" flows into a slice",
			cell(f.timed(d+"ctspec-list", "`List`"), xraw("ctspec-list"), f.allocs(d+"ctspec-list"), f.childRun(d+"peak-rss/ctspec-list")),
			"",
			cell(f.timed(d+"vishvananda", "`ConntrackTableList`"), xraw("vishvananda"), f.allocs(d+"vishvananda"), f.childRun(d+"peak-rss/vishvananda")),
			cell(f.timed(d+"ti-mo", "`Dump`"), xraw("ti-mo"), f.allocs(d+"ti-mo"), f.childRun(d+"peak-rss/ti-mo")),
			"no slice form")
	}
	row("dial: open and close a connection in a namespace (not in the dump times)",
		f.timed("Dial/ctspec", "`Dial`, one socket"), "",
		f.timed("Dial/vishvananda", "`NewHandle` on a thread in the namespace"),
		f.timed("Dial/ti-mo", "`Dial`"),
		"part of each whole-process time")
	var decode []result
	for _, r := range results {
		if strings.HasPrefix(r.name, "Decode/") {
			decode = append(decode, r)
		}
	}
	dec := map[string]string{}
	for _, r := range decodeRows(decode) {
		dec[r.tool] = fmt.Sprintf("%s, %s allocs (%s)", fmtDuration(r.nsPerOp), fmtNum(r.allocs), r.notes)
	}
	if len(dec) > 0 {
		n := 0
		for _, r := range decode {
			if strings.HasSuffix(r.name, "/ctspec") {
				n++
			}
		}
		row(fmt.Sprintf("decode one flow message: geometric mean over %d kinds", n),
			dec["ctspec"], "", dec["vishvananda"], dec["ti-mo"], "")
	}
	row("create 100k flows (the peers have no batch call)",
		f.timed("Create/ctspec-createmany", "`CreateMany`, pipelined batch"), "",
		f.timed("Create/vishvananda", "one `ConntrackCreate` per flow"),
		f.timed("Create/ti-mo", "one `Create` per flow"),
		f.timed("Create/conntrack-cli", "`-R` of a saved file, whole process under nsenter"))
	row("delete 100k of 200k by mark",
		cell(f.timed("Delete/ctspec-flush-filter/mark", "`Flush` with a filter: one kernel flush"),
			f.timed("Delete/ctspec-list-deletemany/mark", "kernel-filtered `List`, then pipelined `DeleteMany`")),
		"",
		f.timed("Delete/vishvananda/mark", "`ConntrackDeleteFilters`: whole dump, match in Go, one delete per flow"),
		cell(f.timed("Delete/ti-mo-flush-filter/mark", "`FlushFilter`: one kernel flush"),
			f.timed("Delete/ti-mo-dump-delete/mark", "`DumpFilter`, then one `Delete` per flow")),
		f.timed("Delete/conntrack-cli/mark", "`-D -m 1`, whole process under nsenter: dump, one delete per flow"))
	row("delete 100k of 200k by protocol (TCP)",
		cell(f.timed("Delete/ctspec-flush-filter/tcp", "`Flush` with a filter: one kernel flush"),
			f.timed("Delete/ctspec-list-deletemany/tcp", "kernel-filtered `List`, then pipelined `DeleteMany`")),
		"",
		f.timed("Delete/vishvananda/tcp", "`ConntrackDeleteFilters`: whole dump, match in Go, one delete per flow"),
		"",
		f.timed("Delete/conntrack-cli/tcp", "`-D -p tcp`, whole process under nsenter: dump, one delete per flow"))
	row("flush 100k flows",
		f.timed("Flush/ctspec", "`Flush`"), "",
		f.timed("Flush/vishvananda", "`ConntrackTableFlush`"),
		f.timed("Flush/ti-mo", "`Flush`"),
		f.timed("Flush/conntrack-cli", "`-F`, whole process under nsenter"))
	cleanups := []struct{ top, title string }{
		{"CleanupEndpoints", "cleanup: 1,000 UDP endpoints, 20k of 250k flows"},
		{"CleanupMark", "cleanup: mark/mask 0x300/0xff00, 25k of 250k"},
		{"CleanupState", "cleanup: TCP TIME_WAIT, 50k of 250k"},
	}
	for _, c := range cleanups {
		ref := f.ns(c.top + "/ctspec")
		ratio := func(name string) string {
			if v := f.ns(name); v > 0 && ref > 0 {
				return fmt.Sprintf("%.1f× ctspec", v/ref)
			}
			return ""
		}
		var cli string
		if s, ok := f.metric(c.top+"/conntrack-cli", "cli-sample"); ok {
			cli = cell(fmt.Sprintf("%s scaled, not measured whole (%.0f of the 1,000 `-D` commands timed, time × %.0f)",
				fmtDuration(f.ns(c.top+"/conntrack-cli")), s, 1000/s), ratio(c.top+"/conntrack-cli"))
		} else {
			cli = cell(f.timed(c.top+"/conntrack-cli", "one `-D`, whole process under nsenter"), ratio(c.top+"/conntrack-cli"))
		}
		rss := f.childRun(c.top + "/peak-rss/ctspec")
		if s := f.childRun(c.top + "/peak-rss/ctspec-scan"); s != "" {
			rss = "without kernel filters, " + s
		}
		row(c.title,
			cell(f.timed(c.top+"/ctspec", "one `Cleanup`"), f.timed(c.top+"/ctspec-scan", "one `Cleanup` without kernel filters: one dump"), rss),
			"",
			cell(f.timed(c.top+"/vishvananda", "`ConntrackDeleteFilters`: whole dump, match in Go, one delete per flow"), ratio(c.top+"/vishvananda")),
			"", cli)
	}
	ev := func(name, method string) string {
		v, ok := f.metric(name, "recv/expected")
		if !ok {
			return ""
		}
		o, _ := f.metric(name, "overruns")
		return fmt.Sprintf("%.0f%% received, %.0f overruns (%s)", 100*v, o, method)
	}
	row("events of a 200k burst (create 100k, flush)",
		cell(ev("Events/ctspec-default", "`Listener`, default buffer, decodes and counts"),
			ev("Events/ctspec-256MiB", "`Listener`, 256 MiB buffer, decodes and counts"),
			ev("Events/ctspec-cli-default", "`ctspec -E`, default buffer, text into a pipe"),
			ev("Events/ctspec-cli-256MiB", "`ctspec -E -b 268435456`, text into a pipe")),
		"", "", "",
		cell(ev("Events/conntrack-cli-default", "`-E`, default buffer, text into a pipe"),
			ev("Events/conntrack-cli-256MiB", "`-E -b 268435456`, text into a pipe; 1.4.7 applies `-b` to its other socket, not the one that receives events")))
}

// commandRows are the rows of the command table: the CommandRuns row, its
// title, and the floors measured in it.
var commandRows = []struct {
	name, title string
	floors      []string
}{
	{"small-C", "small call: `-C`", []string{"floor-netlink", "floor-raw", "go-hello", "true"}},
	{"small-G", "small call: `-G` of one flow", nil},
	{"small-I", "small call: `-I` of one flow", nil},
	{"R-100k", "`-R`, 100k `-I` lines", nil},
	{"R-1M", "`-R`, 1M `-I` lines (`-F` every 200k)", nil},
	{"D-mark", "`-D -m 1/1`, 50k of 100k", []string{"ctspec-kernel-flush", "flush-all"}},
	{"D-udp-53", "`-D -p udp --dport 53`, 40k of 100k", []string{"ctspec-kernel-flush", "flush-all"}},
	{"D-timewait", "`-D -p tcp --state TIME_WAIT`, 20k of 100k", []string{"flush-all"}},
	{"L", "`-L > /dev/null`, 100k", []string{"raw-dump"}},
	{"L-xml", "`-L -o xml > /dev/null`, 100k", []string{"raw-dump"}},
}

// floorNames describe the floors of the command table.
var floorNames = map[string]string{
	"floor-netlink":       "Go program, one request through mdlayher/netlink",
	"floor-raw":           "Go program, one request on a raw socket",
	"go-hello":            "Go program that only prints",
	"true":                "`/bin/true`",
	"ctspec-kernel-flush": "`ctspec --kernel-flush`, one filtered kernel flush, whole process",
	"flush-all":           "one unfiltered kernel flush of the same table, in-process",
	"raw-dump":            "raw netlink receive of the same dump, in-process",
}

func commandTable(w io.Writer, f figures) {
	if f.ns("CommandRuns/L/ctspec") == 0 && f.ns("CommandRuns/small-G/ctspec") == 0 {
		return
	}
	fmt.Fprintln(w, "| command, whole process | conntrack 1.4.7 | ctspec (static) | conntrack ÷ ctspec | floors, same run |")
	fmt.Fprintln(w, "|---|--:|--:|--:|---|")
	proc := func(name string) string {
		ns := f.ns(name)
		if ns == 0 {
			return ""
		}
		s := fmtDuration(ns)
		if v, ok := f.metric(name, "cpu-ms"); ok {
			s += fmt.Sprintf(" (CPU %s)", fmtDuration(v*1e6))
		}
		if v, ok := f.metric(name, "peak-MiB"); ok {
			s += fmt.Sprintf(", %.0f MiB", v)
		}
		return s
	}
	for _, r := range commandRows {
		p := "CommandRuns/" + r.name + "/"
		ct, cs := proc(p+"conntrack"), proc(p+"ctspec")
		if ct == "" && cs == "" {
			continue
		}
		if d := proc(p + "ctspec-dynamic"); d != "" {
			cs += "; dynamic, as plain `go build` makes it: " + d
		}
		ratio := ""
		if a, b := f.ns(p+"conntrack"), f.ns(p+"ctspec"); a > 0 && b > 0 {
			ratio = fmt.Sprintf("%.2f", a/b)
		}
		var floors []string
		for _, fl := range r.floors {
			if s := proc(p + fl); s != "" {
				floors = append(floors, floorNames[fl]+": "+s)
			}
		}
		if r.name == "D-timewait" {
			floors = append(floors, "no filtered kernel flush: the kernel cannot flush by state")
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.title, ct, cs, ratio, strings.Join(floors, "; "))
	}
	small, _ := f.metric("CommandRuns/small-G/ctspec", "runs")
	big, _ := f.metric("CommandRuns/L/ctspec", "runs")
	if small > 0 || big > 0 {
		fmt.Fprintf(w, "\nEach row ran every tool in turn, interleaved, in one namespace, processes forked from a thread inside it; times are medians (of %.0f runs for the small calls, %.0f for the others, one for `-R` of 1M), CPU time and peak RSS are of the median run; in-process floors pay no process start.\n", small, big)
	}
}
