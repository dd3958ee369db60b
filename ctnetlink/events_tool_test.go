package ctnetlink

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// TestKernelEventsConntrackTool compares our events with what conntrack -E
// prints for the same changes, in the same namespace.
func TestKernelEventsConntrackTool(t *testing.T) {
	ns, c := dialNS(t)
	if _, err := exec.LookPath("conntrack"); err != nil {
		nstest.SkipOrFail(t, "conntrack (conntrack-tools) is not installed")
	}
	l := listenNS(t, ns, ListenConfig{})
	lines, stderr := startConntrackEvents(t, ns)
	waitSubscribers(t, ns, 2)

	const n = 20
	ctx := ctx(t)
	for i := range n {
		f := flowAt("192.0.2.1", i)
		f.SetMark(1)
		if err := c.Create(ctx, f); err != nil {
			t.Fatalf("create: %v", err)
		}
		var u Flow
		u.SetTupleOrig(f.TupleOrig)
		u.SetMark(2)
		if err := c.Update(ctx, &u); err != nil {
			t.Fatalf("update: %v", err)
		}
		if err := c.Delete(ctx, f); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}

	var ours []evRecord
	readIdle(t, l, 300*time.Millisecond, 10*time.Second, func(ev *Event, err error) bool {
		if err != nil {
			t.Errorf("events: %v", err)
		} else {
			ours = append(ours, record(ev))
		}
		return len(ours) < 3*n
	})
	theirs := readConntrackEvents(t, lines, stderr, 3*n)
	if len(ours) != 3*n {
		t.Errorf("listener saw %d events, want %d", len(ours), 3*n)
	}
	if diff := cmp.Diff(theirs, ours); diff != "" {
		t.Errorf("events (-conntrack -E +listener):\n%s", diff)
	}
}

// parseConntrackEvent parses a line of conntrack -E, such as
// "[NEW] tcp 6 120 ESTABLISHED src=192.0.2.1 dst=192.0.2.2 sport=1 dport=80 ... mark=1".
func parseConntrackEvent(line string) (evRecord, error) {
	var r evRecord
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return r, fmt.Errorf("empty line from conntrack -E")
	}
	switch fields[0] {
	case "[NEW]":
		r.Type = EventNew
	case "[UPDATE]":
		r.Type = EventUpdate
	case "[DESTROY]":
		r.Type = EventDestroy
	default:
		return r, fmt.Errorf("conntrack -E: unknown event in %q", line)
	}
	kv := map[string]string{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if _, seen := kv[k]; ok && !seen {
			kv[k] = v // the first of each key belongs to the original tuple
		}
	}
	if m, ok := kv["mark"]; ok {
		mark, err := strconv.ParseUint(m, 10, 32)
		if err != nil {
			return r, fmt.Errorf("conntrack -E: mark in %q: %v", line, err)
		}
		r.Mark = uint32(mark)
	}
	r.Orig = fmt.Sprintf("%s:%s->%s:%s", kv["src"], kv["sport"], kv["dst"], kv["dport"])
	return r, nil
}

// waitSubscribers waits until n NETLINK_NETFILTER sockets of the namespace
// have joined multicast groups, so that a program started in the
// background receives the events that follow.
func waitSubscribers(t *testing.T, ns *nstest.NS, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got int
		err := ns.Do(func() error {
			// /proc/thread-self/net is the namespace of this thread.
			b, err := os.ReadFile("/proc/thread-self/net/netlink")
			if err != nil {
				return err
			}
			got = 0
			for _, line := range strings.Split(string(b), "\n")[1:] {
				f := strings.Fields(line)
				if len(f) > 3 && f[1] == strconv.Itoa(unix.NETLINK_NETFILTER) && strings.Trim(f[3], "0") != "" {
					got++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d netfilter sockets joined groups, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startConntrackEvents starts conntrack -E -p tcp in ns and returns the
// lines it prints and what it writes to stderr.
func startConntrackEvents(t *testing.T, ns *nstest.NS) (<-chan string, *strings.Builder) {
	t.Helper()
	cmd := ns.Command("conntrack", "-E", "-p", "tcp")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	return lines, stderr
}

// readConntrackEvents parses want events from the lines of conntrack -E.
func readConntrackEvents(t *testing.T, lines <-chan string, stderr *strings.Builder, want int) []evRecord {
	t.Helper()
	var theirs []evRecord
	timeout := time.After(10 * time.Second)
	for len(theirs) < want {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("conntrack -E ended after %d events: %s", len(theirs), stderr.String())
			}
			r, err := parseConntrackEvent(line)
			if err != nil {
				t.Fatal(err)
			}
			theirs = append(theirs, r)
		case <-timeout:
			t.Fatalf("conntrack -E printed %d events, want %d", len(theirs), want)
		}
	}
	return theirs
}
