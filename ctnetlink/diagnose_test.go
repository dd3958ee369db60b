package ctnetlink

import (
	"fmt"
	"log"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// ExampleDiagnose explains on standard error why a listener in the
// caller's network namespace may receive no events.
func ExampleDiagnose() {
	d, err := Diagnose(0)
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range d.Hints() {
		fmt.Fprintln(os.Stderr, "hint:", h)
	}
}

func TestDiagnoseHints(t *testing.T) {
	eperm := &Error{Op: "listen", Err: unix.EPERM}
	tests := []struct {
		name string
		d    EventDiagnosis
		want []string // one substring per hint
	}{
		{"events on", EventDiagnosis{Conntrack: true, Events: 1, Built: "y"}, nil},
		{"events off", EventDiagnosis{Conntrack: true, Events: 0, Built: "y"}, []string{"nf_conntrack_events is 0"}},
		{"listener mode", EventDiagnosis{Conntrack: true, Events: 2, Built: "y"}, []string{"created before the first listener"}},
		{"not built", EventDiagnosis{Conntrack: true, Events: -1, Built: "n"}, []string{"built without CONFIG_NF_CONNTRACK_EVENTS"}},
		{"no sysctl", EventDiagnosis{Conntrack: true, Events: -1}, []string{"does not exist"}},
		{"no conntrack", EventDiagnosis{Events: -1, Built: "y"}, []string{"connection tracking is not active"}},
		{"unknown value", EventDiagnosis{Conntrack: true, Events: 7}, []string{"is 7"}},
		{"no privilege", EventDiagnosis{Conntrack: true, Events: 1, ListenErr: eperm}, []string{"needs CAP_NET_ADMIN"}},
		{"listen fails", EventDiagnosis{Conntrack: true, Events: 2, ListenErr: &Error{Op: "listen", Err: unix.EINVAL}},
			[]string{"listening for conntrack events failed", "is 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.d.Hints()
			if len(got) != len(tt.want) {
				t.Fatalf("hints %q, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("hint %d %q does not say %q", i, got[i], w)
				}
				if strings.HasSuffix(got[i], ".") {
					t.Errorf("hint %d ends with a period: %q", i, got[i])
				}
			}
		})
	}
}

// TestKernelDiagnose sets nf_conntrack_events in a namespace and checks
// what Diagnose reads and advises, from outside the namespace (its file
// descriptor) and from inside (netns 0 on a thread in it).
func TestKernelDiagnose(t *testing.T) {
	ns := nstest.New(t)
	tests := []struct {
		value string
		want  int
		hint  string // a substring of the one hint, or "" for none
	}{
		{"0", 0, "the kernel sends no conntrack events"},
		{"2", 2, "flows created before the first listener never have any"},
		{"1", 1, ""},
	}
	for _, tt := range tests {
		t.Run("events="+tt.value, func(t *testing.T) {
			ns.Sysctl(t, "net.netfilter.nf_conntrack_events", tt.value)
			check := func(where string, d *EventDiagnosis, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				if !d.Conntrack || d.Events != tt.want || d.ListenErr != nil {
					t.Errorf("%s: %+v, want conntrack, events %d, no listen error", where, d, tt.want)
				}
				if d.Built != "y" && d.Built != "" {
					t.Errorf("%s: CONFIG_NF_CONNTRACK_EVENTS=%q on a kernel that sends events", where, d.Built)
				}
				hints := d.Hints()
				switch {
				case tt.hint == "" && len(hints) != 0:
					t.Errorf("%s: hints %q, want none", where, hints)
				case tt.hint != "" && (len(hints) != 1 || !strings.Contains(hints[0], tt.hint)):
					t.Errorf("%s: hints %q, want one saying %q", where, hints, tt.hint)
				}
			}
			d, err := Diagnose(ns.FD())
			check("by descriptor", d, err)
			if err := ns.Do(func() error {
				d, err := Diagnose(0)
				check("inside", d, err)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// Diagnose changes nothing.
			if v, err := readSysctlInt(ns.FD(), sysctlEvents); err != nil || fmt.Sprint(v) != tt.value {
				t.Errorf("nf_conntrack_events is %d (%v) after Diagnose, want %s", v, err, tt.value)
			}
		})
	}
}

func TestKernelDiagnoseBadNamespace(t *testing.T) {
	nstest.RequireRoot(t)
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Diagnose(int(f.Fd())); err == nil {
		t.Error("Diagnose of /dev/null as a namespace succeeded")
	}
}
