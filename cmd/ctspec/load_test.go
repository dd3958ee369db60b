package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/ctspec/ctspec/internal/nstest"
)

// loadedTable lists the table of ns with conntrack, one sorted line per
// flow, without the timeouts, which count down while the test runs.
func loadedTable(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(ns.Run(t, "conntrack", "-L")), "\n") {
		f := strings.Fields(l)
		if len(f) > 3 {
			f[2] = "T" // protocol name, number, timeout
		}
		lines = append(lines, strings.Join(f, " "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestDifferentialLoadWindows loads files longer than one window of
// pipelined creations with conntrack and with ctspec, from standard input
// and from a file, and compares output, exit status and the table left:
// a failing line in a later window, on a window boundary, a parse error
// or a command -R does not take at the end (nothing is applied), and -A
// and -F lines between creations.
func TestDifferentialLoadWindows(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	create := func(i int) string {
		return fmt.Sprintf("-I -p udp -s 10.%d.%d.1 -d 192.0.2.2 --sport %d --dport 53 -t 500 -m %d", i>>8, i&255, 1000+i, i%3)
	}
	lines := func(n int, edit func(i int, l string) string) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(edit(i, create(i)))
			b.WriteByte('\n')
		}
		return b.String()
	}
	same := func(i int, l string) string { return l }
	for _, tc := range []struct {
		name, file string
	}{
		{"all", lines(2500, same)},
		{"fails-later-window", lines(2500, func(i int, l string) string {
			if i == 1700 {
				return create(10) // exists: conntrack stops here
			}
			return l
		})},
		{"fails-on-boundary", lines(2500, func(i int, l string) string {
			if i == loadWindow {
				return create(5)
			}
			return l
		})},
		{"parse-error-at-end", lines(2500, same) + "-I -p udp -s 10.0.0.1 --bogus\n"},
		{"list-at-end", lines(1500, same) + "-L\n"},
		{"add-and-flush", lines(1500, func(i int, l string) string {
			switch i {
			case 300:
				return "-A" + strings.TrimPrefix(create(10), "-I")
			case 1100:
				return "-F"
			}
			return l
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "flows")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, src := range []string{"-", path} {
				var res [2]result
				var tables [2]string
				for i, prog := range []string{"conntrack", bin} {
					ns := nstest.New(t)
					stdin := ""
					if src == "-" {
						stdin = tc.file
					}
					res[i] = runIn(t, ns, stdin, prog, "-R", src)
					tables[i] = loadedTable(t, ns)
				}
				if diff := cmp.Diff(res[0], res[1], cmp.AllowUnexported(result{})); diff != "" {
					t.Errorf("-R %s: (-conntrack +ctspec)\n%s", src, diff)
				}
				if diff := cmp.Diff(tables[0], tables[1]); diff != "" {
					t.Errorf("table after -R %s: (-conntrack +ctspec)\n%s", src, diff)
				}
			}
		})
	}
}

// TestAppendWords checks the quote-free fast path against splitLine.
func TestAppendWords(t *testing.T) {
	long := strings.Repeat("x", 1024)
	for _, line := range []string{
		"-I -p tcp -s 1.2.3.4",
		"  -I\t-p  tcp \t",
		"-I -p \"t c p\" -s 1.2.3.4",
		"",
		"   ",
		"-I " + long,
		"-I " + long[:1023],
		strings.Repeat("a ", 253),
		strings.Repeat("a ", 254),
	} {
		want, wantErr := splitLine(line)
		got, gotErr := appendWords([]string{"prog"}, line)
		if (wantErr != nil) != (gotErr != nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
			t.Errorf("%q: error %v, want %v", line, gotErr, wantErr)
			continue
		}
		if wantErr != nil {
			continue
		}
		if diff := cmp.Diff(append([]string{"prog"}, want...), got); diff != "" {
			t.Errorf("%q: (-want +got)\n%s", line, diff)
		}
	}
}

// TestLineReader checks lineReader against bufio.Scanner's lines, in
// reads of every size, across the blocks lineReader reads.
func TestLineReader(t *testing.T) {
	block := strings.Repeat("-I -p udp\n", lineBlock/10+7)
	for _, tt := range []struct {
		name, in string
	}{
		{"empty", ""},
		{"one line", "-F\n"},
		{"no final newline", "-F\n-I -p tcp"},
		{"carriage returns", "-F\r\n\r\n-I\r\r\n-D\r"},
		{"empty lines", "\n\n\n"},
		{"across blocks", block + "-F\n" + block},
		{"long line", "-F\n" + strings.Repeat("x", 3*lineBlock) + "\n-D\n"},
	} {
		for _, step := range []int{1, 7, 4096, len(tt.in) + 1} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, step), func(t *testing.T) {
				var want []string
				sc := bufio.NewScanner(strings.NewReader(tt.in))
				sc.Buffer(make([]byte, 64<<10), maxLine)
				for sc.Scan() {
					want = append(want, sc.Text())
				}
				if err := sc.Err(); err != nil {
					t.Fatal(err)
				}
				var got []string
				lr := lineReader{r: iotest.HalfReader(&stepReader{s: tt.in, step: step})}
				for line, ok := lr.next(); ok; line, ok = lr.next() {
					got = append(got, line)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
			})
		}
	}
}

// stepReader reads s at most step bytes at a time.
type stepReader struct {
	s    string
	step int
}

func (r *stepReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.step)], r.s)
	r.s = r.s[n:]
	return n, nil
}

// TestLineParserReuse parses lines one after another with one lineParser
// and checks each result against a lineParser of its own: nothing of a
// line may stay for the next.
func TestLineParserReuse(t *testing.T) {
	lines := []string{
		"-I -p tcp -s 1.2.3.4 -d 5.6.7.8 --sport 1 --dport 2 --state ESTABLISHED -t 10 -m 3 -u ASSURED",
		"-A -p udp -r 2001:db8::1 -q 2001:db8::2 --sport 5 --dport 6 -t 20 --zone 4",
		"-D -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 9 -s 1.2.3.4",
		"-I -p tcp -s 1.2.3.4 -d 5.6.7.8 --sport 1 --dport 2 -t 10",
		"-F",
		"-U -m 1/0xff --mark 2 -s 10.0.0.0/8",
		"-I -p sctp -s 1.2.3.4 -d 5.6.7.8 --sport 1 --dport 2 --state ESTABLISHED --orig-vtag 7 --reply-vtag 8 -t 10",
	}
	var reused lineParser
	for _, line := range lines {
		args, err := appendWords([]string{"conntrack"}, line)
		if err != nil {
			t.Fatal(err)
		}
		var fresh lineParser
		want, wantErr := fresh.parse(args, func(string) {})
		got, gotErr := reused.parse(args, func(string) {})
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("%q: error %v, want %v", line, gotErr, wantErr)
		}
		if wantErr != nil {
			continue
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%q: reused parser gives\n%+v\nwant\n%+v", line, *got, *want)
		}
	}
}

// loadBenchFile is a -R file of n TCP creations, as bench/ writes one.
func loadBenchFile(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "-I -p tcp -s 10.%d.%d.%d -d 198.51.100.1 --sport %d --dport 443 --state ESTABLISHED -t 3600\n",
			byte(i>>16), byte(i>>8), byte(i), 32768+i%28000)
	}
	return b.Bytes()
}

// BenchmarkLoadParse measures the first pass of -R over 100,000 lines:
// reading and parsing, without the kernel.
func BenchmarkLoadParse(b *testing.B) {
	file := loadBenchFile(100_000)
	b.SetBytes(int64(len(file)))
	b.ResetTimer()
	b.ReportAllocs()
	for range b.N {
		err := eachLine(bytes.NewReader(file), "conntrack", func(string) {}, func(*cmdLine) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadBuild measures the parsing side of the second pass of -R
// over 100,000 lines: reading, parsing and building the flows of each
// window, without the kernel.
func BenchmarkLoadBuild(b *testing.B) {
	file := loadBenchFile(100_000)
	b.SetBytes(int64(len(file)))
	b.ResetTimer()
	b.ReportAllocs()
	var batch createBatch
	for range b.N {
		err := eachLine(bytes.NewReader(file), "conntrack", func(string) {}, func(c *cmdLine) error {
			batch.add(c)
			if len(batch.flows) == loadWindow {
				batch.reset()
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestCheckLines runs the first pass of -R over files of many blocks on
// 1 to 8 goroutines and compares the warnings, the command -R does not
// take and the error with one parser reading the lines in order: the
// first error in the file wins, and no warning of a later line is
// printed, whichever goroutine finished first.
func TestCheckLines(t *testing.T) {
	const n = 12_000 // about 1.2 MB: five blocks
	line := func(i int) string {
		return fmt.Sprintf("-I -p tcp -s 10.%d.%d.%d -d 198.51.100.1 --sport %d --dport 443 --state ESTABLISHED -t 3600",
			byte(i>>16), byte(i>>8), byte(i), 1000+i%28000)
	}
	file := func(edits map[int]string) string {
		var b strings.Builder
		for i := range n {
			l, ok := edits[i]
			if !ok {
				l = line(i)
			}
			b.WriteString(l)
			b.WriteByte('\n')
		}
		return b.String()
	}
	warnLine := "-I -a -p udp -s 1.2.3.4 -d 5.6.7.8 --sport 1 --dport 2 -t 10"
	badLine := "-I -p tcp --bogus"
	cases := map[string]map[int]string{
		"clean":                 nil,
		"warnings":              {10: warnLine, 5000: warnLine, n - 1: warnLine},
		"error late":            {100: warnLine, n - 2: badLine, n - 1: warnLine},
		"error early":           {3: warnLine, 4: badLine, 9000: warnLine, 9001: badLine},
		"error in last block":   {n - 1: badLine},
		"unsupported":           {2500: "-L", 7000: "-S"},
		"unsupported and error": {2500: "-L", 11000: "-D -p tcp --bogus"},
		"error then bad quote":  {6000: badLine, 6001: "-I \"unterminated"},
		"comments and blanks":   {0: "# comment", 1: "", 2: "   ", 3: "\t# indented", 4000: warnLine},
	}
	// An error late in the first block, warnings on every line after it:
	// while the first block is parsed, later ones are read and parsed too.
	after := map[int]string{2000: badLine}
	for i := 2001; i < n; i++ {
		after[i] = warnLine
	}
	cases["warnings after the error"] = after
	for name, edits := range cases {
		in := file(edits)
		var wantWarn strings.Builder
		wantUnsupported := -1
		wantErr := eachLine(strings.NewReader(in), "conntrack", func(s string) { wantWarn.WriteString(s) }, func(c *cmdLine) error {
			if wantUnsupported < 0 && !loadable(c.cmd) {
				wantUnsupported = c.cmd
			}
			return nil
		})
		if wantErr != nil {
			wantUnsupported = -1 // the error wins: not compared
		}
		for _, workers := range []int{1, 2, 3, 8} {
			t.Run(fmt.Sprintf("%s/%d", name, workers), func(t *testing.T) {
				var warn strings.Builder
				unsupported, err := checkLines(iotest.HalfReader(strings.NewReader(in)), "conntrack", func(s string) { warn.WriteString(s) }, workers)
				if fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Fatalf("error %v, want %v", err, wantErr)
				}
				if err == nil && unsupported != wantUnsupported {
					t.Errorf("unsupported command %d, want %d", unsupported, wantUnsupported)
				}
				if warn.String() != wantWarn.String() {
					t.Errorf("warnings %q, want %q", warn.String(), wantWarn.String())
				}
			})
		}
	}
}

// BenchmarkLoadCheck measures the first pass of -R over 100,000 lines as
// the command runs it, on every core.
func BenchmarkLoadCheck(b *testing.B) {
	file := loadBenchFile(100_000)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for range b.N {
		if _, err := checkLines(bytes.NewReader(file), "conntrack", func(string) {}, runtime.GOMAXPROCS(0)); err != nil {
			b.Fatal(err)
		}
	}
}
