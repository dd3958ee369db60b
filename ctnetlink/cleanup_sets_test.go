package ctnetlink

import (
	"fmt"
	"math/rand"
	"testing"

	"golang.org/x/sys/unix"
)

// TestKernelCleanupSets runs Cleanup with conditions of several values and
// negated ones, which no kernel filter takes, and checks the table left
// against the oracle and that the plan flushes none of them in the kernel.
func TestKernelCleanupSets(t *testing.T) {
	ns, c := dialNS(t)
	reserveLabels(t, ns)
	r := rand.New(rand.NewSource(7))
	tests := []struct {
		name string
		s    Selector
	}{
		{"protocol not tcp", Selector{Proto: NoneOf[uint8](unix.IPPROTO_TCP)}},
		{"udp or sctp", Selector{Proto: AnyOf[uint8](unix.IPPROTO_UDP, unix.IPPROTO_SCTP)}},
		{"marked", Selector{Mark: NoneOf(MarkMatch{})}},
		{"mark low byte 1 or 2", Selector{Mark: AnyOf(MarkMatch{1, 0xff}, MarkMatch{2, 0xff})}},
		{"zone 1 or 2", Selector{Zone: AnyOf[uint16](1, 2)}},
		{"without seen reply", Selector{Status: NoneOf(StatusMatch{Status: StatusSeenReply})}},
		{"tcp not established", Selector{Proto: Protocol(unix.IPPROTO_TCP), TCPStates: NoneOf(TCPStateEstablished)}},
	}
	for _, tt := range tests {
		for _, noKernel := range []bool{false, true} {
			ctx := ctx(t)
			name := fmt.Sprintf("%s (no-kernel-filters=%v)", tt.name, noKernel)
			before := markSeenReply(ctx, t, c, fillFieldsTable(ctx, t, c, r, ""))
			var want []string
			for i := range before {
				if !oracleSelects(&tt.s, &before[i]) {
					want = append(want, flowKey(&before[i]))
				}
			}
			if len(want) == 0 || len(want) == len(before) {
				t.Fatalf("%s: the oracle selects %d of %d flows; the test proves nothing", name, len(before)-len(want), len(before))
			}
			res, err := c.Cleanup(ctx, []Selector{tt.s}, &CleanupOptions{NoKernelFilters: noKernel})
			if err != nil || res.Failed != 0 {
				t.Fatalf("%s: %v %+v", name, err, res.Samples)
			}
			if len(res.Plan.Flushes) != 0 {
				t.Fatalf("%s: a kernel flush for a set or a negation:\n%s", name, res.Plan.String())
			}
			checkLeft(ctx, t, c, name, want, &res)
			if err := c.Flush(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}
