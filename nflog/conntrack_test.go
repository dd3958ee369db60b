package nflog

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/nstest"
)

// glueCT reports whether the running kernel was built with
// CONFIG_NETFILTER_NETLINK_GLUE_CT, which lets nflog add conntrack entries
// to packets, and whether the kernel's configuration could be read at all.
func glueCT() (on, known bool) {
	var cfg []byte
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		if z, err := gzip.NewReader(f); err == nil {
			cfg, _ = io.ReadAll(z)
		}
	}
	if cfg == nil {
		var uts unix.Utsname
		_ = unix.Uname(&uts)
		cfg, _ = os.ReadFile("/boot/config-" + unix.ByteSliceToString(uts.Release[:]))
	}
	if cfg == nil {
		return false, false
	}
	return bytes.Contains(cfg, []byte("\nCONFIG_NETFILTER_NETLINK_GLUE_CT=y")), true
}

// TestKernelConntrack binds a group with the conntrack flag. A kernel
// without CONFIG_NETFILTER_NETLINK_GLUE_CT must refuse it with EOPNOTSUPP
// and an error that says why; a kernel with it must send the packet's
// entry, which must be the flow ctnetlink shows for the same traffic.
func TestKernelConntrack(t *testing.T) {
	nstest.RequireCommands(t, "iptables")
	ns, c := kernelConn(t)
	ns.Run(t, "iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "9989", "-j", "NFLOG", "--nflog-group", "18")
	on, known := glueCT()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := c.Bind(ctx, 18, &GroupConfig{Flags: ConfigFlagsConntrack})
	if known && !on || err != nil {
		if known && on || !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), "CONFIG_NETFILTER_NETLINK_GLUE_CT") {
			t.Fatalf("bind with the conntrack flag on a kernel with glue %v (config read: %v): %v", on, known, err)
		}
		t.Logf("kernel without CONFIG_NETFILTER_NETLINK_GLUE_CT: %v", err)
		return
	}
	defer g.Close()
	sendUDP(t, ns, 40001, 9989, 1, 8)
	p := collect(t, g, 1, 5*time.Second)[0]
	f, err := p.Conntrack()
	if err != nil || f == nil {
		t.Fatalf("conntrack: %v, %v", f, err)
	}
	if p.CTInfo != 2 {
		t.Errorf("ct info %d, want 2 (IP_CT_NEW) for the first packet", p.CTInfo)
	}
	o := f.TupleOrig
	if o.Proto.Num != unix.IPPROTO_UDP || o.Proto.SrcPort != 40001 || o.Proto.DstPort != 9989 || o.IP.V4Src.String() != "127.0.0.1" {
		t.Errorf("original tuple %+v, want UDP 127.0.0.1:40001 -> :9989", o)
	}
	ct, err := ctnetlink.Dial(&ctnetlink.Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Close()
	found := false
	for k, err := range ct.Dump(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if k.ID == f.ID {
			found = true
			if k.TupleOrig.IP != o.IP || k.TupleOrig.Proto != o.Proto || k.TupleReply.Proto != f.TupleReply.Proto {
				t.Errorf("ctnetlink shows %+v, nflog sent %+v", k.TupleOrig, o)
			}
		}
	}
	if !found {
		t.Errorf("no flow with id %d in the table", f.ID)
	}
}
