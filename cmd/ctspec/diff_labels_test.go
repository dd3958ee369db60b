package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctspec/ctspec/internal/nstest"
)

// connlabelScript runs a command in a mount namespace of its own where
// /etc/xtables/connlabel.conf, the path conntrack-tools' library was
// built with, holds the file $1, or is absent when $1 is empty. /etc is
// overlaid there with an upper layer on a tmpfs mounted at $2, so the
// host's /etc never changes; a whiteout in that layer hides a host's
// file. unshare(1) makes the new namespace's mounts private.
const connlabelScript = `set -e
conf=$1 dir=$2
shift 2
mount -t tmpfs ctspec-test "$dir"
mkdir -p "$dir/upper/xtables" "$dir/work"
if [ -n "$conf" ]; then
	cp "$conf" "$dir/upper/xtables/connlabel.conf"
else
	mknod "$dir/upper/xtables/connlabel.conf" c 0 0
fi
mount -t overlay ctspec-test -o "lowerdir=/etc,upperdir=$dir/upper,workdir=$dir/work" /etc
exec "$@"
`

// labelEnv runs commands in a network namespace with a connlabel.conf of
// the test's own, or none.
type labelEnv struct {
	ns   *nstest.NS
	conf string // path of the connlabel.conf to install, "" for none
	dir  string // mount point for the tmpfs
}

// newLabelEnv returns an environment whose connlabel.conf holds conf.
func newLabelEnv(t *testing.T, ns *nstest.NS, conf string) *labelEnv {
	t.Helper()
	e := noLabelEnv(t, ns)
	e.conf = filepath.Join(filepath.Dir(e.dir), "connlabel.conf")
	if err := os.WriteFile(e.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// noLabelEnv returns an environment without connlabel.conf, whether or
// not the host has one.
func noLabelEnv(t *testing.T, ns *nstest.NS) *labelEnv {
	t.Helper()
	nstest.RequireCommands(t, "unshare", "mount", "mknod")
	e := &labelEnv{ns: ns, dir: filepath.Join(t.TempDir(), "mnt")}
	if err := os.Mkdir(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *labelEnv) command(name string, args ...string) *exec.Cmd {
	return e.ns.Command("unshare", append([]string{"--mount", "--", "sh", "-c", connlabelScript, "sh", e.conf, e.dir, name}, args...)...)
}

func (e *labelEnv) run(t *testing.T, stdin, name string, args ...string) result {
	t.Helper()
	cmd := e.command(name, args...)
	var o, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	status := 0
	if ee, ok := err.(*exec.ExitError); ok {
		status = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return result{o.String(), errb.String(), status}
}

// mustRun runs conntrack with args and fails the test when it fails.
func (e *labelEnv) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := e.run(t, "", "conntrack", args...)
	if r.status != 0 {
		t.Fatalf("conntrack %s: %+v", strings.Join(args, " "), r)
	}
	return r.stdout
}

var idRE = regexp.MustCompile(`(<id>|id=)\d+`)

// testLabels names bits across the first three 32-bit words of the
// bitmap, with the comments, blank lines, numbers in other bases and
// duplicates that the library's parser skips or resolves.
const testLabels = `# test labels
0 zero
1	one
5 five-x
0x10 sixteen
# a duplicate bit and a duplicate name: the first wins
5 five-again
17 one
31 thirty-one
32 thirty-two
070 fifty-six
bad line
95 ninety-five
`

// labelTable enables connection labels in the namespace (the kernel
// attaches them only once a rule uses them) and creates flows with
// labels, through conntrack with the label names of env.
func labelTable(t *testing.T, env *labelEnv) {
	t.Helper()
	nstest.RequireCommands(t, "nft")
	nftOutputRule(t, env.ns, "ct label 127 counter")
	for _, args := range [][]string{
		{"-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "--label-add", "zero,one"},
		{"-p", "udp", "-s", "192.0.2.1", "-d", "192.0.2.3", "--sport", "10", "--dport", "53", "--label-add", "five-x", "-m", "3"},
		{"-p", "udp", "-s", "192.0.2.4", "-d", "192.0.2.3", "--sport", "10", "--dport", "53", "--label-add", "thirty-two,fifty-six,ninety-five"},
		{"-p", "udp", "-s", "2001:db8::1", "-d", "2001:db8::2", "--sport", "10", "--dport", "53", "--label-add", "sixteen,thirty-one"},
		{"-p", "udp", "-s", "192.0.2.9", "-d", "192.0.2.3", "--sport", "10", "--dport", "53"},
	} {
		env.mustRun(t, append(append([]string{"-I"}, args...), "-t", "1000")...)
	}
}

func TestDifferentialLabels(t *testing.T) {
	needConntrack(t)
	ns := nstest.New(t)
	env := newLabelEnv(t, ns, testLabels)
	labelTable(t, env)
	if out := env.mustRun(t, "-L", "-o", "labels"); !strings.Contains(out, "labels=zero,one\n") || !strings.Contains(out, "labels=thirty-two,fifty-six,ninety-five") {
		t.Fatalf("conntrack -L -o labels does not show the labels:\n%s", out)
	}
	for _, args := range [][]string{
		{"-L"},
		{"-L", "-o", "labels"},
		{"-L", "-o", "extended,labels"},
		{"-L", "-o", "xml,labels"},
		{"-L", "-o", "xml"},
		{"-L", "-o", "id,labels"},
		{"-L", "-o", "save"},
		{"-L", "-o", "save", "-l", "one"},
		{"-L", "-l", "one"},
		{"-L", "-l", "zero,one"},
		{"-L", "-l", "one", "-l", "zero"},
		{"-L", "-l", "thirty-two"},
		{"-L", "-l", "ninety-five", "-o", "xml"},
		{"-L", "-l", "sixteen", "-f", "ipv6"},
		{"-L", "-l", "five-again"},
		{"-L", "-l", "one,nosuch"},
		{"-L", "-l", ""},
		{"-L", "-l", "one", "-p", "udp"},
		{"-G", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2", "--sport", "10", "--dport", "20", "-o", "labels"},
		{"-U", "-s", "192.0.2.9", "--label-add", "nosuch"},
		{"-U", "-s", "192.0.2.9", "--label-add", "one", "--label-del", "zero"},
		{"-D", "-l", "nosuch"},
		{"-E", "-l", "nosuch"},
	} {
		env.compare(t, args...)
	}
}

// compare runs conntrack and ctspec with args in e and reports differences.
func (e *labelEnv) compare(t *testing.T, args ...string) {
	t.Helper()
	bin := ctspecBin(t)
	start := time.Now()
	want := e.run(t, "", "conntrack", args...)
	got := e.run(t, "", bin, args...)
	if diff := diffResults(want, got, time.Since(start)); diff != "" {
		t.Errorf("conntrack %s: (-conntrack +ctspec)\n%s", strings.Join(args, " "), diff)
	}
}

// TestDifferentialLabelFiles runs label options against label files that
// are missing, empty or useless, on the same table.
func TestDifferentialLabelFiles(t *testing.T) {
	needConntrack(t)
	ns := nstest.New(t)
	labelTable(t, newLabelEnv(t, ns, testLabels))
	for _, tc := range []struct {
		name, conf string
	}{
		{"empty", ""},
		{"comments", "# nothing\n"},
		{"bad-names", "1 a_b\n2 c.d\n"},
		{"other-bits", "3 three\n200 two-hundred\n"},
		{"too-big", "1024 huge\n1 one\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newLabelEnv(t, ns, tc.conf)
			for _, args := range [][]string{
				{"-L", "-o", "labels"},
				{"-L", "-o", "xml,labels"},
				{"-L", "-l", "one"},
				{"-L", "-l", "three"},
				{"-L", "-l", "two-hundred"},
			} {
				env.compare(t, args...)
			}
		})
	}
	// Without connlabel.conf, whether or not the host has one, both
	// report the missing file.
	t.Run("none", func(t *testing.T) {
		env := noLabelEnv(t, ns)
		if r := env.run(t, "", "sh", "-c", "test ! -e "+connlabelConf); r.status != 0 {
			t.Fatalf("%s is still there: %+v", connlabelConf, r)
		}
		for _, args := range [][]string{{"-L", "-o", "labels"}, {"-L", "-l", "one"}} {
			env.compare(t, args...)
		}
	})
}

// TestDifferentialLabelModify runs the commands that change labels on
// two identical tables, one per command, and compares their output and
// the labels they leave.
func TestDifferentialLabelModify(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"add", []string{"-U", "-s", "192.0.2.9", "--label-add", "one"}},
		{"add-many", []string{"-U", "-s", "192.0.2.4", "-p", "udp", "--label-add", "zero,ninety-five"}},
		{"add-present", []string{"-U", "-s", "192.0.2.1", "-p", "tcp", "--label-add", "one"}},
		{"add-high", []string{"-U", "-s", "192.0.2.1", "--label-add", "fifty-six"}},
		{"add-xml", []string{"-U", "-s", "192.0.2.1", "-p", "udp", "--label-add", "thirty-two", "-o", "xml"}},
		{"add-labels", []string{"-U", "-s", "192.0.2.1", "-p", "tcp", "--label-add", "thirty-two", "-o", "labels"}},
		{"add-filtered", []string{"-U", "-s", "192.0.2.0/24", "-l", "five-x", "--label-add", "sixteen"}},
		{"add-v6", []string{"-U", "-s", "2001:db8::1", "--label-add", "zero", "-o", "labels"}},
		{"del", []string{"-U", "-s", "192.0.2.1", "-p", "tcp", "--label-del", "one"}},
		{"del-many-flows", []string{"-U", "-s", "192.0.2.1", "--label-del", "one"}},
		{"del-absent", []string{"-U", "-s", "192.0.2.4", "--label-del", "one"}},
		{"del-all", []string{"-U", "-s", "192.0.2.1", "--label-del"}},
		{"del-many", []string{"-U", "-s", "192.0.2.4", "--label-del", "thirty-two,ninety-five", "-o", "labels"}},
		{"del-unlabelled", []string{"-U", "-s", "192.0.2.9", "--label-del", "one"}},
		{"delete-filtered", []string{"-D", "-l", "one"}},
		{"create", []string{"-I", "-p", "udp", "-s", "198.51.100.1", "-d", "198.51.100.2", "--sport", "1", "--dport", "2", "-t", "50", "--label-add", "one,fifty-six"}},
		{"add-new", []string{"-A", "-p", "udp", "-s", "198.51.100.1", "-d", "198.51.100.2", "--sport", "1", "--dport", "2", "-t", "50", "--label-add", "ninety-five"}},
		{"add-existing", []string{"-A", "-p", "udp", "-s", "192.0.2.9", "-d", "192.0.2.3", "--sport", "10", "--dport", "53", "-t", "50", "--label-add", "one"}},
		{"unknown", []string{"-U", "-s", "192.0.2.1", "--label-add", "nosuch"}},
		{"unknown-del", []string{"-U", "-s", "192.0.2.1", "--label-del", "nosuch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res [2]result
			var tables [2]string
			var updated string
			var a ages
			for i, prog := range []string{"conntrack", bin} {
				a.setUp(i)
				env := newLabelEnv(t, nstest.New(t), testLabels)
				labelTable(t, env)
				res[i] = env.run(t, "", prog, tc.args...)
				if i == 1 && tc.args[0] == "-U" {
					updated = updatedFlows(t, env, tc.args)
				}
				// Flow ids differ between the two namespaces.
				res[i].stdout = sortedLines(idRE.ReplaceAllString(res[i].stdout, "${1}ID"))
				tables[i] = sortedLines(env.mustRun(t, "-L", "-o", "labels"))
				a.listed(i)
			}
			if tc.args[0] == "-U" && res[0].status == 0 {
				// conntrack 1.4.7 reads the replies of its update and
				// get requests out of step, and so prints only some of
				// the flows it updates, or a flow twice. ctspec prints
				// each flow it updates as conntrack -G prints it.
				res[0].stdout = sortedLines(idRE.ReplaceAllString(updated, "${1}ID"))
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

// updatedFlows returns what conntrack -G prints, in the format that args
// ask for, for each flow that matches the filter of the -U command args,
// as e's table is now. -U reads the label names for its label options and
// so prints the labels, which -G prints only when asked with -o labels.
// -U prints no XML header.
func updatedFlows(t *testing.T, e *labelEnv, args []string) string {
	t.Helper()
	filter := []string{"-L"}
	format := []string{"-o", "labels"}
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "--label-add":
			i++
		case "--label-del":
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
			}
		case "-o":
			format[1] = args[i+1] + ",labels"
			i++
		default:
			filter = append(filter, args[i])
		}
	}
	var b strings.Builder
	for _, line := range strings.Split(e.mustRun(t, filter...), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		get := []string{"-G", "-p", f[0]}
		seen := map[string]bool{}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || seen[k] {
				continue
			}
			seen[k] = true
			switch k {
			case "src", "dst", "sport", "dport":
				get = append(get, "--"+k, v)
			}
		}
		out := e.mustRun(t, append(get, format...)...)
		out = strings.TrimPrefix(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<conntrack>\n")
		b.WriteString(strings.TrimSuffix(out, "</conntrack>\n"))
	}
	return b.String()
}
