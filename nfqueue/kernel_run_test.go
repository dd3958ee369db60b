package nfqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKernelFanout spreads flows over queues 0 and 1 (--queue-balance) and
// accepts them with Run, one goroutine per queue: both queues get packets,
// every packet arrives, and Run returns ctx's error.
func TestKernelFanout(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-balance", "0:1")
	c := e.open(t, Config{Count: 2})
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	perQueue := map[uint16]int{}
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(p *Packet) {
			mu.Lock()
			perQueue[p.Queue]++
			mu.Unlock()
			if err := p.Accept(ctx); err != nil {
				t.Error(err)
			}
		})
	}()
	const flows = 16
	// The kernel spreads flows by their addresses: each gets a source
	// address of its own in 127.0.0.0/8.
	for i := range flows {
		send(t, e.senderFrom(t, net.IPv4(127, 0, 0, byte(2+i))), "f"+strconv.Itoa(i))
	}
	if got := e.received(t, 500*time.Millisecond); len(got) != flows {
		t.Errorf("received %d datagrams, want %d", len(got), flows)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if perQueue[0] == 0 || perQueue[1] == 0 || perQueue[0]+perQueue[1] != flows {
		t.Errorf("packets per queue %v, want both queues and %d in all", perQueue, flows)
	}
}

// TestKernelTCP accepts every packet of a TCP connection's client side:
// the handshake completes and the data arrives.
func TestKernelTCP(t *testing.T) {
	e := newEnv(t)
	var ln net.Listener
	if err := e.ns.Do(func() (err error) { ln, err = net.Listen("tcp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	e.iptables(t, "-A", "OUTPUT", "-p", "tcp", "--dport", strconv.Itoa(port), "-j", "NFQUEUE", "--queue-num", "2")
	c := e.open(t, Config{Queue: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n int
	var mu sync.Mutex
	go c.Run(ctx, func(p *Packet) {
		mu.Lock()
		n++
		mu.Unlock()
		p.Accept(ctx)
	})
	got := make(chan string, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer s.Close()
		b, _ := io.ReadAll(s)
		got <- string(b)
	}()
	var conn net.Conn
	if err := e.ns.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp4", ln.Addr().String(), 2*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("over tcp"))
	conn.Close()
	select {
	case s := <-got:
		if s != "over tcp" {
			t.Errorf("server read %q", s)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no data")
	}
	mu.Lock()
	defer mu.Unlock()
	if n < 3 { // SYN, ACK, data, FIN
		t.Errorf("%d packets queued, want the handshake and the data", n)
	}
}

// TestKernelOverrun fills a tiny receive buffer with a burst: overruns are
// counted, yielded as ErrPacketsLost, match the kernel's count of packets
// it could not deliver, and the stream goes on.
func TestKernelOverrun(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "0")
	c := e.open(t, Config{ReadBuffer: 4096})
	// The receiver must hold every datagram that passes.
	raw, err := e.recv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) })
	// Packets waiting in the queue count against their socket's send
	// buffer: a burst of 400 needs several sockets not to block.
	big := strings.Repeat("x", 1200)
	for range 8 {
		s := e.sender(t, 0)
		for range 50 {
			send(t, s, big)
		}
	}
	s := e.sender(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	lost, accepted := 0, 0
	for p, err := range c.Packets(ctx) {
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			if !errors.Is(err, ErrPacketsLost) || !errors.Is(err, unix.ENOBUFS) {
				t.Fatalf("Packets: %v, want ErrPacketsLost", err)
			}
			lost++
			continue
		}
		// The kernel may drop a verdict's answer in an overrun too.
		if err := p.Accept(context.Background()); err != nil && !errors.Is(err, ErrPacketsLost) {
			t.Fatal(err)
		}
		accepted++
	}
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if lost == 0 || uint64(lost) != c.Overruns() || st[0].UserDropped == 0 || accepted+int(st[0].UserDropped) != 400 {
		t.Fatalf("%d overruns yielded, Overruns %d, %d accepted, stats %+v; want overruns and every packet either accepted or counted lost", lost, c.Overruns(), accepted, st)
	}
	if got := e.received(t, 200*time.Millisecond); len(got) != accepted {
		t.Errorf("received %d, want the %d accepted", len(got), accepted)
	}
	send(t, s, "after")
	if err := next(t, c).Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, "after")
	t.Logf("%d of 400 packets lost in %d overruns with a %d-byte buffer", st[0].UserDropped, lost, 4096)
}

// TestKernelBindErrors: a queue bound to another socket is named with that
// socket's port id, and a flag the kernel does not know is named.
func TestKernelBindErrors(t *testing.T) {
	e := newEnv(t)
	c := e.open(t, Config{Queue: 4})
	_, err := Open(context.Background(), &Config{NetNS: e.ns.FD(), Queue: 4})
	want := fmt.Sprintf("bound to another socket, port id %d", c.queues[0].s.Port())
	if !errors.Is(err, unix.EPERM) || !strings.Contains(fmt.Sprint(err), want) {
		t.Errorf("second bind: %v, want EPERM and %q", err, want)
	}
	_, err = Open(context.Background(), &Config{NetNS: e.ns.FD(), Queue: 5, Flags: FlagsFailOpen | 1<<5})
	if !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(fmt.Sprint(err), "flags 0x20:") {
		t.Errorf("unknown flag: %v, want EOPNOTSUPP naming 0x20 alone", err)
	}
	st, err := readStats(e.ns.FD())
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Queue != 4 {
		t.Errorf("queues after the failed binds %+v, want queue 4 alone", st)
	}
}

// TestKernelCloseAndCancel: cancelling ctx ends Packets with ctx's error,
// Close ends a pending Packets with ErrClosed and returns, and a verdict
// after Close fails.
func TestKernelCloseAndCancel(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "0")
	c := e.open(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	for _, err := range c.Packets(ctx) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Packets: %v, want the deadline", err)
		}
	}
	send(t, e.sender(t, 0), "held")
	p := next(t, c)
	ended := make(chan error, 1)
	go func() {
		for _, err := range c.Packets(context.Background()) {
			ended <- err
			return
		}
	}()
	time.Sleep(50 * time.Millisecond)
	// A verdict still waiting for its answer when Close comes.
	waiting := make(chan error, 1)
	q := c.queues[0]
	q.mu.Lock()
	q.pending[q.nextSeq()] = waiting
	q.mu.Unlock()
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case err := <-ended:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Packets after Close: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Packets did not end after Close")
	}
	select {
	case err := <-waiting:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("pending verdict after Close: %v, want ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Error("a pending verdict still waits after Close")
	}
	if err := p.Accept(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("verdict after Close: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The kernel dropped the packet with the queue.
	if got := e.received(t, 200*time.Millisecond); len(got) != 0 {
		t.Errorf("received %q", got)
	}
}

// TestKernelRunEnds: overruns do not stop Run, and Close makes it return
// ErrClosed.
func TestKernelRunEnds(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "0")
	c := e.open(t, Config{ReadBuffer: 4096})
	var handled atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- c.Run(context.Background(), func(p *Packet) {
			handled.Add(1)
			p.Accept(context.Background())
		})
	}()
	big := strings.Repeat("x", 1200)
	for range 8 {
		s := e.sender(t, 0)
		for range 50 {
			send(t, s, big)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for c.Overruns() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.Overruns() == 0 {
		t.Fatal("no overrun")
	}
	before := handled.Load()
	send(t, e.sender(t, 0), "after")
	for handled.Load() == before && time.Now().Before(deadline.Add(2*time.Second)) {
		time.Sleep(10 * time.Millisecond)
	}
	if handled.Load() == before {
		t.Fatal("Run handled nothing after the overruns")
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v after overruns", err)
	default:
	}
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Run after Close: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}

// TestKernelReadBuffer: by default the receive buffer holds a full queue of
// the copy range, bounded; the kernel reports twice the size set.
func TestKernelReadBuffer(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		cfg  Config
		want int
	}{
		{Config{MaxLen: 100, CopyRange: 1000}, 100 * (1024 + 1000 + 1000)},
		{Config{MaxLen: 10, CopyMode: CopyModeMeta}, 256 << 10},
		{Config{}, 64 << 20},
		{Config{ReadBuffer: 1 << 20}, 1 << 20},
	} {
		c := e.open(t, tt.cfg)
		got, err := c.ReadBuffer()
		if err != nil {
			t.Fatal(err)
		}
		if got != 2*tt.want {
			t.Errorf("%+v: receive buffer %d, want 2 × %d", tt.cfg, got, tt.want)
		}
		c.Close()
	}
}
