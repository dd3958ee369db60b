package main

import (
	"strings"
	"testing"

	"github.com/ctspec/ctspec/internal/nstest"
)

// TestDifferentialAddFile loads files of -A and -I lines, some naming
// flows that exist, into two identical tables, one per command, and
// compares the output and the tables left.
func TestDifferentialAddFile(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	seed := []string{"-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "-t", "1000", "-m", "1"}
	for _, tc := range []struct {
		name, file string
	}{
		{"add", strings.Join([]string{
			"-A -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 10 --dport 20 --state SYN_RECV -t 50 -m 9",
			"-A -p udp -s 198.51.100.1 -d 198.51.100.2 --sport 1 --dport 2 -t 50 -m 3",
			"-A -p udp -s 198.51.100.1 -d 198.51.100.2 --sport 1 --dport 2 -t 60 -m 4",
			"-I -p udp -s 198.51.100.3 -d 198.51.100.2 --sport 1 --dport 2 -t 50",
			"",
		}, "\n")},
		// Two new flows with different marks: each mark must end up on
		// its own flow.
		{"marks", strings.Join([]string{
			"-I -p udp -s 198.51.100.5 -d 198.51.100.2 --sport 1 --dport 2 -t 50 -m 3",
			"-I -p udp -s 198.51.100.6 -d 198.51.100.2 --sport 1 --dport 2 -t 60 -m 4",
			"",
		}, "\n")},
		{"create-exists", strings.Join([]string{
			"-A -p udp -s 198.51.100.1 -d 198.51.100.2 --sport 1 --dport 2 -t 50 -m 3",
			"-I -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport 10 --dport 20 --state SYN_RECV -t 50",
			"-A -p udp -s 198.51.100.4 -d 198.51.100.2 --sport 1 --dport 2 -t 50",
			"",
		}, "\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res [2]result
			var tables [2]string
			var a ages
			for i, prog := range []string{"conntrack", bin} {
				a.setUp(i)
				ns := nstest.New(t)
				ns.Run(t, "conntrack", seed...)
				res[i] = runIn(t, ns, tc.file, prog, "-R", "-")
				tables[i] = canonicalTable(t, ns)
				a.listed(i)
			}
			if diff := diffResults(res[0], res[1], a.skew()); diff != "" {
				t.Errorf("-R: (-conntrack +ctspec)\n%s", diff)
			}
			if diff := diffVolatile(tables[0], tables[1], a.skew()); diff != "" {
				t.Errorf("table after -R: (-conntrack +ctspec)\n%s", diff)
			}
		})
	}
}
