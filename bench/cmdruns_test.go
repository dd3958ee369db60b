package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// cmdRunReps is how many times each command row runs each tool, the tools
// interleaved; the small call runs cmdSmallReps times.
const (
	cmdRunReps   = 5
	cmdSmallReps = 200
)

// cmdRunFlows is the size of the command rows' table.
const cmdRunFlows = 100_000

// cmdSpecs returns the command rows' table: half the flows with mark 1;
// 40% UDP to port 53, 20% TCP in TIME_WAIT, the rest established TCP.
func cmdSpecs(n int) []flowSpec {
	s := make([]flowSpec, n)
	for i := range s {
		switch i % 5 {
		case 0, 1:
			s[i] = specOf(i, unix.IPPROTO_UDP, uint32(i%2))
			s[i].dport = 53
		case 2:
			s[i] = specOf(i, unix.IPPROTO_TCP, uint32(i%2))
			s[i].dport = 80
			s[i].tcpState = ctnetlink.TCPStateTimeWait
		default:
			s[i] = specOf(i, unix.IPPROTO_TCP, uint32(i%2))
		}
	}
	return s
}

// loadFileLines writes a -R file of n creations, with a flush line before
// every 200,000th so that the table never holds more than 200k flows.
func loadFileLines(tb testing.TB, dir string, n int) string {
	tb.Helper()
	path := filepath.Join(dir, fmt.Sprintf("load-%d", n))
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		if i > 0 && i%200_000 == 0 {
			w.WriteString("-F\n")
		}
		fmt.Fprintf(w, "-I -p tcp -s 10.%d.%d.%d -d 198.51.100.1 --sport %d --dport 443 --state ESTABLISHED -t %d\n",
			byte(i>>16), byte(i>>8), byte(i), 32768+i%28000, flowTimeout)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// buildHello builds a Go program that prints one line and exits: the
// floor of any Go command's start-up.
func buildHello(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	src := filepath.Join(dir, "hello.go")
	if err := os.WriteFile(src, []byte("package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hello\\n\") }\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build hello: %v\n%s", err, out)
	}
	return installed(tb, bin)
}

// procRun is one whole-process run: wall time from fork to exit, the CPU
// time of the process and its children, and its peak RSS.
type procRun struct {
	wall   time.Duration
	cpu    time.Duration
	rssKiB int64
}

// runProc runs name with args inside ns, standard output on /dev/null,
// forked from a thread inside the namespace so that no nsenter start-up
// is timed. It fails unless the exit status is want. With timePath set it
// runs the command under GNU time for its peak RSS: a child that Go
// starts inherits, by vfork and exec, the test binary's own peak in its
// rusage, while one that GNU time forks does not. GNU time's start-up,
// about a millisecond, is then part of the wall time.
func runProc(tb testing.TB, ns *nstest.NS, want int, timePath, name string, args ...string) procRun {
	tb.Helper()
	var r procRun
	var stderr strings.Builder
	var rssFile string
	if timePath != "" {
		rssFile = filepath.Join(tb.TempDir(), "maxrss")
		args = append([]string{"-f", "%M", "-o", rssFile, name}, args...)
		name = timePath
	}
	err := ns.Do(func() error {
		cmd := exec.Command(name, args...)
		cmd.Stderr = &stderr
		t0 := time.Now()
		err := cmd.Run()
		r.wall = time.Since(t0)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		if code := cmd.ProcessState.ExitCode(); code != want {
			return fmt.Errorf("exit status %d, want %d (%v)", code, want, err)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	if rssFile != "" {
		b, err := os.ReadFile(rssFile)
		if err != nil {
			tb.Fatal(err)
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			tb.Fatalf("GNU time wrote no peak RSS: %q", b)
		}
		if _, err := fmt.Sscan(f[len(f)-1], &r.rssKiB); err != nil {
			tb.Fatalf("GNU time's peak RSS %q: %v", b, err)
		}
	}
	return r
}

// cmdRow is one row of the command table: the same arguments for each
// tool, the setup before each run (not timed), and the exit status.
type cmdRow struct {
	name  string
	args  []string
	tools []string // tool names: "conntrack", "ctspec", or floors
	setup func(tb testing.TB)
	want  int
	reps  int
	rss   bool // measure peak RSS under GNU time
}

// BenchmarkCommandRuns times the ctspec command against conntrack(8) as
// whole processes on a 100k-flow table: each row runs every tool in turn,
// cmdRunReps times (the small calls cmdSmallReps times), so that all see
// the same load, and reports the median wall time, and the CPU time and
// peak RSS of the median run. Processes fork from a thread inside the
// namespace: no nsenter. ctspec is built static (CGO_ENABLED=0), as the
// README tells users to install it; the small calls also run the
// dynamically linked binary a plain go build makes. The floors are
// measured in the same rows: for the small calls a Go program that only
// prints (start-up of any Go command), /bin/true, and the floor program
// of ./floor sending -C's one request on a raw socket and through
// mdlayher/netlink; for -D, ctspec --kernel-flush (one filtered kernel
// flush that cannot print what it removes) and one unfiltered kernel
// flush of the same table from this process; for -L, the raw netlink
// receive of the same dump from this process (no decoding, no output).
// The in-process floors pay no process start.
func BenchmarkCommandRuns(b *testing.B) {
	ctspec := buildCtspec(b)
	ctspecDyn := goBuild(b, "..", "./cmd/ctspec", true)
	floor := goBuild(b, ".", "./floor", false)
	hello := buildHello(b)
	t := newTable(b)
	raw, err := newRawDumper(t.ns)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(raw.close)
	dir := b.TempDir()
	file100k := loadFileLines(b, dir, cmdRunFlows)
	file1M := loadFileLines(b, dir, 1_000_000)
	flows := ctspecFlows(cmdSpecs(cmdRunFlows))
	refill := func(tb testing.TB) {
		t.flush(tb)
		t.fill(tb, flows, cmdRunFlows)
	}
	empty := func(tb testing.TB) { t.flush(tb) }
	one := ctspecFlows(tcpSpecs(1))
	small := func(tb testing.TB) {
		if t.count(tb) != 1 {
			t.flush(tb)
			t.fill(tb, one, 1)
		}
	}
	smallEmpty := func(tb testing.TB) {
		if t.count(tb) != 0 {
			t.flush(tb)
		}
	}
	tuple := []string{"-p", "tcp", "-s", one[0].TupleOrig.Src().String(), "-d", one[0].TupleOrig.Dst().String(),
		"--sport", fmt.Sprint(one[0].TupleOrig.Proto.SrcPort), "--dport", fmt.Sprint(one[0].TupleOrig.Proto.DstPort)}
	getArgs := append([]string{"-G"}, tuple...)
	createArgs := append(append([]string{"-I"}, tuple...), "--state", "ESTABLISHED", "-t", fmt.Sprint(flowTimeout))
	both := []string{"conntrack", "ctspec"}
	smallTools := []string{"conntrack", "ctspec", "ctspec-dynamic"}
	rows := []cmdRow{
		{"small-C", []string{"-C"}, append(smallTools, "floor-netlink", "floor-raw", "go-hello", "true"), small, 0, cmdSmallReps, false},
		{"small-G", getArgs, smallTools, small, 0, cmdSmallReps, false},
		{"small-I", createArgs, smallTools, smallEmpty, 0, cmdSmallReps, false},
		{"R-100k", []string{"-R", file100k}, both, empty, 0, cmdRunReps, true},
		{"R-1M", []string{"-R", file1M}, []string{"ctspec"}, empty, 0, 1, true},
		{"D-mark", []string{"-D", "-m", "1/1"}, append(both, "ctspec-kernel-flush", "flush-all"), refill, 0, cmdRunReps, true},
		{"D-udp-53", []string{"-D", "-p", "udp", "--dport", "53"}, append(both, "ctspec-kernel-flush", "flush-all"), refill, 0, cmdRunReps, true},
		{"D-timewait", []string{"-D", "-p", "tcp", "--state", "TIME_WAIT"}, append(both, "flush-all"), refill, 0, cmdRunReps, true},
		{"L", []string{"-L"}, append(both, "raw-dump"), nil, 0, cmdRunReps, true},
		{"L-xml", []string{"-L", "-o", "xml"}, append(both, "raw-dump"), nil, 0, cmdRunReps, true},
	}
	// inProcess are the floors this process runs itself, timed alone.
	inProcess := map[string]func(tb testing.TB){
		"flush-all": func(tb testing.TB) {
			if err := t.c.Flush(context.Background(), nil); err != nil {
				tb.Fatalf("flush: %v", err)
			}
		},
		"raw-dump": func(tb testing.TB) {
			n, err := raw.dump()
			if err != nil || n != cmdRunFlows {
				tb.Fatalf("raw dump: %d flows, want %d: %v", n, cmdRunFlows, err)
			}
		},
	}
	timePath, _ := exec.LookPath("/usr/bin/time")
	refill(b)
	results := map[string][]procRun{}
	for _, row := range rows {
		if row.setup == nil {
			refill(b)
		}
		for range row.reps {
			for _, tool := range row.tools {
				if row.setup != nil {
					row.setup(b)
				}
				if fn, ok := inProcess[tool]; ok {
					t0 := time.Now()
					fn(b)
					results[row.name+"/"+tool] = append(results[row.name+"/"+tool], procRun{wall: time.Since(t0)})
					continue
				}
				name, args, want := ctspec, row.args, row.want
				switch tool {
				case "conntrack":
					name = "conntrack"
				case "ctspec-dynamic":
					name = ctspecDyn
				case "ctspec-kernel-flush":
					args = append([]string{"--kernel-flush"}, args...)
				case "floor-netlink":
					name, args = floor, []string{"netlink"}
				case "floor-raw":
					name, args = floor, []string{"raw"}
				case "go-hello":
					name, args = hello, nil
				case "true":
					name, args = "/bin/true", nil
				}
				tp := ""
				if row.rss {
					tp = timePath
				}
				r := runProc(b, t.ns, want, tp, name, args...)
				results[row.name+"/"+tool] = append(results[row.name+"/"+tool], r)
			}
		}
	}
	for _, row := range rows {
		for _, tool := range row.tools {
			runs := results[row.name+"/"+tool]
			b.Run(row.name+"/"+tool, func(b *testing.B) {
				slices.SortFunc(runs, func(x, y procRun) int { return int(x.wall - y.wall) })
				med := runs[len(runs)/2]
				b.ReportMetric(float64(med.wall.Nanoseconds()), "ns/op")
				if med.rssKiB > 0 {
					b.ReportMetric(float64(med.rssKiB)/1024, "peak-MiB")
				}
				if med.cpu > 0 {
					b.ReportMetric(float64(med.cpu.Nanoseconds())/1e6, "cpu-ms")
				}
				b.ReportMetric(float64(len(runs)), "runs")
				if ref := results[row.name+"/conntrack"]; len(ref) > 0 && tool != "conntrack" {
					// conntrack's median over this tool's, from the same run.
					c := slices.Clone(ref)
					slices.SortFunc(c, func(x, y procRun) int { return int(x.wall - y.wall) })
					b.ReportMetric(float64(c[len(c)/2].wall)/float64(med.wall), "x-conntrack")
				}
			})
		}
	}
}
