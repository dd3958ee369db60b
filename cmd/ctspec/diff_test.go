package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctspec/ctspec/internal/nstest"
)

// The differential tests run conntrack(8) and ctspec on the same table in
// a network namespace the test creates, and compare standard output,
// standard error and the exit status. Timeouts and ages, which tick between
// two runs made back to back, are compared within a few seconds
// (volatile_test.go); the rest must be identical.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// ctspecBin builds the command once per test binary.
func ctspecBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ctspec-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ctspec")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// needConntrack skips the test without conntrack(8), or fails it when
// nstest.RequireKernelEnv asks for kernel tests to run.
func needConntrack(t *testing.T) {
	t.Helper()
	nstest.RequireCommands(t, "conntrack")
}

type result struct {
	stdout, stderr string
	status         int
}

func runIn(t *testing.T, ns *nstest.NS, stdin string, name string, args ...string) result {
	t.Helper()
	cmd := ns.Command(name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	status := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		status = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return result{o.String(), e.String(), status}
}

// usageRE matches the program name in usage text.
var usageRE = regexp.MustCompile(`(?m)^Usage: \S+ `)

// compareRun runs conntrack and ctspec with args and reports differences.
func compareRun(t *testing.T, ns *nstest.NS, args ...string) {
	t.Helper()
	bin := ctspecBin(t)
	start := time.Now()
	want := runIn(t, ns, "", "conntrack", args...)
	got := runIn(t, ns, "", bin, args...)
	if diff := diffResults(want, got, time.Since(start)); diff != "" {
		t.Errorf("conntrack %s: (-conntrack +ctspec)\n%s", strings.Join(args, " "), diff)
	}
}

// richTable fills the namespace's table with flows of many kinds: created
// ones (TCP in several states, UDP, UDP-Lite, ICMP, ICMPv6, SCTP, GRE, an
// unknown protocol, NAT, marks, zones, IPv4 and IPv6) and real loopback
// traffic, with accounting and timestamps on.
func richTable(t *testing.T, ns *nstest.NS) {
	t.Helper()
	ns.Sysctl(t, "net.netfilter.nf_conntrack_acct", "1")
	ns.Sysctl(t, "net.netfilter.nf_conntrack_timestamp", "1")
	for _, args := range [][]string{
		{"-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "-u", "ASSURED,SEEN_REPLY", "-m", "5"},
		{"-p", "tcp", "-s", "192.0.2.3", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "SYN_SENT", "-w", "7"},
		{"-p", "tcp", "-s", "192.0.2.4", "-d", "192.0.2.2", "--sport", "11", "--dport", "20", "--state", "TIME_WAIT", "-m", "0x11"},
		{"-p", "tcp", "-s", "192.0.2.5", "-d", "192.0.2.2", "-r", "198.51.100.3", "-q", "192.0.2.5", "--sport", "10", "--dport", "20", "--reply-port-src", "30", "--reply-port-dst", "10", "--state", "FIN_WAIT"},
		{"-p", "udp", "-s", "192.0.2.1", "-d", "192.0.2.53", "--sport", "1053", "--dport", "53", "-m", "2"},
		{"-p", "udplite", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20"},
		{"-p", "icmp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "55"},
		{"-p", "icmpv6", "-s", "2001:db8::1", "-d", "2001:db8::2", "--icmpv6-type", "128", "--icmpv6-code", "0", "--icmpv6-id", "55"},
		{"-p", "sctp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "--orig-vtag", "1", "--reply-vtag", "2"},
		{"-p", "gre", "-s", "192.0.2.1", "-d", "192.0.2.2", "--srckey", "1", "--dstkey", "2"},
		{"-p", "99", "-s", "192.0.2.9", "-d", "192.0.2.2"},
		{"-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--sport", "5", "--dport", "6", "--src-nat", "203.0.113.9"},
		{"-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.3", "--sport", "5", "--dport", "6", "--dst-nat", "203.0.113.8:99"},
		{"-p", "udp", "-s", "2001:db8::1", "-d", "2001:db8::2", "--sport", "5", "--dport", "53", "-n", "2001:db8::9", "-m", "2"},
		{"-p", "tcp", "-s", "::ffff:192.0.2.4", "-d", "::192.0.2.4", "--sport", "5", "--dport", "6", "--state", "CLOSE"},
	} {
		ns.Run(t, "conntrack", append(append([]string{"-I"}, args...), "-t", "1000")...)
	}
	// Real traffic over loopback, IPv4 and IPv6: counters, ASSURED and a
	// TCP connection in TIME_WAIT or ESTABLISHED. The kernel tracks
	// traffic only once a ruleset uses conntrack.
	nstest.RequireCommands(t, "nft")
	nftOutputRule(t, ns, "ct state new counter")
	err := ns.Do(func() error {
		for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				c, err := l.Accept()
				if err != nil {
					return
				}
				b := bufio.NewReader(c)
				line, _ := b.ReadString('\n')
				c.Write([]byte("echo " + line))
				c.Close()
			}()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				return err
			}
			c.Write([]byte("hello\n"))
			bufio.NewReader(c).ReadString('\n')
			c.Close()
			<-done
			l.Close()
			u, err := net.ListenPacket("udp", strings.Replace(addr, ":0", ":0", 1))
			if err != nil {
				return err
			}
			uc, err := net.Dial("udp", u.LocalAddr().String())
			if err != nil {
				return err
			}
			uc.Write([]byte("ping"))
			buf := make([]byte, 16)
			u.SetReadDeadline(time.Now().Add(time.Second))
			if _, from, err := u.ReadFrom(buf); err == nil {
				u.WriteTo([]byte("pong"), from)
			}
			uc.SetReadDeadline(time.Now().Add(time.Second))
			uc.Read(buf)
			uc.Close()
			u.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDifferentialListing(t *testing.T) {
	needConntrack(t)
	ns := nstest.New(t)
	richTable(t, ns)
	for _, args := range [][]string{
		{"-L"},
		{"-L", "conntrack"},
		{"-L", "-o", "extended"},
		{"-L", "-o", "xml"},
		{"-L", "-o", "save"},
		{"-L", "-o", "id"},
		{"-L", "-o", "extended,id"},
		{"-L", "-o", "ktimestamp"},
		{"-L", "-o", "timestamp"},
		{"-L", "-o", "xml,ktimestamp"},
		{"-C"},
		{"-S"},
		{"-L", "-p", "udp", "--dport", "53"},
		{"-L", "-p", "tcp"},
		{"-L", "-p", "TCP"},
		{"-L", "-p", "6"},
		{"-L", "-p", "ipv6-icmp"},
		{"-L", "-p", "icmp", "--icmp-type", "8"},
		{"-L", "-p", "icmpv6"},
		{"-L", "-s", "192.0.2.1"},
		{"-L", "-s", "192.0.2.0/24"},
		{"-L", "-d", "192.0.2.2", "-p", "tcp"},
		{"-L", "-r", "198.51.100.3"},
		{"-L", "-q", "192.0.2.1"},
		{"-L", "-s", "2001:db8::1"},
		{"-L", "-s", "2001:db8::/64"},
		{"-L", "-m", "1/0xff"},
		{"-L", "-m", "5"},
		{"-L", "-m", "0x10/0xf0"},
		{"-L", "-w", "7"},
		{"-L", "-w", "0"},
		{"-L", "-f", "ipv6"},
		{"-L", "-f", "ipv4"},
		{"-L", "-p", "tcp", "--state", "ESTABLISHED"},
		{"-L", "-p", "tcp", "--state", "TIME_WAIT"},
		{"-L", "-u", "ASSURED"},
		{"-L", "-u", "UNREPLIED"},
		{"-L", "-u", "SEEN_REPLY"},
		{"-L", "-u", "!ASSURED"},
		{"-L", "-n"},
		{"-L", "-g"},
		{"-L", "-j"},
		{"-L", "--src-nat", "203.0.113.9"},
		{"-L", "-g", "203.0.113.8:99"},
		{"-L", "-g", "203.0.113.8:98"},
		{"-L", "-p", "tcp", "-o", "save"},
		{"-L", "dying"},
		{"-L", "unconfirmed"},
		{"-G", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20"},
		{"-G", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "21"},
		{"-G", "-p", "icmp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "55"},
		{"-G", "-p", "udp", "-s", "192.0.2.1", "-d", "192.0.2.53", "--sport", "1053", "--dport", "53", "-o", "xml"},
		{"-L", "expect"},
		{"-C", "expect"},
		{"-S", "expect"},
		{"--dum"},
		{"-L", "-o", "ext"},
	} {
		compareRun(t, ns, args...)
	}
}

func TestDifferentialErrors(t *testing.T) {
	needConntrack(t)
	ns := nstest.New(t)
	ns.Run(t, "conntrack", "-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "-t", "100")
	for _, args := range [][]string{
		{},
		{"-h"},
		{"-h", "-p", "tcp"},
		{"-L", "-s", "1.2.3.x"},
		{"-L", "-p", "foo"},
		{"-L", "-p", "300"},
		{"-L", "-p", "tcp", "--sport"},
		{"-L", "--sport", "1"},
		{"-L", "--foo"},
		{"-X"},
		{"--d"},
		{"-L", "-D"},
		{"-L", "-f", "ipv7"},
		{"-L", "-s", "192.0.2.1", "-d", "::1"},
		{"-L", "-s", "192.0.2.1", "-f", "ipv6"},
		{"-L", "-r", "192.0.2.1/24"},
		{"-L", "-s", "192.0.2.1/33"},
		{"-L", "-z", "-p", "tcp"},
		{"-L", "-u", "FOO"},
		{"-L", "-u", "!UNREPLIED"},
		{"-L", "-u", "s"},
		{"-L", "-o", "foo"},
		{"-L", "-o", "save,xml"},
		{"-L", "-l", "foo"},
		{"-L", "foo"},
		{"-L", "-e", "NEW"},
		{"-L", "-b", "10"},
		{"-L", "-n", "-j"},
		{"-E", "-z"},
		{"-I", "dying"},
		{"-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2"},
		{"-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "1", "--dport", "2", "-t", "10"},
		{"-I", "-p", "tcp", "-s", "192.0.2.1", "--sport", "1", "--dport", "2", "-t", "10", "--state", "ESTABLISHED"},
		{"-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "1", "-t", "10", "--state", "ESTABLISHED"},
		{"-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "1", "--dport", "2", "-t", "10", "--state", "FOO"},
		{"-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "-t", "10", "--state", "ESTABLISHED"},
		{"-G", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "1", "--dport", "3"},
		{"-D", "-p", "tcp", "-s", "192.0.2.9"},
		{"-R", "/nonexistent/file"},
	} {
		compareRun(t, ns, args...)
	}
}

// TestDifferentialModify runs the commands that change the table on two
// identical tables, one per command, and compares their output and the
// tables they leave.
func TestDifferentialModify(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	seed := [][]string{
		{"-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "-t", "1000", "-m", "1"},
		{"-I", "-p", "udp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "53", "-t", "1000", "-m", "2"},
		{"-I", "-p", "udp", "-s", "2001:db8::1", "-d", "2001:db8::2", "--sport", "10", "--dport", "53", "-t", "1000", "-m", "2"},
		{"-I", "-p", "icmp", "-s", "192.0.2.3", "-d", "192.0.2.2", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "1", "-t", "1000"},
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"delete-udp", []string{"-D", "-p", "udp"}},
		{"delete-mark", []string{"-D", "-m", "2"}},
		{"delete-src", []string{"-D", "-s", "192.0.2.1"}},
		{"delete-save", []string{"-D", "-f", "ipv6", "-o", "save"}},
		{"delete-none", []string{"-D", "-s", "192.0.2.99"}},
		{"flush", []string{"-F"}},
		{"create", []string{"-I", "-p", "tcp", "-s", "198.51.100.1", "-d", "198.51.100.2", "--sport", "1", "--dport", "2", "--state", "SYN_RECV", "-t", "50", "-m", "9"}},
		{"create-icmp", []string{"-I", "-p", "icmp", "-s", "198.51.100.1", "-d", "198.51.100.2", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "7", "-t", "50"}},
		{"create-exists", []string{"-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "-t", "50"}},
		{"add-exists", []string{"-A", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "-t", "50"}},
		{"add-exists-changes", []string{"-A", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "SYN_RECV", "-t", "50", "-m", "9", "-u", "ASSURED"}},
		{"add-exists-nat", []string{"-A", "-p", "udp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "53", "-t", "50", "--src-nat", "203.0.113.1"}},
		{"add-exists-reply", []string{"-A", "-p", "udp", "-r", "192.0.2.2", "-q", "192.0.2.1", "--reply-port-src", "53", "--reply-port-dst", "10", "-t", "50", "-m", "7"}},
		{"add-new", []string{"-A", "-p", "tcp", "-s", "198.51.100.1", "-d", "198.51.100.2", "--sport", "1", "--dport", "2", "--state", "SYN_RECV", "-t", "50", "-m", "9"}},
		{"add-new-v6", []string{"-A", "-p", "udp", "-s", "2001:db8::5", "-d", "2001:db8::6", "--sport", "5", "--dport", "6", "-t", "50", "-u", "SEEN_REPLY"}},
		{"add-missing-state", []string{"-A", "-p", "tcp", "-s", "198.51.100.1", "-d", "198.51.100.2", "--sport", "1", "--dport", "2", "-t", "50"}},
		{"add-bad-timeout", []string{"-A", "-p", "udp", "-s", "198.51.100.1", "-d", "198.51.100.2", "--sport", "1", "--dport", "2"}},
		{"create-nat", []string{"-I", "-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--sport", "5", "--dport", "6", "-t", "50", "--dst-nat", "203.0.113.1:77"}},
		{"create-reply", []string{"-I", "-p", "udp", "-r", "10.0.0.2", "-q", "10.0.0.1", "--reply-port-src", "6", "--reply-port-dst", "5", "-t", "50"}},
		{"create-v6", []string{"-I", "-p", "udp", "-s", "2001:db8::5", "-d", "2001:db8::6", "--sport", "5", "--dport", "6", "-t", "50", "-u", "SEEN_REPLY"}},
		// conntrack ignores an address attached to --src-nat and -g.
		{"create-nat-attached", []string{"-I", "-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--sport", "5", "--dport", "6", "-t", "50", "--src-nat=203.0.113.1"}},
		{"create-nat-attached-short", []string{"-I", "-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--sport", "5", "--dport", "6", "-t", "50", "-g203.0.113.1:77"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res [2]result
			var tables [2]string
			var a ages
			for i, prog := range []string{"conntrack", bin} {
				a.setUp(i)
				ns := nstest.New(t)
				for _, s := range seed {
					ns.Run(t, "conntrack", s...)
				}
				res[i] = runIn(t, ns, "", prog, tc.args...)
				// Each namespace hashes its table with a seed of its
				// own, so the order of flows differs between the two.
				res[i].stdout = sortVolatile(res[i].stdout)
				tables[i] = canonicalTable(t, ns)
				a.listed(i)
			}
			if diff := diffResults(res[0], res[1], a.skew()); diff != "" {
				t.Errorf("conntrack %s: (-conntrack +ctspec)\n%s", strings.Join(tc.args, " "), diff)
			}
			if diff := diffVolatile(tables[0], tables[1], a.skew()); diff != "" {
				t.Errorf("table after %s: (-conntrack +ctspec)\n%s", strings.Join(tc.args, " "), diff)
			}
		})
	}
}

// canonicalTable lists the table with conntrack in save format and in the
// default format, which has the mark, zone and helper that the save format
// lacks, each sorted so that two namespaces' tables compare regardless of
// hash order. Every value stays in the line of its flow.
func canonicalTable(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	return sortVolatile(strings.TrimSpace(ns.Run(t, "conntrack", "-L", "-o", "save"))) + "\n\n" +
		sortVolatile(strings.TrimSpace(ns.Run(t, "conntrack", "-L")))
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestDifferentialLoadFile loads a table saved with -o save into two empty
// namespaces, one with each program, and compares the tables.
func TestDifferentialLoadFile(t *testing.T) {
	needConntrack(t)
	src := nstest.New(t)
	richTable(t, src)
	saved := src.Run(t, "conntrack", "-L", "-o", "save")
	var tables [2]string
	var a ages
	for i, prog := range []string{"conntrack", ctspecBin(t)} {
		ns := nstest.New(t)
		a.setUp(i)
		r := runIn(t, ns, saved, prog, "-R", "-")
		if r.status != 0 || r.stdout != "" || r.stderr != "" {
			t.Fatalf("%s -R -: status %d\nstdout:\n%s\nstderr:\n%s", prog, r.status, r.stdout, r.stderr)
		}
		tables[i] = canonicalTable(t, ns)
		a.listed(i)
	}
	if diff := diffVolatile(tables[0], tables[1], a.skew()); diff != "" {
		t.Errorf("loaded tables differ (-conntrack +ctspec)\n%s", diff)
	}
}

// The differential tests of -E are in events_test.go.

// nftOutputRule installs in ns an nftables output chain with one rule: the
// kernel tracks traffic, or attaches labels, only once a rule uses them.
func nftOutputRule(t *testing.T, ns *nstest.NS, rule string) {
	t.Helper()
	ns.Run(t, "nft", "add table inet t")
	ns.Run(t, "nft", "add chain inet t out { type filter hook output priority 0 ; }")
	ns.Run(t, "nft", "add rule inet t out "+rule)
}
