package mirror

import (
	"fmt"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// mirrorSources returns the sorted original sources of the mirror's flows.
func mirrorSources(m *Mirror) []string {
	var out []string
	for e := range m.Range {
		o := e.Orig()
		out = append(out, o.Src().String())
	}
	slices.Sort(out)
	return out
}

// TestKernelMirrorNetNSClosedAfterNew closes the namespace descriptor
// right after New, lets another namespace take over its number, and checks
// that every resynchronisation still dumps the target namespace.
func TestKernelMirrorNetNSClosedAfterNew(t *testing.T) {
	target, tc := dialNS(t)
	ctx := ctx(t)
	flows := manyFlows(7)
	if res, err := tc.CreateMany(ctx, flows); err != nil || res.Done != len(flows) {
		t.Fatalf("fill target: %+v, %v", res, err)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", target.FD()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(ctx, &Config{NetNS: fd})
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The caller's namespace: the test never enters it, but it takes the
	// closed descriptor's number when it can.
	caller := nstest.New(t)
	cc, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: caller.FD()})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := cc.Create(ctx, testFlow("192.0.2.66", "192.0.2.2", 1, 80)); err != nil {
		t.Fatal(err)
	}
	t.Logf("closed descriptor %d, caller's namespace has descriptor %d", fd, caller.FD())
	var all []string
	for f, err := range tc.Dump(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, f.TupleOrig.Src().String())
	}
	slices.Sort(all)
	for range 3 {
		if err := m.Resync(ctx); err != nil {
			t.Fatalf("resync: %v", err)
		}
		if got := mirrorSources(m); !slices.Equal(got, all) {
			t.Fatalf("mirror holds %v, the target %v", got, all)
		}
	}
}
