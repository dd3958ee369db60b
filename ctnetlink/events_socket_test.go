package ctnetlink

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// TestKernelEventsPortID checks Event.PortID: the events that a Conn's
// requests cause carry the port ID of the Conn's socket, and an event that
// the kernel causes by itself, the removal of an expired flow, carries 0.
func TestKernelEventsPortID(t *testing.T) {
	ns, c := dialNS(t)
	l := listenNS(t, ns, ListenConfig{})
	ctx := ctx(t)

	a := testFlow("192.0.2.1", "192.0.2.2", 1000, 80)
	b := testFlow("192.0.2.3", "192.0.2.2", 1000, 80)
	b.SetTimeout(1)
	for _, f := range []*Flow{a, b} {
		if err := c.Create(ctx, f); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	var u Flow
	u.SetTupleOrig(a.TupleOrig)
	u.SetMark(9)
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := c.Delete(ctx, a); err != nil {
		t.Fatalf("delete: %v", err)
	}

	type rec struct {
		Type   EventType
		Orig   string
		PortID uint32
	}
	var got []rec
	bOrig := tupleString(&b.TupleOrig)
	expired := false
	// b expires a second after its creation. A dump removes the expired
	// flows it meets, as the garbage collector does, both on the kernel's
	// own account.
	for end := time.Now().Add(20 * time.Second); !expired && time.Now().Before(end); {
		if _, err := c.List(ctx, nil); err != nil {
			t.Fatalf("list: %v", err)
		}
		readIdle(t, l, 200*time.Millisecond, 5*time.Second, func(ev *Event, err error) bool {
			if err != nil {
				t.Fatalf("events: %v", err)
			}
			got = append(got, rec{ev.Type, tupleString(&ev.Flow.TupleOrig), ev.PortID})
			if ev.Type == EventDestroy && got[len(got)-1].Orig == bOrig {
				expired = true
			}
			return true
		})
	}
	if len(got) == 0 || got[0].PortID == 0 {
		t.Fatalf("events %+v: want a first event with a port id", got)
	}
	port := got[0].PortID
	aOrig := tupleString(&a.TupleOrig)
	want := []rec{
		{EventNew, aOrig, port},
		{EventNew, bOrig, port},
		{EventUpdate, aOrig, port},
		{EventDestroy, aOrig, port},
		{EventDestroy, bOrig, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}

	// The port ID is that of a socket of this process in the namespace:
	// the Conn's, which joined no group.
	groups, inode := netfilterSocket(t, ns, port)
	if inode == 0 {
		t.Fatalf("port id %d names no NETLINK_NETFILTER socket of the namespace", port)
	}
	if strings.Trim(groups, "0") != "" {
		t.Errorf("port id %d names a socket in groups %s, not the Conn's", port, groups)
	}
	if !ownsSocket(t, inode) {
		t.Errorf("port id %d names socket inode %d, which this process does not hold", port, inode)
	}
}

// netfilterSocket returns the groups and the inode of the
// NETLINK_NETFILTER socket with port id port in ns, from
// /proc/net/netlink, or an inode of 0 if there is none.
func netfilterSocket(t *testing.T, ns *nstest.NS, port uint32) (groups string, inode uint64) {
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
			if len(f) < 10 || f[1] != strconv.Itoa(unix.NETLINK_NETFILTER) || f[2] != strconv.FormatUint(uint64(port), 10) {
				continue
			}
			groups = f[3]
			inode, err = strconv.ParseUint(f[9], 10, 64)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return groups, inode
}

// ownsSocket reports whether a file descriptor of this process refers to
// the socket with the given inode.
func ownsSocket(t *testing.T, inode uint64) bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("socket:[%d]", inode)
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == want {
			return true
		}
	}
	return false
}

// kernelVersion returns the running kernel's major and minor version.
func kernelVersion(t *testing.T) (int, int) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatalf("uname: %v", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kernel release %q: %v", rel, err)
	}
	return major, minor
}
