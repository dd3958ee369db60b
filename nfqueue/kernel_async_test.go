package nfqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// verdictErrors collects what Config.VerdictError receives.
type verdictErrors struct {
	mu   sync.Mutex
	got  []asyncError
	more chan struct{}
}

// asyncError is one call of Config.VerdictError.
type asyncError struct {
	queue uint16
	id    uint32
	err   error
}

func newVerdictErrors() *verdictErrors { return &verdictErrors{more: make(chan struct{}, 1)} }

func (v *verdictErrors) add(queue uint16, id uint32, err error) {
	v.mu.Lock()
	v.got = append(v.got, asyncError{queue, id, err})
	v.mu.Unlock()
	select {
	case v.more <- struct{}{}:
	default:
	}
}

// wait returns the errors once there are n of them, failing the test after
// two seconds.
func (v *verdictErrors) wait(t *testing.T, n int) []asyncError {
	t.Helper()
	timeout := time.After(2 * time.Second)
	for {
		v.mu.Lock()
		got := append([]asyncError(nil), v.got...)
		v.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-v.more:
		case <-timeout:
			t.Fatalf("verdict errors: got %v, want %d", got, n)
		}
	}
}

// openAsync binds a Conn with AsyncVerdicts and a collecting VerdictError.
func (e *env) openAsync(t *testing.T, cfg Config) (*Conn, *verdictErrors) {
	t.Helper()
	v := newVerdictErrors()
	cfg.AsyncVerdicts, cfg.VerdictError = true, v.add
	return e.open(t, cfg), v
}

// TestKernelAsyncAcceptDrop: an asynchronous accept lets the packet
// through, an asynchronous drop drops it, and neither reports an error.
func TestKernelAsyncAcceptDrop(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "2")
	c, errs := e.openAsync(t, Config{Queue: 2})
	s := e.sender(t, 0)

	for _, msg := range []string{"a1", "a2", "a3"} {
		send(t, s, msg)
		if err := next(t, c).Accept(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	e.expectReceived(t, "a1", "a2", "a3")

	send(t, s, "dropped")
	p := next(t, c)
	if err := p.Drop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.received(t, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("received %q after an asynchronous drop", got)
	}
	if err := p.Accept(context.Background()); !errors.Is(err, ErrVerdictGiven) {
		t.Errorf("second verdict: %v, want ErrVerdictGiven", err)
	}
	errs.mu.Lock()
	defer errs.mu.Unlock()
	if len(errs.got) != 0 {
		t.Errorf("verdict errors %v, want none", errs.got)
	}
}

// TestKernelAsyncUnknownID: the kernel's ENOENT for a verdict on an id it
// does not hold reaches VerdictError with that id and queue, while the
// verdict call itself returned nil.
func TestKernelAsyncUnknownID(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "4")
	c, errs := e.openAsync(t, Config{Queue: 4})
	send(t, e.sender(t, 0), "x")
	p := next(t, c)
	ghostID := p.ID + 1000
	ghost := &Packet{ID: ghostID, Queue: p.Queue, q: p.q}
	if err := ghost.Accept(context.Background()); err != nil {
		t.Fatalf("asynchronous verdict on an unknown id: %v, want nil", err)
	}
	got := errs.wait(t, 1)
	if len(got) != 1 || got[0].queue != 4 || got[0].id != ghostID {
		t.Fatalf("verdict errors %v, want one for queue 4, packet %d", got, ghostID)
	}
	err := got[0].err
	if !errors.Is(err, ErrUnknownPacket) || !errors.Is(err, os.ErrNotExist) || !errors.Is(err, unix.ENOENT) {
		t.Errorf("error %v, want ErrUnknownPacket and ENOENT", err)
	}
	if want := fmt.Sprintf("verdict on packet %d of queue 4", ghostID); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	// The real packet is unaffected.
	if err := p.Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, "x")
	if got := errs.wait(t, 1); len(got) != 1 {
		t.Errorf("verdict errors %v, want only the one", got)
	}
}

// TestKernelAsyncBatch: an asynchronous batch verdict lets the packets up
// to its id through, and one with no packet left to cover reports ENOENT
// with its id.
func TestKernelAsyncBatch(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "0")
	c, errs := e.openAsync(t, Config{})
	s := e.sender(t, 0)
	var ps []*Packet
	var want []string
	for i := range 5 {
		msg := fmt.Sprintf("b%d", i)
		send(t, s, msg)
		want = append(want, msg)
		ps = append(ps, next(t, c))
	}
	ids := make([]uint32, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	if err := c.VerdictBatch(context.Background(), ps[3], Verdict{Action: Accept}); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, want[:4]...)
	if err := c.VerdictBatch(context.Background(), ps[4], Verdict{Action: Accept}); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, want[4])

	// Every packet has its verdict: a batch up to the last id covers none.
	ghost := &Packet{ID: ids[4], Queue: 0, q: ps[4].q}
	if err := c.VerdictBatch(context.Background(), ghost, Verdict{Action: Drop}); err != nil {
		t.Fatal(err)
	}
	got := errs.wait(t, 1)
	if len(got) != 1 || got[0].id != ids[4] || !errors.Is(got[0].err, unix.ENOENT) || !strings.Contains(got[0].err.Error(), "batch verdict up to packet") {
		t.Fatalf("verdict errors %v, want ENOENT of the batch up to packet %d", got, ids[4])
	}
}

// TestOpenAsyncNeedsVerdictError: asynchronous verdicts without a place to
// report their errors are refused before anything is bound.
func TestOpenAsyncNeedsVerdictError(t *testing.T) {
	_, err := Open(context.Background(), &Config{AsyncVerdicts: true})
	if err == nil || !strings.Contains(err.Error(), "VerdictError") {
		t.Fatalf("Open: %v, want an error naming VerdictError", err)
	}
}

// TestKernelAllocs measures the heap allocations of receiving, decoding
// and accepting packets, in both verdict modes, and subtracts what the
// socket's Send costs by itself: what nfqueue adds must be nothing.
func TestKernelAllocs(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			e := newEnv(t)
			e.queueRule(t, "--queue-num", "0")
			cfg := Config{MaxLen: 8192}
			var c *Conn
			if async {
				var errs *verdictErrors
				c, errs = e.openAsync(t, cfg)
				t.Cleanup(func() {
					errs.mu.Lock()
					defer errs.mu.Unlock()
					if len(errs.got) > 0 {
						t.Errorf("verdict errors %v", errs.got)
					}
				})
			} else {
				c = e.open(t, cfg)
			}
			s := e.sender(t, 0)
			// NLMSG_NOOP without NLM_F_ACK: the kernel ignores it.
			noop := make([]byte, 16)
			noop[0], noop[4] = 16, unix.NLMSG_NOOP
			sendAllocs := testing.AllocsPerRun(200, func() {
				if err := c.queues[0].s.Send(noop); err != nil {
					t.Fatal(err)
				}
			})

			const warm, n = 500, 5000
			msg := []byte("0123456789abcdef")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			run := func(count int) (uint64, error) {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				sendErr := make(chan error, 1)
				go func() {
					for range count {
						if _, err := s.Write(msg); err != nil {
							sendErr <- err
							return
						}
					}
					sendErr <- nil
				}()
				done := 0
				for p, err := range c.Packets(ctx) {
					if err != nil {
						return 0, err
					}
					if err := p.Accept(ctx); err != nil {
						return 0, err
					}
					if done++; done == count {
						break
					}
				}
				if err := <-sendErr; err != nil {
					return 0, err
				}
				runtime.ReadMemStats(&after)
				return after.Mallocs - before.Mallocs, nil
			}
			if _, err := run(warm); err != nil {
				t.Fatal(err)
			}
			mallocs, err := run(n)
			if err != nil {
				t.Fatal(err)
			}
			per := float64(mallocs) / n
			t.Logf("%.3f allocations per packet, of which Send %.1f", per, sendAllocs)
			if raceEnabled {
				// Measured, not judged: the count needs a build without -race.
				return
			}
			if extra := per - sendAllocs; extra > 0.05 {
				t.Errorf("%.3f allocations per packet besides the %.1f of Send, want none", extra, sendAllocs)
			}
		})
	}
}

// TestKernelAsyncRun: with AsyncVerdicts, Run first hands over the packets
// queued before it started, then takes the later ones from the reader
// itself: every packet reaches fn once, in order, one call at a time; Run
// returns ctx's error, after which packets wait for the next reader of the
// inbox again.
func TestKernelAsyncRun(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "0")
	c, errs := e.openAsync(t, Config{})
	s := e.sender(t, 0)
	var want []string
	for i := range 10 {
		msg := fmt.Sprintf("early%d", i)
		send(t, s, msg)
		want = append(want, msg)
	}
	// Let the reader queue them all before Run starts.
	time.Sleep(100 * time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var seen []string
	var inFn atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(p *Packet) {
			if inFn.Add(1) != 1 {
				t.Error("fn called while another call runs")
			}
			mu.Lock()
			seen = append(seen, udpPayload(t, p.Payload))
			mu.Unlock()
			if err := p.Accept(ctx); err != nil {
				t.Error(err)
			}
			inFn.Add(-1)
		})
	}()
	e.expectReceived(t, want...)
	var late []string
	for i := range 30 {
		msg := fmt.Sprintf("late%d", i)
		send(t, s, msg)
		late = append(late, msg)
	}
	e.expectReceived(t, late...)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	mu.Lock()
	if got := fmt.Sprint(seen); got != fmt.Sprint(append(want, late...)) {
		t.Errorf("fn saw %v, want %v", seen, append(want, late...))
	}
	mu.Unlock()

	// After Run, packets go to the inbox again.
	send(t, s, "after")
	p := next(t, c)
	if got := udpPayload(t, p.Payload); got != "after" {
		t.Errorf("packet after Run: %q, want %q", got, "after")
	}
	if err := p.Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.expectReceived(t, "after")
	errs.mu.Lock()
	defer errs.mu.Unlock()
	if len(errs.got) != 0 {
		t.Errorf("verdict errors %v, want none", errs.got)
	}
}

// TestKernelAsyncOverrun: an overrun, which may have dropped the kernel's
// error answers to asynchronous verdicts, reaches VerdictError with id 0
// and ErrPacketsLost, once per overrun Packets yields.
func TestKernelAsyncOverrun(t *testing.T) {
	e := newEnv(t)
	e.queueRule(t, "--queue-num", "0")
	c, errs := e.openAsync(t, Config{ReadBuffer: 4096})
	raw, err := e.recv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) })
	big := strings.Repeat("x", 1200)
	for range 8 {
		s := e.sender(t, 0)
		for range 50 {
			send(t, s, big)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	lost := 0
	for p, err := range c.Packets(ctx) {
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			if !errors.Is(err, ErrPacketsLost) {
				t.Fatalf("Packets: %v, want ErrPacketsLost", err)
			}
			lost++
			continue
		}
		if err := p.Accept(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if lost == 0 {
		t.Fatal("no overrun with a 4096-byte buffer")
	}
	got := errs.wait(t, lost)
	if len(got) != lost {
		t.Fatalf("%d verdict errors, want one per overrun, %d", len(got), lost)
	}
	for _, g := range got {
		if g.queue != 0 || g.id != 0 || !errors.Is(g.err, ErrPacketsLost) || !errors.Is(g.err, unix.ENOBUFS) {
			t.Errorf("verdict error %+v, want queue 0, id 0, ErrPacketsLost", g)
		}
	}
}
