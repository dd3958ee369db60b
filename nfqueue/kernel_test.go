package nfqueue

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// TestKernelAcceptDrop queues UDP packets from OUTPUT: the accepted one
// reaches the receiver, the dropped one does not.
func TestKernelAcceptDrop(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "3")
	c := e.open(t, Config{Queue: 3})
	s := e.sender(t, 0)

	send(t, s, "one")
	p := next(t, c)
	if got := udpPayload(t, p.Payload); got != "one" {
		t.Fatalf("payload %q, want %q", got, "one")
	}
	if p.Queue != 3 || p.Hook != 3 /* NF_INET_LOCAL_OUT */ || p.HWProtocol != 0x0800 || p.Family != 2 {
		t.Errorf("queue %d hook %d protocol %#x family %d, want 3, 3, 0x800, 2", p.Queue, p.Hook, p.HWProtocol, p.Family)
	}
	if err := p.Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, "one")

	send(t, s, "two")
	p = next(t, c)
	if err := p.Drop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.received(t, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("received %q after a drop", got)
	}
}

// track makes conntrack follow the namespace's flows: it tracks only once
// a rule needs it.
func (e *env) track(t *testing.T) {
	t.Helper()
	e.iptables(t, "-I", "OUTPUT", "-m", "conntrack", "--ctstate", "NEW,ESTABLISHED")
}

// flowMarks returns the conntrack marks of the UDP flows of the
// namespace to the receiver's port, by source port, through ctnetlink.
func (e *env) flowMarks(t *testing.T) map[int]uint32 {
	t.Helper()
	ct, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: e.ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Close()
	flows, err := ct.List(context.Background(), &ctnetlink.Selector{Family: unix.AF_INET})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]uint32{}
	for _, f := range flows {
		if p := f.TupleOrig.Proto; p.Num == unix.IPPROTO_UDP && int(p.DstPort) == e.port {
			out[int(p.SrcPort)] = f.Mark
		}
	}
	return out
}

// glueCT reports whether the running kernel was built with
// CONFIG_NETFILTER_NETLINK_GLUE_CT, from /proc/config.gz.
func glueCT(t *testing.T) bool {
	t.Helper()
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		nstest.SkipOrFail(t, "no /proc/config.gz to tell whether the kernel has CONFIG_NETFILTER_NETLINK_GLUE_CT: "+err.Error())
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), "\nCONFIG_NETFILTER_NETLINK_GLUE_CT=y\n")
}

// TestKernelMark accepts a packet with a new mark (NFQA_MARK): a CONNMARK
// rule after the queue copies it to the flow, which ctnetlink then shows.
func TestKernelMark(t *testing.T) {
	e := newEnv(t)
	e.track(t)
	e.iptables(t, "-t", "mangle", "-A", "POSTROUTING", "-p", "udp", "--dport", strconv.Itoa(e.port), "-j", "CONNMARK", "--save-mark")
	e.queueRule(t, "--queue-num", "0")
	c := e.open(t, Config{Flags: FlagsUIDGID})
	s1, s2 := e.sender(t, 0), e.sender(t, 0)
	send(t, s1, "marked")
	p := next(t, c)
	if !p.Attrs.Has(MessageAttrUid) || !p.Attrs.Has(MessageAttrGid) || p.Attrs.UID != uint32(os.Getuid()) || p.Attrs.GID != uint32(os.Getgid()) {
		t.Errorf("uid %d gid %d (present %v), want %d %d", p.Attrs.UID, p.Attrs.GID, p.Attrs.Has(MessageAttrUid), os.Getuid(), os.Getgid())
	}
	mark := uint32(0x42)
	if err := p.Verdict(context.Background(), Verdict{Action: Accept, Mark: &mark}); err != nil {
		t.Fatal(err)
	}
	send(t, s2, "unmarked")
	if err := next(t, c).Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, "marked", "unmarked")
	want := map[int]uint32{s1.LocalAddr().(*net.UDPAddr).Port: 0x42, s2.LocalAddr().(*net.UDPAddr).Port: 0}
	if diff := cmp.Diff(want, e.flowMarks(t)); diff != "" {
		t.Errorf("flow marks by source port (-want +got):\n%s", diff)
	}
}

// TestKernelConntrack checks FlagsConntrack and conntrack changes in
// verdicts (NFQA_CT). A kernel without CONFIG_NETFILTER_NETLINK_GLUE_CT
// refuses the flag, and Open says which; a verdict that changes the
// conntrack entry then fails with ErrNoConntrack rather than being ignored.
// With the glue, the packet carries its flow, and a conntrack mark given
// with the verdict shows on the flow in ctnetlink.
func TestKernelConntrack(t *testing.T) {
	e := newEnv(t)
	e.track(t)
	e.queueRule(t, "--queue-num", "0")
	glue := glueCT(t)
	_, err := Open(context.Background(), &Config{NetNS: e.ns.FD(), Flags: FlagsConntrack})
	if !glue {
		if !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(fmt.Sprint(err), "flags conntrack") {
			t.Fatalf("Open with FlagsConntrack on a kernel without the glue: %v, want EOPNOTSUPP naming the flag", err)
		}
		c := e.open(t, Config{})
		send(t, e.sender(t, 0), "ct")
		p := next(t, c)
		connMark := uint32(0x1234)
		if err := p.Verdict(context.Background(), Verdict{Action: Accept, ConnMark: &connMark}); !errors.Is(err, ErrNoConntrack) {
			t.Fatalf("verdict with a conntrack mark: %v, want ErrNoConntrack", err)
		}
		// The failed verdict was not sent: the packet still waits for one.
		if err := p.Accept(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.expectReceived(t, "ct")
		return
	}
	if err != nil {
		t.Fatalf("Open with FlagsConntrack: %v", err)
	}
	c := e.open(t, Config{Flags: FlagsConntrack})
	s := e.sender(t, 0)
	send(t, s, "ct")
	p := next(t, c)
	f := p.Flow()
	if f == nil {
		t.Fatal("no conntrack entry with FlagsConntrack")
	}
	src := s.LocalAddr().(*net.UDPAddr)
	if got := f.TupleOrig.Proto; got.Num != unix.IPPROTO_UDP || int(got.SrcPort) != src.Port || int(got.DstPort) != e.port {
		t.Errorf("flow tuple %+v, want UDP %d -> %d", got, src.Port, e.port)
	}
	if got, want := f.TupleOrig.IP.V4Src, netip.MustParseAddr("127.0.0.1"); got != want {
		t.Errorf("flow source %v, want %v", got, want)
	}
	if !p.Attrs.Has(MessageAttrCtInfo) || p.Attrs.CTInfo != CTInfoNew {
		t.Errorf("ct-info %v (present %v), want new", p.Attrs.CTInfo, p.Attrs.Has(MessageAttrCtInfo))
	}
	connMark := uint32(0x1234)
	if err := p.Verdict(context.Background(), Verdict{Action: Accept, ConnMark: &connMark}); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, "ct")
	if got := e.flowMarks(t)[src.Port]; got != connMark {
		t.Errorf("flow mark %#x after a verdict with conntrack mark %#x", got, connMark)
	}
}

// TestKernelPayload replaces the payload of a UDP packet: the receiver gets
// the new one, longer than the original.
func TestKernelPayload(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "0")
	c := e.open(t, Config{})
	s := e.sender(t, 0)
	send(t, s, "hello")
	p := next(t, c)
	pkt := append([]byte(nil), p.Payload...)
	ihl := int(pkt[0]&0xf) * 4
	pkt = append(pkt[:ihl+8], "HELLO, WORLD"...)
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	binary.BigEndian.PutUint16(pkt[ihl+4:], uint16(len(pkt)-ihl))
	if err := FixChecksums(pkt); err != nil {
		t.Fatal(err)
	}
	if err := p.Verdict(context.Background(), Verdict{Action: Accept, Payload: pkt}); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, "HELLO, WORLD")
}

// TestKernelFailOpen fills a queue of length 1: with FlagsFailOpen the
// packets it cannot hold pass, and the kernel counts no drop.
func TestKernelFailOpen(t *testing.T) {
	for _, failOpen := range []bool{true, false} {
		t.Run(fmt.Sprintf("fail-open=%v", failOpen), func(t *testing.T) {
			e := newEnv(t)
			e.queueRule(t, "--queue-num", "0")
			cfg := Config{MaxLen: 1}
			if failOpen {
				cfg.Flags = FlagsFailOpen
			}
			c := e.open(t, cfg)
			s := e.sender(t, 0)
			send(t, s, "held")
			p := next(t, c)
			send(t, s, "second")
			send(t, s, "third")
			var want []string
			if failOpen {
				want = []string{"second", "third"}
			}
			e.expectReceived(t, want...)
			st, err := c.Stats()
			if err != nil {
				t.Fatal(err)
			}
			wantDropped := uint32(2)
			if failOpen {
				wantDropped = 0
			}
			if len(st) != 1 || st[0].Dropped != wantDropped || st[0].Waiting != 1 {
				t.Errorf("stats %+v, want 1 waiting and %d dropped", st, wantDropped)
			}
			if err := p.Accept(context.Background()); err != nil {
				t.Fatal(err)
			}
			e.expectReceived(t, "held")
		})
	}
}

// TestKernelBypass: with --queue-bypass a queue without listener passes
// packets; without it, they are dropped.
func TestKernelBypass(t *testing.T) {
	e := newEnv(t)
	e.iptables(t, "-A", "OUTPUT", "-p", "udp", "--dport", strconv.Itoa(e.port), "-m", "mark", "--mark", "1", "-j", "NFQUEUE", "--queue-num", "7", "--queue-bypass")
	e.iptables(t, "-A", "OUTPUT", "-p", "udp", "--dport", strconv.Itoa(e.port), "-m", "mark", "--mark", "2", "-j", "NFQUEUE", "--queue-num", "7")
	e.iptables(t, "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "--sport", "40001", "-j", "MARK", "--set-mark", "1")
	e.iptables(t, "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "--sport", "40002", "-j", "MARK", "--set-mark", "2")
	send(t, e.sender(t, 40001), "bypassed")
	send(t, e.sender(t, 40002), "dropped")
	e.expectReceived(t, "bypassed")
}

// TestKernelRepeat: a repeated packet goes through the hook again, where a
// mark set with the verdict lets it pass the queueing rule.
func TestKernelRepeat(t *testing.T) {
	e := newEnv(t)
	e.iptables(t, "-A", "OUTPUT", "-p", "udp", "--dport", strconv.Itoa(e.port), "-m", "mark", "!", "--mark", "7", "-j", "NFQUEUE", "--queue-num", "0")
	e.iptables(t, "-A", "OUTPUT", "-p", "udp", "--dport", strconv.Itoa(e.port), "-m", "mark", "--mark", "7", "-j", "NFLOG")
	c := e.open(t, Config{})
	send(t, e.sender(t, 0), "again")
	p := next(t, c)
	mark := uint32(7)
	if err := p.Verdict(context.Background(), Verdict{Action: Repeat, Mark: &mark}); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, "again")
	if got := ruleCount(t, e, "OUTPUT", 2); got != 1 {
		t.Errorf("the rule after the queue saw %d packets, want 1 (the repeated one)", got)
	}
}

// ruleCount returns the packet counter of rule n (from 1) of chain in the
// filter table.
func ruleCount(t *testing.T, e *env, chain string, n int) int {
	t.Helper()
	out := e.ns.Run(t, "iptables", "-L", chain, "-v", "-x", "-n")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < n+2 {
		t.Fatalf("no rule %d in:\n%s", n, out)
	}
	v, err := strconv.Atoi(strings.Fields(lines[n+1])[0])
	if err != nil {
		t.Fatalf("rule %d of:\n%s", n, out)
	}
	return v
}

// TestKernelQueueToQueue sends a packet from queue 0 to queue 1 of the same
// Conn, which then accepts it.
func TestKernelQueueToQueue(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "0")
	c := e.open(t, Config{Count: 2})
	send(t, e.sender(t, 0), "hop")
	p := next(t, c)
	if p.Queue != 0 {
		t.Fatalf("packet in queue %d, want 0", p.Queue)
	}
	if err := p.Verdict(context.Background(), Verdict{Action: Queue, QueueNum: 1}); err != nil {
		t.Fatal(err)
	}
	p2 := next(t, c)
	if p2.Queue != 1 || udpPayload(t, p2.Payload) != "hop" {
		t.Fatalf("got %v, want the packet in queue 1", p2)
	}
	if err := p2.Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, "hop")
}

// TestKernelBatch gives one batch verdict to five packets; each then
// counts as given.
func TestKernelBatch(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "0")
	c := e.open(t, Config{})
	s := e.sender(t, 0)
	var ps []*Packet
	var want []string
	for i := range 5 {
		msg := fmt.Sprintf("b%d", i)
		send(t, s, msg)
		want = append(want, msg)
		ps = append(ps, next(t, c))
	}
	mark := uint32(5)
	if err := c.VerdictBatch(context.Background(), ps[3], Verdict{Action: Accept, Mark: &mark}); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, want[:4]...)
	if err := ps[1].Accept(context.Background()); !errors.Is(err, ErrVerdictGiven) {
		t.Errorf("verdict on a packet a batch covered: %v, want ErrVerdictGiven", err)
	}
	if err := c.VerdictBatch(context.Background(), ps[4], Verdict{Action: Accept, ConnMark: &mark}); err == nil {
		t.Error("batch verdict with a conntrack mark: no error")
	}
	if err := ps[4].Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, want[4])
}

// TestKernelVerdictErrors: a second verdict fails without asking the
// kernel, and a verdict on an id the kernel does not hold fails with
// ErrUnknownPacket.
func TestKernelVerdictErrors(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "0")
	c := e.open(t, Config{})
	send(t, e.sender(t, 0), "x")
	p := next(t, c)
	if err := p.Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Drop(context.Background()); !errors.Is(err, ErrVerdictGiven) {
		t.Errorf("second verdict: %v, want ErrVerdictGiven", err)
	}
	ghost := &Packet{ID: p.ID + 1000, Queue: p.Queue, q: p.q}
	err := ghost.Accept(context.Background())
	if !errors.Is(err, ErrUnknownPacket) || !errors.Is(err, os.ErrNotExist) || !errors.Is(err, unix.ENOENT) {
		t.Errorf("verdict on an unknown id: %v, want ErrUnknownPacket and ENOENT", err)
	}
	e.expectReceived(t, "x")
}

// TestKernelGSOAndInput checks attributes that depend on the queue's flags
// and the hook: with FlagsGSO the kernel leaves a local packet's checksum
// pending and says so (SKBInfoCsumNotReady), without it it completes the
// checksum first; a packet queued from INPUT has its input interface, the
// link layer address of lo, and, once a socket asks for receive
// timestamps, its receive time.
func TestKernelGSOAndInput(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "0")
	e.iptables(t, "-A", "INPUT", "-p", "udp", "--dport", strconv.Itoa(e.port), "-j", "NFQUEUE", "--queue-num", "1")
	raw, err := e.recv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) })
	out := e.open(t, Config{Queue: 0, Flags: FlagsGSO})
	in := e.open(t, Config{Queue: 1})
	s := e.sender(t, 0)

	// The kernel turns receive timestamps on in a work item after the
	// first socket asks for them: a few packets may pass before.
	var stamped bool
	var sent []string
	for i := 0; i < 50 && !stamped; i++ {
		msg := "gso" + strconv.Itoa(i)
		sent = append(sent, msg)
		send(t, s, msg)
		p := next(t, out)
		if p.Attrs.SKBInfo&SKBInfoCsumNotReady == 0 {
			t.Errorf("skb-info %v with FlagsGSO, want csumnotready", p.Attrs.SKBInfo)
		}
		start := time.Now()
		if err := p.Accept(context.Background()); err != nil {
			t.Fatal(err)
		}
		p = next(t, in)
		if p.Hook != 1 || p.Attrs.InDev != 1 || p.Attrs.OutDev != 0 {
			t.Errorf("hook %d indev %d outdev %d, want INPUT (1) from lo (1)", p.Hook, p.Attrs.InDev, p.Attrs.OutDev)
		}
		if hw := p.HWAddr(); len(hw) != 6 {
			t.Errorf("hardware address %x, want lo's 6 bytes", hw)
		}
		if ts := p.Time(); !ts.IsZero() {
			stamped = true
			if ts.Before(start.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
				t.Errorf("receive time %v, want about %v", ts, start)
			}
		}
		if err := p.Accept(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !stamped {
		t.Error("no receive time on 50 packets with receive timestamps on")
	}
	e.expectReceived(t, sent...)
}
