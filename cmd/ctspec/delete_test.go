package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctspec/ctspec/internal/nstest"
)

// deleteSeed is the table the -D tests start from: every filter of -D
// selects some of it and leaves some.
var deleteSeed = [][]string{
	{"-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "-u", "ASSURED,SEEN_REPLY", "-m", "5"},
	{"-p", "tcp", "-s", "192.0.2.3", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "SYN_SENT", "-w", "7"},
	{"-p", "tcp", "-s", "192.0.2.4", "-d", "192.0.2.2", "--sport", "11", "--dport", "20", "--state", "TIME_WAIT", "-m", "0x11"},
	{"-p", "tcp", "-s", "192.0.2.5", "-d", "192.0.2.2", "-r", "198.51.100.3", "-q", "192.0.2.5", "--sport", "10", "--dport", "20", "--reply-port-src", "30", "--reply-port-dst", "10", "--state", "FIN_WAIT"},
	{"-p", "tcp", "-s", "198.51.100.7", "-d", "192.0.2.2", "--sport", "12", "--dport", "22", "--state", "ESTABLISHED", "--orig-zone", "7"},
	{"-p", "tcp", "-s", "198.51.100.8", "-d", "192.0.2.2", "--sport", "12", "--dport", "22", "--state", "ESTABLISHED", "--reply-zone", "7"},
	{"-p", "udp", "-s", "192.0.2.1", "-d", "192.0.2.53", "--sport", "1053", "--dport", "53", "-m", "2"},
	{"-p", "udp", "-s", "192.0.2.6", "-d", "192.0.2.53", "--sport", "1054", "--dport", "53", "-m", "0x12"},
	{"-p", "udplite", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20"},
	{"-p", "icmp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "55"},
	{"-p", "icmp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "56"},
	{"-p", "icmpv6", "-s", "2001:db8::1", "-d", "2001:db8::2", "--icmpv6-type", "128", "--icmpv6-code", "0", "--icmpv6-id", "55"},
	{"-p", "sctp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "--orig-vtag", "1", "--reply-vtag", "2"},
	{"-p", "sctp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "11", "--dport", "20", "--state", "COOKIE_WAIT", "--orig-vtag", "1", "--reply-vtag", "2"},
	{"-p", "gre", "-s", "192.0.2.1", "-d", "192.0.2.2", "--srckey", "1", "--dstkey", "2"},
	{"-p", "99", "-s", "192.0.2.9", "-d", "192.0.2.2"},
	{"-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--sport", "5", "--dport", "6", "--src-nat", "203.0.113.9"},
	{"-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.3", "--sport", "5", "--dport", "6", "--dst-nat", "203.0.113.8:99"},
	{"-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.4", "--sport", "5", "--dport", "6", "--dst-nat", "203.0.113.8"},
	{"-p", "udp", "-s", "2001:db8::1", "-d", "2001:db8::2", "--sport", "5", "--dport", "53", "-n", "2001:db8::9", "-m", "2"},
	{"-p", "udp", "-s", "2001:db8:1::7", "-d", "2001:db8::2", "--sport", "6", "--dport", "53", "-u", "SEEN_REPLY"},
	{"-p", "tcp", "-s", "::ffff:192.0.2.4", "-d", "::192.0.2.4", "--sport", "5", "--dport", "6", "--state", "CLOSE"},
}

// seedDelete fills a new namespace with deleteSeed, all in one nsenter.
func seedDelete(t *testing.T) *nstest.NS {
	t.Helper()
	ns := nstest.New(t)
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, args := range deleteSeed {
		script.WriteString("conntrack -I -t 1000")
		for _, a := range args {
			script.WriteString(" " + strconv.Quote(a))
		}
		script.WriteString(" 2>/dev/null\n")
	}
	ns.Run(t, "sh", "-c", script.String())
	if n := strings.Count(ns.Run(t, "conntrack", "-L"), "\n"); n != len(deleteSeed) {
		t.Fatalf("seeded %d flows, want %d", n, len(deleteSeed))
	}
	return ns
}

var xmlIDRE = regexp.MustCompile(`<id>\d+</id>`)

// sortedOutput sorts a result's standard output's lines: two namespaces
// hash their tables with seeds of their own, so flows come in different
// orders. Flow ids, which differ between namespaces too, are replaced.
func sortedOutput(r result) result {
	r.stdout = sortVolatile(xmlIDRE.ReplaceAllString(r.stdout, "<id>N</id>"))
	return r
}

// TestDeleteFilters runs conntrack -D and ctspec -D with the same filter
// on two identical tables and compares what they print, their exit status
// and the tables they leave.
// deleteFilterArgs are the filters TestDeleteFilters gives -D.
var deleteFilterArgs = [][]string{
	{},
	{"-s", "192.0.2.1"},
	{"-d", "192.0.2.2"},
	{"-d", "192.0.2.53", "-s", "192.0.2.6"},
	{"-r", "198.51.100.3"},
	{"-q", "192.0.2.1"},
	{"-s", "2001:db8::1"},
	{"-s", "::ffff:192.0.2.4"},
	{"-s", "192.0.2.0/24"},
	{"-s", "192.0.2.0/30"},
	{"-d", "2001:db8::/64"},
	{"-s", "192.0.2.0", "--mask-src", "255.255.255.0"},
	{"-s", "192.0.2.0", "--mask-src", "255.0.255.0"},
	{"-d", "192.0.2.0", "--mask-dst", "255.255.255.192"},
	{"-p", "tcp"},
	{"-p", "6"},
	{"-p", "udp", "--dport", "53"},
	{"-p", "udp", "--sport", "1053"},
	{"-p", "tcp", "--sport", "10", "--dport", "20"},
	{"-p", "tcp", "--reply-port-src", "30"},
	{"-p", "tcp", "--reply-port-dst", "10"},
	{"-p", "tcp", "--state", "ESTABLISHED"},
	{"-p", "tcp", "--state", "TIME_WAIT", "-s", "192.0.2.4"},
	{"-p", "sctp", "--state", "ESTABLISHED"},
	{"-p", "icmp", "--icmp-type", "8"},
	{"-p", "icmp", "--icmp-id", "56"},
	{"-p", "icmpv6", "--icmpv6-id", "55"},
	{"-p", "gre", "--srckey", "9"},
	{"-p", "udplite"},
	{"-p", "99"},
	{"-m", "2"},
	{"-m", "0x10/0xf0"},
	{"-m", "1/0x1"},
	{"-m", "1/0"},
	{"-m", "0/0"},
	{"-w", "7"},
	{"-w", "0", "-p", "tcp"},
	{"--orig-zone", "7"},
	{"--reply-zone", "7"},
	{"-u", "ASSURED"},
	{"-u", "SEEN_REPLY"},
	{"-u", "UNREPLIED"},
	{"-f", "ipv6"},
	{"-f", "ipv4", "-p", "udp"},
	{"-f", "ipv6", "-p", "udp", "-m", "2"},
	{"-n"},
	{"-g"},
	{"-n", "-g"},
	{"--src-nat", "203.0.113.9"},
	{"-g", "203.0.113.8:99"},
	{"-g", "203.0.113.8:98"},
	{"-g", "203.0.113.8"},
	{"-n", "2001:db8::9", "-p", "udp"},
	{"-i", "1"},
	{"-s", "192.0.2.99"},
	{"-p", "tcp", "-o", "xml"},
	{"-p", "udp", "-o", "save"},
	{"-p", "tcp", "-o", "extended"},
}

func TestDeleteFilters(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	for _, args := range deleteFilterArgs {
		args := append([]string{"-D"}, args...)
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var res [2]result
			var tables [2]string
			var a ages
			for i, prog := range []string{"conntrack", bin} {
				a.setUp(i)
				ns := seedDelete(t)
				res[i] = sortedOutput(runIn(t, ns, "", prog, args...))
				tables[i] = canonicalTable(t, ns)
				a.listed(i)
			}
			if diff := diffResults(res[0], res[1], a.skew()); diff != "" {
				t.Errorf("(-conntrack +ctspec)\n%s", diff)
			}
			if diff := diffVolatile(tables[0], tables[1], a.skew()); diff != "" {
				t.Errorf("tables left (-conntrack +ctspec)\n%s", diff)
			}
		})
	}
}

// TestDeleteDryRun checks that --dry-run prints the plan and the number of
// flows that match, and leaves the table alone.
func TestDeleteDryRun(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	ns := seedDelete(t)
	before := tableNow(t, ns)
	for _, tc := range []struct {
		args []string
		want []string // lines of standard output, as regular expressions
	}{
		{[]string{"-p", "udp"}, []string{
			`^kernel \S+: dump filters: .*; flush filters: .*$`,
			`^kernel flushes: 0$`,
			`^scan: one dump \(ipv4\+ipv6, orig tuple \(proto 17\)\) for 1 matchers: 1 tested against every flow$`,
			`^matcher 0: scan, to print each deleted flow \(a kernel flush does not report what it removes; see --kernel-flush\)$`,
			`^dry run: 7 flow entries match; nothing has been deleted\.$`,
		}},
		{[]string{"-m", "2", "-d", "192.0.2.53"}, []string{
			`^scan: one dump \(ipv4, mark 0x2/0xffffffff\) for 1 matchers: 1 by orig-dst, 0 tested against every flow$`,
			`^dry run: 1 flow entries match; nothing has been deleted\.$`,
		}},
		{[]string{"-p", "udp", "--kernel-flush"}, []string{
			`^kernel flushes: 2$`,
			`^  matcher 0: flush ipv4, orig tuple \(proto 17\)$`,
			`^  matcher 0: flush ipv6, orig tuple \(proto 17\)$`,
			`^scan: none$`,
			`^matcher 0: kernel flush$`,
			`^dry run: 7 flow entries match; nothing has been deleted\.$`,
		}},
		{[]string{"-g", "203.0.113.8", "--kernel-flush"}, []string{
			`^kernel flushes: 0$`,
			`^scan: one dump \(ipv4\) for 1 matchers: 1 by reply-src, 0 tested against every flow$`,
			`^matcher 0: scan, since the kernel cannot evaluate every filter given`,
			`^dry run: 2 flow entries match; nothing has been deleted\.$`,
		}},
		{[]string{"-s", "192.0.2.99"}, []string{
			`^dry run: 0 flow entries match; nothing has been deleted\.$`,
		}},
	} {
		args := append(append([]string{"-D"}, tc.args...), "--dry-run")
		r := runIn(t, ns, "", bin, args...)
		if r.status != 0 || r.stderr != "" {
			t.Errorf("%v: status %d, stderr %q", args, r.status, r.stderr)
		}
		lines := strings.Split(r.stdout, "\n")
		for _, w := range tc.want {
			re := regexp.MustCompile(w)
			found := false
			for _, l := range lines {
				found = found || re.MatchString(l)
			}
			if !found {
				t.Errorf("%v: no line matches %s in:\n%s", args, w, r.stdout)
			}
		}
		before = unchangedTable(t, ns, before, args)
	}
	// The count is what conntrack lists with the same filter.
	for _, args := range [][]string{{"-p", "tcp"}, {"-n"}, {"-s", "192.0.2.0/24"}, {"-m", "0x10/0xf0"}} {
		list := runIn(t, ns, "", "conntrack", append([]string{"-L"}, args...)...)
		var n int
		if m := regexp.MustCompile(`(\d+) flow entries have been shown`).FindStringSubmatch(list.stderr); m != nil {
			n, _ = strconv.Atoi(m[1])
		} else {
			t.Fatalf("conntrack -L %v: %q", args, list.stderr)
		}
		r := runIn(t, ns, "", bin, append(append([]string{"-D"}, args...), "--dry-run")...)
		if want := "dry run: " + strconv.Itoa(n) + " flow entries match"; n == 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("-D %v --dry-run: want %q (n > 0) in:\n%s", args, want, r.stdout)
		}
	}
	unchangedTable(t, ns, before, []string{"the dry runs"})
}

// TestDeleteKernelFlush checks that --kernel-flush leaves the table that
// conntrack -D leaves, prints no flows, and never prints a count it does
// not know.
func TestDeleteKernelFlush(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	for _, tc := range []struct {
		args  []string
		flush bool // whether the kernel flushes (on kernels with tuple flushes)
	}{
		{[]string{"-p", "udp"}, true},
		{[]string{"-m", "2"}, true},
		{[]string{"-s", "192.0.2.1"}, true},
		{[]string{"-s", "192.0.2.1", "-p", "tcp", "--dport", "20"}, true},
		{[]string{"-f", "ipv6", "-p", "udp"}, true},
		{[]string{"-u", "ASSURED"}, true},
		{[]string{"-n"}, false},
		{[]string{"-s", "192.0.2.0/24"}, false},
		{[]string{"-p", "tcp", "--state", "ESTABLISHED"}, false},
		{[]string{"-s", "192.0.2.99"}, false},
	} {
		args := append([]string{"-D"}, tc.args...)
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var a ages
			a.setUp(0)
			want := seedDelete(t)
			wantRes := runIn(t, want, "", "conntrack", args...)
			a.setUp(1)
			got := seedDelete(t)
			plan := runIn(t, got, "", bin, append(args, "--kernel-flush", "--dry-run")...)
			flushes := !strings.Contains(plan.stdout, "kernel flushes: 0\n")
			if tc.flush && !flushes && strings.Contains(plan.stdout, "flush filters: family mark status zone tuple") {
				t.Fatalf("no kernel flush planned:\n%s", plan.stdout)
			}
			r := runIn(t, got, "", bin, append(args, "--kernel-flush")...)
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
			if flushes {
				if r.status != 0 || !strings.Contains(r.stderr, "the kernel does not report how many") ||
					regexp.MustCompile(`\d+ flow entries have been deleted\.`).MatchString(r.stderr) {
					t.Errorf("status %d, stderr %q", r.status, r.stderr)
				}
			} else if r.status != wantRes.status || r.stderr != wantRes.stderr {
				t.Errorf("scan: status %d, stderr %q; conntrack: %d, %q", r.status, r.stderr, wantRes.status, wantRes.stderr)
			}
			wantTable := canonicalTable(t, want)
			a.listed(0)
			gotTable := canonicalTable(t, got)
			a.listed(1)
			if diff := diffVolatile(wantTable, gotTable, a.skew()); diff != "" {
				t.Errorf("tables left (-conntrack +ctspec)\n%s", diff)
			}
		})
	}
}

// TestDeleteBadOptions checks that wrong uses of -D fail with a clear
// message and a non-zero status, and delete nothing. Where conntrack has
// the same option, the output must be its output.
func TestDeleteBadOptions(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	ns := seedDelete(t)
	before := tableNow(t, ns)
	for _, tc := range []struct {
		args []string
		want string // ctspec's message; "" to compare with conntrack
	}{
		{[]string{"-L", "--dry-run"}, "Illegal option `--dry-run' with this command"},
		{[]string{"-F", "--kernel-flush"}, "Illegal option `--kernel-flush' with this command"},
		{[]string{"-D", "expect", "-s", "192.0.2.1", "-d", "192.0.2.2", "-p", "tcp", "--dry-run"}, "Illegal option `--dry-run' with this command"},
		{[]string{"-D", "--dry-run", "-o", "xml"}, "--dry-run prints the plan, not flows: it takes no `--output'"},
		{[]string{"-D", "--kernel-flush", "-o", "save"}, "--kernel-flush prints no flows: it takes no `--output'"},
		{[]string{"-D", "--dry-run=yes"}, "unknown option `--dry-run=yes'"},
		{[]string{"-D", "-j"}, ""},
		{[]string{"-D", "-z"}, ""},
		{[]string{"-D", "--mask-src", "255.255.255.0"}, ""},
		{[]string{"-D", "-s", "192.0.2.1", "-d", "::1"}, ""},
		{[]string{"-D", "-s", "192.0.2.1/33"}, ""},
		{[]string{"-D", "-p", "tcp", "--state", "FOO"}, ""},
		{[]string{"-D", "-p", "tcp", "--icmp-type", "8"}, ""},
		{[]string{"-D", "-u", "FOO"}, ""},
		{[]string{"-D", "-l", "nosuchlabel"}, ""},
		{[]string{"-D", "-f", "ipv7"}, ""},
		{[]string{"-D", "-n", "[::1"}, ""},
		{[]string{"-D", "-n", "192.0.2.1:x"}, ""},
		{[]string{"-D", "-b", "10"}, ""},
	} {
		start := time.Now()
		got := runIn(t, ns, "", bin, tc.args...)
		if got.status == 0 {
			t.Errorf("%v: status 0", tc.args)
		}
		if tc.want == "" {
			want := runIn(t, ns, "", "conntrack", tc.args...)
			// ctspec ran first.
			if diff := diffResults(want, got, -time.Since(start)); diff != "" {
				t.Errorf("%v (-conntrack +ctspec)\n%s", tc.args, diff)
			}
		} else {
			msg := versionString + ": " + tc.want + "\n"
			if got.status != 2 || !strings.HasPrefix(got.stderr, msg) || got.stdout != "" {
				t.Errorf("%v: status %d, stdout %q, stderr %q; want status 2 and %q", tc.args, got.status, got.stdout, got.stderr, msg)
			}
		}
		before = unchangedTable(t, ns, before, tc.args)
	}
}

// TestDeleteHelp checks that plain -h stays conntrack's text and that -h
// with an option of ctspec's own documents them.
func TestDeleteHelp(t *testing.T) {
	bin := ctspecBin(t)
	ns := nstest.New(t)
	out := func(args ...string) string {
		r := runIn(t, ns, "", bin, args...)
		if r.status != 0 || r.stderr != "" {
			t.Fatalf("%v: status %d, stderr %q", args, r.status, r.stderr)
		}
		return r.stdout
	}
	plain := out("-h")
	if strings.Contains(plain, "--dry-run") || !strings.Contains(plain, "Command line interface for the connection tracking system") {
		t.Errorf("-h is not conntrack's text:\n%s", plain)
	}
	for _, opt := range []string{"--dry-run", "--kernel-flush"} {
		got := out("-h", opt)
		if !strings.HasPrefix(got, plain) || !strings.Contains(got, "  --dry-run\t") || !strings.Contains(got, "  --kernel-flush\t") {
			t.Errorf("-h %s:\n%s", opt, got)
		}
	}
}

// tableAt is a canonicalTable and when it was taken.
type tableAt struct {
	table string
	at    time.Time
}

// tableNow returns the canonicalTable of ns and the time.
func tableNow(t *testing.T, ns *nstest.NS) tableAt {
	t.Helper()
	return tableAt{canonicalTable(t, ns), time.Now()}
}

// unchangedTable fails the test if the table of ns differs from before in
// more than the timeouts that ticked since, and returns the table now, to
// compare with after the next step.
func unchangedTable(t *testing.T, ns *nstest.NS, before tableAt, what []string) tableAt {
	t.Helper()
	after := tableNow(t, ns)
	if diff := diffVolatile(before.table, after.table, after.at.Sub(before.at)); diff != "" {
		t.Fatalf("%v changed the table:\n%s", what, diff)
	}
	return after
}
