package ctnetlink

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// nsFlows fills a new namespace with n UDP flows from 10.<tag>.0.x and
// returns it with the sorted original sources of its flows.
func nsFlows(t *testing.T, tag byte, n int) (*nstest.NS, []string) {
	t.Helper()
	ns := nstest.New(t)
	c, err := Dial(&Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	flows := make([]Flow, n)
	var want []string
	for i := range flows {
		src := netip.AddrFrom4([4]byte{10, tag, 0, byte(i + 1)})
		dst := netip.MustParseAddr("192.0.2.53")
		flows[i].SetTupleOrig(NewTuple(unix.IPPROTO_UDP, netip.AddrPortFrom(src, 4000), netip.AddrPortFrom(dst, 53)))
		flows[i].SetTupleReply(NewTuple(unix.IPPROTO_UDP, netip.AddrPortFrom(dst, 53), netip.AddrPortFrom(src, 4000)))
		flows[i].SetTimeout(300)
		want = append(want, src.String())
	}
	if res, err := c.CreateMany(context.Background(), flows); err != nil || res.Done != n {
		t.Fatalf("fill namespace: %+v, %v", res, err)
	}
	slices.Sort(want)
	return ns, want
}

// reopen returns a new descriptor of ns, which the caller closes.
func reopen(t *testing.T, ns *nstest.NS) int {
	t.Helper()
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", ns.FD()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// sources returns the sorted original sources of a dump.
func sources(ctx context.Context, c *Conn) ([]string, error) {
	var out []string
	for f, err := range c.Dump(ctx, nil) {
		if err != nil {
			return out, err
		}
		out = append(out, f.TupleOrig.Src().String())
	}
	slices.Sort(out)
	return out, nil
}

// TestKernelNetNSClosedAfterDial closes the namespace descriptor right
// after each constructor, lets another namespace take over its number, and
// checks that every later socket still works in the target namespace.
func TestKernelNetNSClosedAfterDial(t *testing.T) {
	target, want := nsFlows(t, 1, 7)
	ctx := ctx(t)

	t.Run("Dial", func(t *testing.T) {
		fd := reopen(t, target)
		c, err := Dial(&Config{NetNS: fd, MaxIdle: 1})
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The caller's namespace: the test never enters it, but it takes
		// the closed descriptor's number when it can.
		caller, _ := nsFlows(t, 2, 3)
		t.Logf("closed descriptor %d, caller's namespace has descriptor %d", fd, caller.FD())

		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 4 {
					got, err := sources(ctx, c)
					if err != nil {
						errs <- err
						return
					}
					if !slices.Equal(got, want) {
						errs <- fmt.Errorf("dump saw %v, want the target's %v", got, want)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("Listen", func(t *testing.T) {
		fd := reopen(t, target)
		l, err := Listen(&ListenConfig{NetNS: fd, Groups: []Group{GroupNew}})
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		caller := nstest.New(t)
		cc, err := Dial(&Config{NetNS: caller.FD()})
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		tc, err := Dial(&Config{NetNS: target.FD()})
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		// A flow in the caller's namespace first, then one in the target.
		if err := cc.Create(ctx, testFlow("192.0.2.66", "192.0.2.2", 1, 80)); err != nil {
			t.Fatal(err)
		}
		if err := tc.Create(ctx, testFlow("192.0.2.77", "192.0.2.2", 1, 80)); err != nil {
			t.Fatal(err)
		}
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for ev, err := range l.Events(ectx) {
			if err != nil {
				t.Fatalf("events: %v", err)
			}
			if ev.Flow == nil {
				continue
			}
			src := ev.Flow.TupleOrig.Src().String()
			if src != "192.0.2.77" {
				t.Fatalf("event for %s, want only the target's 192.0.2.77", src)
			}
			break
		}
	})
}

func TestKernelNetNSPath(t *testing.T) {
	target, want := nsFlows(t, 4, 2)
	ctx := ctx(t)
	c, err := Dial(&Config{NetNSPath: target.Path(), MaxIdle: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := sources(ctx, c); err != nil || !slices.Equal(got, want) {
		t.Fatalf("dump by path: %v, %v; want %v", got, err, want)
	}

	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing name", Config{NetNSPath: "ctspec-no-such-namespace"}, "open network namespace /var/run/netns/ctspec-no-such-namespace"},
		{"not a namespace", Config{NetNSPath: "/proc/self/status"}, "not a network namespace"},
		{"other namespace type", Config{NetNSPath: "/proc/self/ns/uts"}, "not a network namespace"},
		{"both", Config{NetNS: target.FD(), NetNSPath: target.Path()}, "both NetNS and NetNSPath are set"},
		{"negative", Config{NetNS: -2}, "invalid network namespace descriptor -2"},
	}
	for _, tt := range tests {
		_, err := Dial(&tt.cfg)
		var ce *Error
		if !errors.As(err, &ce) || ce.Op != "dial" || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want a dial error with %q", tt.name, err, tt.want)
		}
	}
	if _, err := Dial(&Config{NetNSPath: "ctspec-no-such-namespace"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing name: %v does not match os.ErrNotExist", err)
	}
}
