package nfqueue

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Stats are the kernel's counters of one queue, from
// /proc/net/netfilter/nfnetlink_queue of the queue's network namespace.
type Stats struct {
	// Queue is the queue number.
	Queue uint16
	// PortID is the netlink port id of the socket bound to the queue.
	PortID uint32
	// Waiting is how many packets wait for their verdict (queue_total).
	Waiting uint32
	// CopyMode and CopyRange are the queue's copy settings.
	CopyMode  CopyMode
	CopyRange uint32
	// Dropped counts packets dropped because the queue was full
	// (queue_dropped).
	Dropped uint32
	// UserDropped counts packets the kernel could not deliver to the
	// socket, its receive buffer being full (queue_user_dropped).
	UserDropped uint32
	// LastID is the id of the last packet queued (id_sequence).
	LastID uint32
}

// Stats returns the kernel's counters of c's queues.
func (c *Conn) Stats() ([]Stats, error) {
	all, err := readStats(c.cfg.NetNS)
	if err != nil {
		return nil, fmt.Errorf("nfqueue: stats: %w", err)
	}
	var out []Stats
	for _, s := range all {
		for _, q := range c.queues {
			if s.Queue == q.num {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

const statsPath = "/proc/thread-self/net/netfilter/nfnetlink_queue"

// readStats reads the counters of every queue of the namespace netns (0:
// the calling thread's).
func readStats(netns int) ([]Stats, error) {
	var b []byte
	err := inNetNS(netns, func() error {
		var err error
		b, err = os.ReadFile(statsPath)
		return err
	})
	if err != nil {
		return nil, err
	}
	return parseStats(b)
}

// parseStats parses the lines of /proc/net/netfilter/nfnetlink_queue:
// queue, port id, waiting, copy mode, copy range, dropped, user dropped,
// last id and a constant 1.
func parseStats(b []byte) ([]Stats, error) {
	var out []Stats
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("line %q: want 9 fields", sc.Text())
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("line %q: field %d: %w", sc.Text(), i+1, err)
			}
			v[i] = n
		}
		if v[0] > 0xffff || v[3] > 0xff {
			return nil, fmt.Errorf("line %q: out of range", sc.Text())
		}
		out = append(out, Stats{Queue: uint16(v[0]), PortID: uint32(v[1]), Waiting: uint32(v[2]), CopyMode: CopyMode(v[3]),
			CopyRange: uint32(v[4]), Dropped: uint32(v[5]), UserDropped: uint32(v[6]), LastID: uint32(v[7])})
	}
	return out, sc.Err()
}

// inNetNS runs f on a thread of its own in the network namespace netns, or
// on the calling goroutine for netns 0. The thread ends with f, so it never
// goes back to the runtime in the wrong namespace; f never runs on the
// process's main thread, which the runtime cannot end.
func inNetNS(netns int, f func() error) error {
	if netns <= 0 {
		return f()
	}
	return onNewThread(func() error {
		if err := unix.Setns(netns, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		return f()
	})
}

// onNewThread runs f on a new goroutine locked to its OS thread, not the
// main thread, and never unlocked, so that the thread ends with f.
func onNewThread(f func() error) error {
	c := make(chan error)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			err := onNewThread(f)
			runtime.UnlockOSThread() // untouched: back to the pool
			c <- err
			return
		}
		c <- f()
	}()
	return <-c
}

func newBufPool(size int) *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 0, size); return &b }}
}
