package nfqueuebench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
	"github.com/ctspec/ctspec/nfqueue"
)

// sinkPort is the UDP port the traffic goes to; a socket that is never read
// takes it, so that no ICMP error answers it.
const sinkPort = 9000

// buildConsumer compiles c/consumer.c and returns the binary's path.
func buildConsumer(tb testing.TB) string {
	tb.Helper()
	nstest.RequireRoot(tb)
	nstest.RequireCommands(tb, "cc", "iptables", "nsenter")
	if _, err := os.Stat("/usr/include/libnetfilter_queue/libnetfilter_queue.h"); err != nil {
		nstest.SkipOrFail(tb, "libnetfilter_queue's header is missing (Debian: libnetfilter-queue-dev)")
	}
	return buildC(tb, "consumer", "-lnetfilter_queue", "-lnfnetlink", "-lpthread")
}

// buildC compiles c/name.c with the linker flags libs and returns the
// binary's path.
func buildC(tb testing.TB, name string, libs ...string) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), name)
	args := append([]string{"-O2", "-Wall", "-o", bin, filepath.Join("c", name+".c")}, libs...)
	out, err := exec.Command("cc", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("cc: %v\n%s", err, out)
	}
	return bin
}

// traffic is a namespace whose OUTPUT rule queues UDP to sinkPort, and
// sockets that send it from source addresses 127.0.0.2 and up.
type traffic struct {
	ns    *nstest.NS
	fds   []int
	queue []string // the rule's NFQUEUE options
}

// newTraffic makes the namespace with the rule and senders sockets.
func newTraffic(tb testing.TB, senders int, queue ...string) *traffic {
	tb.Helper()
	tr := &traffic{ns: nstest.New(tb), queue: queue}
	tr.ns.Run(tb, "iptables", append([]string{"-A", "OUTPUT", "-p", "udp", "--dport", strconv.Itoa(sinkPort), "-j", "NFQUEUE"}, queue...)...)
	err := tr.ns.Do(func() error {
		sink, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		unix.SetsockoptInt(sink, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
		if err := unix.Bind(sink, &unix.SockaddrInet4{Port: sinkPort, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		tr.fds = append(tr.fds, sink)
		for i := range senders {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			if err != nil {
				return err
			}
			tr.fds = append(tr.fds, fd)
			if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, byte(2 + i)}}); err != nil {
				return err
			}
			if err := unix.Connect(fd, &unix.SockaddrInet4{Port: sinkPort, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for _, fd := range tr.fds {
			unix.Close(fd)
		}
	})
	return tr
}

// sendFrom sends n datagrams of size bytes from 8 sockets of the program
// sender (c/sender.c), a process of its own in tr's namespace, so that the
// traffic shares no runtime with the consumer measured.
func (tr *traffic) sendFrom(tb testing.TB, sender string, n, size int) {
	out, err := tr.ns.Command(sender, strconv.Itoa(n), strconv.Itoa(size), "8", strconv.Itoa(sinkPort)).CombinedOutput()
	if err != nil {
		tb.Errorf("sender: %v\n%s", err, out)
	}
}

// consumer is a running C consumer.
type consumer struct {
	cmd *exec.Cmd
	out *bufio.Scanner
}

// startC starts the C consumer in tr's namespace and waits for it to bind.
func startC(tb testing.TB, bin string, tr *traffic, args ...string) *consumer {
	tb.Helper()
	cmd := tr.ns.Command(bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &consumer{cmd: cmd, out: bufio.NewScanner(out)}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !c.out.Scan() || c.out.Text() != "ready" {
		tb.Fatalf("consumer did not start: %q", c.out.Text())
	}
	return c
}

// lines returns the consumer's output lines until "done N", and N.
func (c *consumer) lines(tb testing.TB, timeout time.Duration) ([]string, int) {
	tb.Helper()
	timer := time.AfterFunc(timeout, func() { c.cmd.Process.Signal(unix.SIGTERM) })
	defer timer.Stop()
	var out []string
	for c.out.Scan() {
		l := c.out.Text()
		if n, ok := strings.CutPrefix(l, "done "); ok {
			v, _ := strconv.Atoi(n)
			c.cmd.Wait()
			return out, v
		}
		out = append(out, l)
	}
	tb.Fatalf("consumer ended without done: %v", c.cmd.Wait())
	return nil, 0
}

// describe prints a packet the way consumer -v does, from ctspec's decode.
func describe(p *nfqueue.Packet) string {
	opt := func(has bool, v uint32) string {
		if has {
			return strconv.FormatUint(uint64(v), 10)
		}
		return "-0"
	}
	return fmt.Sprintf("queue=%d id=%d hook=%d proto=0x%04x mark=0x%x indev=%d outdev=%d uid=%s gid=%s len=%d",
		p.Queue, p.ID, p.Hook, p.HWProtocol, p.Attrs.Mark, p.Attrs.InDev, p.Attrs.OutDev,
		opt(p.Attrs.Has(nfqueue.MessageAttrUid), p.Attrs.UID), opt(p.Attrs.Has(nfqueue.MessageAttrGid), p.Attrs.GID), len(p.Payload))
}

// TestDifferential sends the same packets, of several sizes and marks,
// through a queue read by the C consumer and through one read by ctspec,
// each in a namespace of its own, and compares what each decodes.
func TestDifferential(t *testing.T) {
	bin := buildConsumer(t)
	sizes := []int{1, 100, 1400, 9000}
	run := func(t *testing.T) *traffic {
		tr := newTraffic(t, 1, "--queue-num", "0")
		tr.ns.Run(t, "iptables", "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "-m", "length", "--length", "100:2000", "-j", "MARK", "--set-mark", "0x2a")
		tr.ns.Run(t, "ip", "link", "set", "lo", "mtu", "65536")
		return tr
	}
	sendAll := func(tr *traffic) {
		for _, n := range sizes {
			buf := make([]byte, n)
			if _, err := unix.Write(tr.fds[1], buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	trC := run(t)
	c := startC(t, bin, trC, "0", "1", strconv.Itoa(len(sizes)), "-v")
	sendAll(trC)
	want, n := c.lines(t, 5*time.Second)
	if n != len(sizes) {
		t.Fatalf("C consumer saw %d packets, want %d", n, len(sizes))
	}

	trGo := run(t)
	q, err := nfqueue.Open(context.Background(), &nfqueue.Config{NetNS: trGo.ns.FD(), Flags: nfqueue.FlagsUIDGID})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	sendAll(trGo)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []string
	for p, err := range q.Packets(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, describe(p))
		if err := p.Accept(ctx); err != nil {
			t.Fatal(err)
		}
		if len(got) == len(sizes) {
			break
		}
	}
	t.Logf("libnetfilter_queue:\n  %s", strings.Join(want, "\n  "))
	if !slices.Equal(want, got) {
		t.Errorf("decoded packets differ\nlibnetfilter_queue:\n  %s\nctspec:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
	}
}

// cell is one consumer configuration of the throughput benchmark.
type cell struct {
	name   string
	queues int
	batch  int
	c      bool
	async  bool // ctspec's Config.AsyncVerdicts
}

// runGo runs ctspec's consumer for n packets of tr, sent by sender, and
// returns the elapsed time and the heap allocations per packet.
func runGo(tb testing.TB, sender string, tr *traffic, cl cell, n, size int) (time.Duration, float64) {
	cfg := &nfqueue.Config{NetNS: tr.ns.FD(), Count: cl.queues, MaxLen: 8192, ReadBuffer: 8 << 20}
	if cl.async {
		cfg.AsyncVerdicts = true
		cfg.VerdictError = func(queue uint16, id uint32, err error) { tb.Errorf("%s: %v", cl.name, err) }
	}
	q, err := nfqueue.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var done atomic.Int64
	pending := make([]int, cl.queues)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	go tr.sendFrom(tb, sender, n, size)
	err = q.Run(ctx, func(p *nfqueue.Packet) {
		var err error
		if cl.batch > 0 {
			// p is reused once it has its verdict: keep its queue.
			num := p.Queue
			pending[num]++
			if pending[num] == cl.batch {
				err = q.VerdictBatch(ctx, p, nfqueue.Verdict{Action: nfqueue.Accept})
				done.Add(int64(pending[num]))
				pending[num] = 0
			}
		} else {
			err = p.Accept(ctx)
			done.Add(1)
		}
		if err != nil {
			tb.Error(err)
		}
		if done.Load() >= int64(n) {
			cancel()
		}
	})
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if done.Load() < int64(n) {
		tb.Fatalf("%s: %d of %d packets in %v: %v", cl.name, done.Load(), n, elapsed, err)
	}
	return elapsed, float64(after.Mallocs-before.Mallocs) / float64(n)
}

// runC runs the C consumer for n packets of tr, sent by sender, and
// returns the elapsed time.
func runC(tb testing.TB, bin, sender string, tr *traffic, cl cell, n, size int) time.Duration {
	args := []string{"0", strconv.Itoa(cl.queues), strconv.Itoa(n)}
	if cl.batch > 0 {
		args = append(args, "-b", strconv.Itoa(cl.batch))
	}
	c := startC(tb, bin, tr, args...)
	start := time.Now()
	go tr.sendFrom(tb, sender, n, size)
	_, got := c.lines(tb, 30*time.Second)
	elapsed := time.Since(start)
	if got < n {
		tb.Fatalf("%s: %d of %d packets", cl.name, got, n)
	}
	return elapsed
}

// BenchmarkThroughput measures packets per second through NFQUEUE with an
// accept verdict per packet (or a batch verdict per 16), for ctspec with
// verdicts that wait for the kernel's answer (the default), ctspec with
// Config.AsyncVerdicts (the "async" cells) and the C consumer, which sends
// verdicts without asking for an answer, with one queue and with a fanout
// over two. Every iteration runs each cell three times, interleaved, on
// the same traffic (50 000 UDP datagrams of 64 bytes from 8 source
// addresses), and reports the median rate of each cell, and ctspec's heap
// allocations per packet.
func BenchmarkThroughput(b *testing.B) {
	bin := buildConsumer(b)
	sender := buildC(b, "sender")
	const n, size = 50000, 64
	one := newTraffic(b, 8, "--queue-num", "0")
	two := newTraffic(b, 8, "--queue-balance", "0:1")
	cells := []cell{
		{name: "ctspec-1q", queues: 1},
		{name: "ctspec-async-1q", queues: 1, async: true},
		{name: "c-1q", queues: 1, c: true},
		{name: "ctspec-2q", queues: 2},
		{name: "ctspec-async-2q", queues: 2, async: true},
		{name: "c-2q", queues: 2, c: true},
		{name: "ctspec-1q-batch16", queues: 1, batch: 16},
		{name: "ctspec-async-1q-batch16", queues: 1, batch: 16, async: true},
		{name: "c-1q-batch16", queues: 1, batch: 16, c: true},
	}
	for range b.N {
		rates := map[string][]float64{}
		allocs := map[string][]float64{}
		for range 3 {
			for _, cl := range cells {
				tr := one
				if cl.queues == 2 {
					tr = two
				}
				var d time.Duration
				if cl.c {
					d = runC(b, bin, sender, tr, cl, n, size)
				} else {
					var a float64
					d, a = runGo(b, sender, tr, cl, n, size)
					allocs[cl.name] = append(allocs[cl.name], a)
				}
				rates[cl.name] = append(rates[cl.name], float64(n)/d.Seconds())
			}
		}
		for _, cl := range cells {
			b.ReportMetric(median(rates[cl.name]), cl.name+"-pkt/s")
			if a := allocs[cl.name]; a != nil {
				b.ReportMetric(median(a), cl.name+"-allocs/pkt")
			}
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
