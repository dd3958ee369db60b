package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// dialNS returns a ctnetlink connection into ns, closed when the test ends.
func dialNS(t *testing.T, ns *nstest.NS) *ctnetlink.Conn {
	t.Helper()
	c, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ftpExpectation runs an FTP control connection on 127.0.0.1:21 inside ns
// whose PORT command makes the kernel's FTP helper add an expectation. The
// connection stays open until the test ends.
func ftpExpectation(t *testing.T, ns *nstest.NS) {
	t.Helper()
	ns.LoadFTPHelper(t)
	ns.FTPSession(t, "PORT 127,0,0,1,200,10")
}

// expectTable fills the namespace's expectation table: one the FTP helper
// made from real traffic, and the created ones of createExpectations.
func expectTable(t *testing.T, ns *nstest.NS) {
	t.Helper()
	ftpExpectation(t, ns)
	createExpectations(t, ns)
	// Without -f, conntrack lists the IPv4 expectations only.
	if out := ns.Run(t, "conntrack", "-C", "expect"); strings.TrimSpace(out) != "5" {
		t.Fatalf("conntrack -C expect: %q, want 5 IPv4 expectations", out)
	}
	if out := ns.Run(t, "conntrack", "-L", "expect", "-f", "ipv6"); strings.Count(out, "\n") != 1 {
		t.Fatalf("conntrack -L expect -f ipv6: %q, want 1 expectation", out)
	}
}

// createExpectations creates master flows with the FTP helper, and one
// with the TFTP helper, and one expectation of each: IPv4 and IPv6, TCP
// and UDP, with flags, with NAT, in a zone.
func createExpectations(t *testing.T, ns *nstest.NS) {
	t.Helper()
	c := dialNS(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type exp struct {
		proto      uint8
		src, dst   string
		sport      uint16
		dport      uint16
		zone       uint16
		flags      ctnetlink.ExpectFlags
		nat        bool
		expectPort uint16
	}
	for _, e := range []exp{
		{proto: unix.IPPROTO_UDP, src: "192.0.2.5", dst: "192.0.2.2", sport: 40004, dport: 69, expectPort: 50004},
		{src: "192.0.2.1", dst: "192.0.2.2", sport: 40000, dport: 21, flags: ctnetlink.ExpectFlagsPermanent, expectPort: 50000},
		{src: "192.0.2.3", dst: "192.0.2.2", sport: 40001, dport: 21, flags: ctnetlink.ExpectFlagsPermanent | ctnetlink.ExpectFlagsInactive, nat: true, expectPort: 50001},
		{src: "2001:db8::1", dst: "2001:db8::2", sport: 40002, dport: 21, expectPort: 50002},
		{src: "192.0.2.4", dst: "192.0.2.2", sport: 40003, dport: 21, zone: 7, expectPort: 50003},
	} {
		s, d := netip.MustParseAddr(e.src), netip.MustParseAddr(e.dst)
		proto, helper := e.proto, "tftp"
		var f ctnetlink.Flow
		if proto == 0 {
			proto, helper = unix.IPPROTO_TCP, "ftp"
			f.ProtoInfo.TCP.SetState(ctnetlink.TCPStateEstablished)
		}
		f.SetTupleOrig(ctnetlink.NewTuple(proto, netip.AddrPortFrom(s, e.sport), netip.AddrPortFrom(d, e.dport)))
		f.SetTupleReply(ctnetlink.NewTuple(proto, netip.AddrPortFrom(d, e.dport), netip.AddrPortFrom(s, e.sport)))
		f.SetTimeout(1000)
		h := new(ctnetlink.Help)
		h.SetName(helper)
		f.SetHelp(h)
		if e.zone != 0 {
			f.SetZone(e.zone)
		}
		if err := c.Create(ctx, &f); err != nil {
			t.Fatalf("create master %s -> %s: %v", e.src, e.dst, err)
		}
		ones := netip.MustParseAddr("255.255.255.255")
		if s.Is6() {
			ones = netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
		}
		var x ctnetlink.Expect
		x.SetMaster(f.TupleOrig)
		x.SetTuple(ctnetlink.NewTuple(proto, netip.AddrPortFrom(d, 0), netip.AddrPortFrom(s, e.expectPort)))
		x.SetMask(ctnetlink.NewExpectMask(proto, ones, 0))
		x.SetHelpName(helper)
		if e.zone != 0 {
			x.SetZone(e.zone)
		}
		if e.flags != 0 {
			x.SetFlags(e.flags)
		}
		if e.nat {
			var nat ctnetlink.ExpectNAT
			nat.SetDir(ctnetlink.DirectionReply)
			nat.SetTuple(ctnetlink.NewTuple(unix.IPPROTO_TCP, netip.MustParseAddrPort("198.51.100.1:2000"), netip.AddrPortFrom(netip.IPv4Unspecified(), 0)))
			x.SetNAT(nat)
			x.SetFn("nat-follow-master")
		}
		if err := c.CreateExpect(ctx, &x); err != nil {
			t.Fatalf("create expectation of %s -> %s: %v", e.src, e.dst, err)
		}
	}
}

// tmsRE matches the time of printing that -o timestamp puts before each
// line: it is the clock of each program, not a value of the table.
var tmsRE = regexp.MustCompile(`(?m)^\[\d+\s*\.\d+\s*\]\t`)

// whenRE matches the same time in XML.
var whenRE = regexp.MustCompile(`<when>.*?</when>`)

// printTimes replaces the times of printing in s.
func printTimes(s string) string {
	s = tmsRE.ReplaceAllString(s, "[TIME]\t")
	return whenRE.ReplaceAllString(s, "<when>W</when>")
}

// sortedLines sorts the lines of s: each namespace hashes its tables with
// a seed of its own. Timeouts stay in their lines.
func sortedLines(s string) string {
	return sortVolatile(s)
}

func TestDifferentialExpect(t *testing.T) {
	needConntrack(t)
	ns := nstest.New(t)
	expectTable(t, ns)
	for _, args := range [][]string{
		{"-L", "expect"},
		{"-L", "expect", "-o", "xml"},
		{"-L", "expect", "-o", "xml,timestamp"},
		{"-L", "expect", "-o", "timestamp"},
		{"-L", "expect", "-o", "extended"},
		{"-L", "expect", "-o", "id"},
		{"-L", "expect", "-o", "save"},
		{"-L", "expect", "-o", "labels"},
		{"-L", "expect", "-f", "ipv6"},
		{"-L", "expect", "-f", "ipv6", "-o", "xml"},
		{"-L", "expect", "-f", "ipv4", "-o", "xml"},
		{"-C", "expect"},
		{"-G", "expect", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "40000", "--dport", "21"},
		{"-G", "expect", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "40000", "--dport", "21", "--reply-port-src", "21", "--reply-port-dst", "40000"},
		{"-G", "expect", "-p", "tcp", "-s", "192.0.2.3", "-d", "192.0.2.2", "--sport", "40001", "--dport", "21", "--reply-port-src", "21", "--reply-port-dst", "40001"},
		{"-G", "expect", "-p", "tcp", "-s", "2001:db8::1", "-d", "2001:db8::2", "--sport", "40002", "--dport", "21", "--reply-port-src", "21", "--reply-port-dst", "40002"},
		{"-G", "expect", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "40000", "--dport", "22", "--reply-port-src", "22", "--reply-port-dst", "40000"},
		{"-G", "expect", "-p", "udp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "40000", "--dport", "21"},
		{"-G", "expect", "-p", "tcp", "-s", "192.0.2.2", "-d", "192.0.2.1", "--sport", "0", "--dport", "50000", "--reply-port-src", "1", "--reply-port-dst", "2"},
		{"-G", "expect", "-p", "tcp", "-s", "192.0.2.2", "-d", "192.0.2.3", "--sport", "0", "--dport", "50001", "--reply-port-src", "1", "--reply-port-dst", "2"},
		{"-G", "expect", "-p", "tcp", "-s", "192.0.2.2", "-d", "192.0.2.3", "--sport", "7", "--dport", "50001", "--reply-port-src", "1", "--reply-port-dst", "2"},
		{"-G", "expect", "-p", "tcp", "-s", "2001:db8::2", "-d", "2001:db8::1", "--sport", "0", "--dport", "50002", "--reply-port-src", "1", "--reply-port-dst", "2"},
		{"-G", "expect", "-p", "tcp", "-s", "127.0.0.1", "-d", "127.0.0.1", "--sport", "0", "--dport", "51210", "--reply-port-src", "1", "--reply-port-dst", "2"},
		{"-G", "expect", "-p", "udp", "-s", "192.0.2.2", "-d", "192.0.2.5", "--sport", "0", "--dport", "50004"},
		{"-G", "expect", "-p", "udp", "-s", "192.0.2.2", "-d", "192.0.2.5", "--sport", "0", "--dport", "50004", "--reply-port-src", "1", "--reply-port-dst", "2"},
		{"-G", "expect", "-p", "udp", "-s", "192.0.2.2", "-d", "192.0.2.5", "--sport", "0", "--dport", "50005", "--reply-port-src", "1", "--reply-port-dst", "2"},
		{"-G", "expect", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "40000", "--dport", "21", "-o", "xml"},
		{"-G", "expect", "-p", "tcp", "-s", "2001:db8::1", "-d", "2001:db8::2", "--sport", "40002", "--dport", "21", "-o", "xml"},
		{"-G", "expect", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "40000", "--dport", "22", "-o", "xml"},
	} {
		start := time.Now()
		want := runIn(t, ns, "", "conntrack", args...)
		got := runIn(t, ns, "", ctspecBin(t), args...)
		skew := time.Since(start)
		// -G finds the expectation a connection with the given tuple would
		// match: these ports are those of existing expectations.
		line := strings.Join(args, " ")
		existing := regexp.MustCompile(`--sport 0 --dport (50000|50001|50002|50004|51210) --reply-port-src`)
		if args[0] == "-G" && existing.MatchString(line) && !strings.Contains(want.stdout, "helper=") {
			t.Errorf("conntrack %s found no expectation:\n%+v", strings.Join(args, " "), want)
		}
		want.stdout, got.stdout = printTimes(want.stdout), printTimes(got.stdout)
		if diff := diffResults(want, got, skew); diff != "" {
			t.Errorf("conntrack %s: (-conntrack +ctspec)\n%s", strings.Join(args, " "), diff)
		}
	}
}

// TestDifferentialExpectEvents runs conntrack -E expect and ctspec -E
// expect side by side while the FTP helper and ctnetlink requests create
// and remove expectations, stops both with SIGINT and compares what they
// printed.
func TestDifferentialExpectEvents(t *testing.T) {
	needConntrack(t)
	for _, format := range [][]string{{}, {"-o", "xml"}, {"-o", "xml,timestamp"}, {"-o", "timestamp"}} {
		t.Run(strings.Join(format, " "), func(t *testing.T) {
			ns := nstest.New(t)
			type proc struct {
				cmd            *exec.Cmd
				stdout, stderr bytes.Buffer
			}
			var procs [2]*proc
			for i, prog := range []string{"conntrack", ctspecBin(t)} {
				p := &proc{cmd: ns.Command(prog, append([]string{"-E", "expect"}, format...)...)}
				p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
				if err := p.cmd.Start(); err != nil {
					t.Fatal(err)
				}
				procs[i] = p
			}
			time.Sleep(500 * time.Millisecond)
			expectTable(t, ns)
			ns.Run(t, "conntrack", "-F", "expect")
			time.Sleep(500 * time.Millisecond)
			for _, p := range procs {
				p.cmd.Process.Signal(os.Interrupt)
			}
			for _, p := range procs {
				p.cmd.Wait()
			}
			want, got := printTimes(procs[0].stdout.String()), printTimes(procs[1].stdout.String())
			if strings.Count(want, "\n") < 10 {
				t.Errorf("conntrack printed too few events:\n%s", want)
			}
			// Both print the same events a moment apart.
			if diff := diffVolatile(want, got, 0); diff != "" {
				t.Errorf("events (-conntrack +ctspec)\n%s", diff)
			}
			if diff := cmp.Diff(procs[0].stderr.String(), procs[1].stderr.String()); diff != "" {
				t.Errorf("stderr (-conntrack +ctspec)\n%s", diff)
			}
		})
	}
}

// TestDifferentialExpectModify runs the commands that change the
// expectation table on two identical tables, one per command, and
// compares their output and the tables they leave.
func TestDifferentialExpectModify(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"delete", []string{"-D", "expect", "-p", "tcp", "-s", "192.0.2.2", "-d", "192.0.2.1", "--sport", "0", "--dport", "50000", "--reply-port-src", "1", "--reply-port-dst", "2"}},
		{"delete-v6", []string{"-D", "expect", "-p", "tcp", "-s", "2001:db8::2", "-d", "2001:db8::1", "--sport", "0", "--dport", "50002", "--reply-port-src", "1", "--reply-port-dst", "2"}},
		{"delete-missing", []string{"-D", "expect", "-p", "tcp", "-s", "192.0.2.2", "-d", "192.0.2.1", "--sport", "0", "--dport", "50009", "--reply-port-src", "1", "--reply-port-dst", "2"}},
		{"delete-master-tuple", []string{"-D", "expect", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "40000", "--dport", "21", "--reply-port-src", "21", "--reply-port-dst", "40000"}},
		{"flush", []string{"-F", "expect"}},
		{"delete-udp", []string{"-D", "expect", "-p", "udp", "-s", "192.0.2.2", "-d", "192.0.2.5", "--sport", "0", "--dport", "50004", "--reply-port-src", "1", "--reply-port-dst", "2"}},
		{"create-udp-exists", []string{"-I", "expect", "-p", "udp", "-s", "192.0.2.5", "-d", "192.0.2.2", "--sport", "40004", "--dport", "69",
			"--tuple-src", "192.0.2.2", "--tuple-dst", "192.0.2.5", "--mask-src", "255.255.255.255", "--mask-dst", "255.255.255.255",
			"--tuple-port-src", "0", "--tuple-port-dst", "50004", "--mask-port-src", "0", "--mask-port-dst", "65535"}},
		{"create-udp", []string{"-I", "expect", "-p", "udp", "-s", "192.0.2.5", "-d", "192.0.2.2", "--sport", "40004", "--dport", "69",
			"--tuple-src", "192.0.2.2", "--tuple-dst", "192.0.2.5", "--mask-src", "255.255.255.255", "--mask-dst", "0.0.0.0",
			"--tuple-port-src", "0", "--tuple-port-dst", "50010", "--mask-port-src", "0", "--mask-port-dst", "65535", "-t", "100"}},
		{"create-udp-reply", []string{"-I", "expect", "-p", "udp", "-s", "192.0.2.5", "-d", "192.0.2.2", "--sport", "40004", "--dport", "69",
			"-r", "192.0.2.2", "-q", "192.0.2.5", "--reply-port-src", "69", "--reply-port-dst", "40004",
			"--tuple-src", "192.0.2.2", "--tuple-dst", "192.0.2.5", "--mask-src", "255.255.255.0", "--mask-dst", "255.255.255.255",
			"--tuple-port-src", "7", "--tuple-port-dst", "50011", "--mask-port-src", "0", "--mask-port-dst", "65535", "-t", "100"}},
		{"create-udp-status", []string{"-I", "expect", "-p", "udp", "-s", "192.0.2.5", "-d", "192.0.2.2", "--sport", "40004", "--dport", "69",
			"--tuple-src", "192.0.2.2", "--tuple-dst", "192.0.2.5", "--mask-src", "255.255.255.255", "--mask-dst", "255.255.255.255",
			"--tuple-port-src", "0", "--tuple-port-dst", "50012", "--mask-port-src", "0", "--mask-port-dst", "65535", "-t", "100", "-u", "ASSURED"}},
		{"create-no-master", []string{"-I", "expect", "-p", "tcp", "-s", "192.0.2.9", "-d", "192.0.2.2", "--sport", "40000", "--dport", "21",
			"--tuple-src", "192.0.2.2", "--tuple-dst", "192.0.2.9", "--mask-src", "255.255.255.255", "--mask-dst", "255.255.255.255",
			"--tuple-port-src", "0", "--tuple-port-dst", "50010", "--mask-port-src", "0", "--mask-port-dst", "65535", "-t", "100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res [2]result
			var tables [2]string
			var a ages
			for i, prog := range []string{"conntrack", bin} {
				a.setUp(i)
				ns := nstest.New(t)
				createExpectations(t, ns)
				res[i] = runIn(t, ns, "", prog, tc.args...)
				res[i].stdout = sortedLines(res[i].stdout)
				tables[i] = sortedLines(ns.Run(t, "conntrack", "-L", "expect") + ns.Run(t, "conntrack", "-L", "expect", "-f", "ipv6"))
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

// TestExpectCreateTCP checks -I expect with TCP ports. conntrack 1.4.7
// stores the byte-swapped --tuple-port-dst as the expected tuple's
// protocol number (fixed in later releases), so its expectation has the
// wrong protocol and no ports; ctspec creates the TCP expectation the
// command line describes.
func TestExpectCreateTCP(t *testing.T) {
	needConntrack(t)
	ns := nstest.New(t)
	createExpectations(t, ns)
	r := runIn(t, ns, "", ctspecBin(t), "-I", "expect", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "40000", "--dport", "21",
		"--tuple-src", "192.0.2.2", "--tuple-dst", "192.0.2.1", "--mask-src", "255.255.255.255", "--mask-dst", "255.255.255.255",
		"--tuple-port-src", "0", "--tuple-port-dst", "50010", "--mask-port-src", "0", "--mask-port-dst", "65535", "-t", "100")
	if r != (result{}) {
		t.Fatalf("ctspec -I expect: %+v, want no output and status 0", r)
	}
	out := ns.Run(t, "conntrack", "-L", "expect")
	// The FTP helper keeps one expectation per master: the new one
	// replaces the master's expectation for port 50000.
	want := "proto=6 src=192.0.2.2 dst=192.0.2.1 sport=0 dport=50010 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=192.0.2.1 master-dst=192.0.2.2 sport=40000 dport=21 class=0 helper=ftp\n"
	if !strings.Contains(out, want) || strings.Contains(out, "dport=50000") {
		t.Errorf("conntrack -L expect after ctspec -I expect:\n%s\nwant a line ending in\n%s", out, want)
	}
}
