package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// eventProc is a running conntrack -E or ctspec -E.
type eventProc struct {
	cmd            *exec.Cmd
	stdout, stderr nstest.Buffer
}

func startEvents(t *testing.T, ns *nstest.NS, prog string, args ...string) *eventProc {
	t.Helper()
	p := &eventProc{cmd: ns.Command(prog, append([]string{"-E"}, args...)...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

// stop sends SIGINT, which both programs answer with their summary, and
// waits for the program to exit.
func (p *eventProc) stop(t *testing.T) {
	t.Helper()
	// nsenter execs the program, so the signal reaches it.
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("%v: %v\nstderr:\n%s", p.cmd.Args, err, p.stderr.String())
	}
}

// listeners returns how many NETLINK_NETFILTER sockets of ns joined
// multicast groups, and how many bytes wait in their receive queues.
func listeners(t *testing.T, ns *nstest.NS) (n, queued int) {
	t.Helper()
	err := ns.Do(func() error {
		// /proc/thread-self/net is the namespace of this thread.
		b, err := os.ReadFile("/proc/thread-self/net/netlink")
		if err != nil {
			return err
		}
		// sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[1] != strconv.Itoa(unix.NETLINK_NETFILTER) || strings.Trim(f[3], "0") == "" {
				continue
			}
			n++
			rmem, err := strconv.Atoi(f[4])
			if err != nil {
				return fmt.Errorf("/proc/net/netlink: %q: %v", line, err)
			}
			queued += rmem
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, queued
}

// waitFor polls cond until it holds twice in a row, 100 ms apart, and
// fails the test after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	held := 0
	for held < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if cond() {
			held++
		} else {
			held = 0
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitListeners waits until want sockets of ns listen for events.
func waitListeners(t *testing.T, ns *nstest.NS, want int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d listening sockets", want), func() bool {
		n, _ := listeners(t, ns)
		return n == want
	})
}

// waitPrinted waits until every listening socket of ns has been read
// empty and the programs' output has stopped growing.
func waitPrinted(t *testing.T, ns *nstest.NS, procs []*eventProc) {
	t.Helper()
	waitFor(t, "the listeners to read every event", func() bool {
		_, q := listeners(t, ns)
		return q == 0
	})
	last := -1
	waitFor(t, "the output to settle", func() bool {
		n := 0
		for _, p := range procs {
			n += len(p.stdout.String()) + len(p.stderr.String())
		}
		settled := n == last
		last = n
		return settled
	})
}

// flowOf returns a flow from src to dst of protocol proto in zone zone with
// the reversed reply tuple, a timeout of 1000 s and mark mark.
func flowOf(proto uint8, src, dst string, sport, dport uint16, mark uint32, zone uint16) *ctnetlink.Flow {
	var f ctnetlink.Flow
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	o := ctnetlink.NewTuple(proto, netip.AddrPortFrom(s, sport), netip.AddrPortFrom(d, dport))
	r := ctnetlink.NewTuple(proto, netip.AddrPortFrom(d, dport), netip.AddrPortFrom(s, sport))
	switch proto {
	case unix.IPPROTO_ICMP:
		o.SetICMP(8, 0, 55)
		r.SetICMP(0, 0, 55)
	case unix.IPPROTO_ICMPV6:
		o.SetICMP(128, 0, 55)
		r.SetICMP(129, 0, 55)
	case unix.IPPROTO_TCP:
		f.ProtoInfo.TCP.SetState(ctnetlink.TCPStateEstablished)
	case unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_GRE:
	default:
		o.Proto = ctnetlink.TupleProto{}
		o.Proto.SetNum(proto)
		r.Proto = o.Proto
	}
	f.SetTupleOrig(o)
	f.SetTupleReply(r)
	f.SetTimeout(1000)
	if mark != 0 {
		f.SetMark(mark)
	}
	if zone != 0 {
		f.SetZone(zone)
	}
	return &f
}

// key returns the part of f that identifies it in Update and Delete.
func key(f *ctnetlink.Flow) *ctnetlink.Flow {
	var k ctnetlink.Flow
	k.SetTupleOrig(f.TupleOrig)
	if f.Has(ctnetlink.FlowAttrZone) {
		k.SetZone(f.Zone)
	}
	return &k
}

// loopbackTraffic sends a UDP request and its reply over IPv4 and IPv6
// loopback, which the kernel tracks as one flow each.
func loopbackTraffic() error {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		defer u.Close()
		uc, err := net.Dial("udp", u.LocalAddr().String())
		if err != nil {
			return err
		}
		defer uc.Close()
		buf := make([]byte, 16)
		if _, err := uc.Write([]byte("ping")); err != nil {
			return err
		}
		u.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, from, err := u.ReadFrom(buf)
		if err != nil {
			return err
		}
		if _, err := u.WriteTo([]byte("pong"), from); err != nil {
			return err
		}
		uc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := uc.Read(buf); err != nil {
			return err
		}
	}
	return nil
}
