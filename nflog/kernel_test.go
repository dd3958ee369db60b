package nflog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ctspec/ctspec/internal/nstest"
)

// kernelConn returns a new namespace and a Conn in it.
func kernelConn(t *testing.T) (*nstest.NS, *Conn) {
	t.Helper()
	ns := nstest.New(t)
	c, err := Dial(&Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ns, c
}

// bind binds group num with cfg and closes it when the test ends.
func bind(t *testing.T, c *Conn, num uint16, cfg *GroupConfig) *Group {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := c.Bind(ctx, num, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// sendUDP sends n datagrams of size bytes each from the namespace to
// 127.0.0.1:port, from source port sport (0 for any).
func sendUDP(t *testing.T, ns *nstest.NS, sport, port, n, size int) {
	t.Helper()
	err := ns.Do(func() error {
		// An unconnected socket: the ICMP port unreachable that comes back
		// for each datagram does not fail the next write.
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sport})
		if err != nil {
			return err
		}
		defer c.Close()
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i)
		}
		to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
		for range n {
			if _, err := c.WriteToUDP(b, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// collect receives n packets from g, cloned, within d.
func collect(t *testing.T, g *Group, n int, d time.Duration) []*Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []*Packet
	for p, err := range g.Packets(ctx) {
		if err != nil {
			t.Fatalf("after %d of %d packets: %v", len(out), n, err)
		}
		out = append(out, p.Clone())
		if len(out) == n {
			break
		}
	}
	return out
}

// udpDstPort returns the UDP destination port of an IPv4 payload.
func udpDstPort(t *testing.T, b []byte) int {
	t.Helper()
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != 17 {
		t.Fatalf("payload is not IPv4 UDP: %x", b)
	}
	ihl := int(b[0]&15) * 4
	if len(b) < ihl+4 {
		t.Fatalf("payload too short for UDP ports: %x", b)
	}
	return int(b[ihl+2])<<8 | int(b[ihl+3])
}

// TestKernelIptables logs UDP packets that a user sends to itself with
// iptables' NFLOG target at the output and input hooks, and checks every
// attribute against what the rules and packets must carry.
func TestKernelIptables(t *testing.T) {
	nstest.RequireCommands(t, "iptables", "setpriv")
	ns, c := kernelConn(t)
	ns.Run(t, "iptables", "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "--dport", "9999", "-j", "MARK", "--set-mark", "0x2a")
	ns.Run(t, "iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "9999", "-j", "NFLOG", "--nflog-group", "7", "--nflog-prefix", "out-udp")
	ns.Run(t, "iptables", "-A", "INPUT", "-p", "udp", "--dport", "9999", "-j", "NFLOG", "--nflog-group", "7", "--nflog-prefix", "in-udp")
	g := bind(t, c, 7, nil)
	start := time.Now()
	ns.Run(t, "setpriv", "--reuid=4242", "--regid=4243", "--clear-groups", "/usr/bin/python3", "-c",
		`import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"nflog-test-payload", ("127.0.0.1", 9999))`)
	ps := collect(t, g, 2, 5*time.Second)
	lo := loIndex(t, ns)
	out, in := ps[0], ps[1]
	if out.Prefix != "out-udp" || in.Prefix != "in-udp" {
		t.Fatalf("prefixes %q, %q, want out-udp, in-udp", out.Prefix, in.Prefix)
	}
	for _, p := range ps {
		if p.Family != 2 || p.Group != 7 || p.HWProtocol != 0x0800 {
			t.Errorf("%s: family %d group %d hw protocol %#x, want 2 (NFPROTO_IPV4), 7, 0x800", p.Prefix, p.Family, p.Group, p.HWProtocol)
		}
		if p.Mark != 0x2a || !p.Has(PacketMsgAttrMark) {
			t.Errorf("%s: mark %#x, want 0x2a", p.Prefix, p.Mark)
		}
		if got := udpDstPort(t, p.Payload); got != 9999 || !strings.HasSuffix(string(p.Payload), "nflog-test-payload") {
			t.Errorf("%s: payload %x, want UDP to port 9999 carrying nflog-test-payload", p.Prefix, p.Payload)
		}
		if p.Truncated() {
			t.Errorf("%s: truncated", p.Prefix)
		}
		if p.Unknown != 0 {
			t.Errorf("%s: %d unknown attributes", p.Prefix, p.Unknown)
		}
	}
	// Output: NF_INET_LOCAL_OUT, out through lo, the sender's ids, no
	// timestamp (the kernel sends it up to the forward hook only).
	if out.Hook != 3 || out.OutDev != lo || out.Has(PacketMsgAttrIfindexIndev) || out.Has(PacketMsgAttrTimestamp) {
		t.Errorf("output: hook %d outdev %d indev present %v timestamp present %v, want 3, %d, false, false",
			out.Hook, out.OutDev, out.Has(PacketMsgAttrIfindexIndev), out.Has(PacketMsgAttrTimestamp), lo)
	}
	if out.UID != 4242 || out.GID != 4243 || !out.Has(PacketMsgAttrUid) {
		t.Errorf("output: uid %d gid %d, want 4242, 4243", out.UID, out.GID)
	}
	// Input: NF_INET_LOCAL_IN, in through lo with its all-zero Ethernet
	// header, a timestamp.
	if in.Hook != 1 || in.InDev != lo || in.Has(PacketMsgAttrIfindexOutdev) {
		t.Errorf("input: hook %d indev %d outdev present %v, want 1, %d, false", in.Hook, in.InDev, in.Has(PacketMsgAttrIfindexOutdev), lo)
	}
	if in.HWType != 772 || in.HWLen != 14 || len(in.HWHeader) != 14 || in.HWAddr.String() != "00:00:00:00:00:00" {
		t.Errorf("input: hw type %d len %d header %x addr %v, want 772 (ARPHRD_LOOPBACK), 14, 14 bytes, 00:00:00:00:00:00",
			in.HWType, in.HWLen, in.HWHeader, in.HWAddr)
	}
	if d := in.Timestamp.Sub(start); d < -time.Second || d > 5*time.Second {
		t.Errorf("input: timestamp %v, %v after the send started", in.Timestamp, d)
	}
}

// loIndex returns the interface index of lo in ns.
func loIndex(t *testing.T, ns *nstest.NS) uint32 {
	t.Helper()
	var idx int
	err := ns.Do(func() error {
		i, err := net.InterfaceByName("lo")
		if err == nil {
			idx = i.Index
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return uint32(idx)
}

// TestKernelNftables logs with nftables' log statement in an inet table.
func TestKernelNftables(t *testing.T) {
	nstest.RequireCommands(t, "nft")
	ns, c := kernelConn(t)
	ns.Run(t, "nft", `add table inet t
add chain inet t out { type filter hook output priority 0; }
add rule inet t out udp dport 9998 meta mark set 0x7 log group 8 prefix "nft-out"`)
	g := bind(t, c, 8, nil)
	sendUDP(t, ns, 0, 9998, 1, 32)
	p := collect(t, g, 1, 5*time.Second)[0]
	if p.Prefix != "nft-out" || p.Hook != 3 || p.Family != 2 || p.Mark != 7 || p.OutDev != loIndex(t, ns) {
		t.Errorf("prefix %q hook %d family %d mark %d outdev %d, want nft-out, 3, 2, 7, lo", p.Prefix, p.Hook, p.Family, p.Mark, p.OutDev)
	}
	if udpDstPort(t, p.Payload) != 9998 || len(p.Payload) != 20+8+32 {
		t.Errorf("payload %x, want a 60-byte UDP datagram to 9998", p.Payload)
	}
	if p.UID != 0 || !p.Has(PacketMsgAttrUid) {
		t.Errorf("uid %d present %v, want 0 (the test runs as root)", p.UID, p.Has(PacketMsgAttrUid))
	}
}

// TestKernelCopyRange checks that the copy range truncates the payload and
// that copy mode meta sends none.
func TestKernelCopyRange(t *testing.T) {
	nstest.RequireCommands(t, "iptables")
	ns, c := kernelConn(t)
	for _, g := range []string{"10", "11"} {
		ns.Run(t, "iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "9997", "-j", "NFLOG", "--nflog-group", g)
	}
	short := bind(t, c, 10, &GroupConfig{CopyMode: CopyModePacket, CopyRange: 24})
	meta := bind(t, c, 11, &GroupConfig{CopyMode: CopyModeMeta})
	sendUDP(t, ns, 0, 9997, 1, 100)
	p := collect(t, short, 1, 5*time.Second)[0]
	if len(p.Payload) != 24 || !p.Truncated() || udpDstPort(t, p.Payload) != 9997 {
		t.Errorf("range 24: payload %d bytes %x, truncated %v; want 24 bytes of a UDP datagram to 9997, truncated", len(p.Payload), p.Payload, p.Truncated())
	}
	p = collect(t, meta, 1, 5*time.Second)[0]
	if p.Has(PacketMsgAttrPayload) || p.Payload != nil || p.Truncated() {
		t.Errorf("meta: payload %x present %v, want none", p.Payload, p.Has(PacketMsgAttrPayload))
	}
}

// TestKernelQueueThreshold checks that the kernel holds packets until the
// queue threshold and then sends them in one datagram, which the iterator
// splits into packets.
func TestKernelQueueThreshold(t *testing.T) {
	nstest.RequireCommands(t, "iptables")
	ns, c := kernelConn(t)
	ns.Run(t, "iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "9996", "-j", "NFLOG", "--nflog-group", "12", "--nflog-threshold", "50")
	g := bind(t, c, 12, &GroupConfig{QueueThreshold: 5, FlushTimeout: 60 * time.Second, Flags: ConfigFlagsSeq | ConfigFlagsSeqGlobal})
	sendUDP(t, ns, 0, 9996, 4, 10)
	// Four packets stay in the kernel: below the threshold, well within the
	// flush timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	for p, err := range g.Packets(ctx) {
		if err == nil {
			t.Fatalf("packet %d arrived below the queue threshold", p.Seq)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	}
	cancel()
	if g.datagrams != 0 {
		t.Fatalf("%d datagrams below the threshold", g.datagrams)
	}
	sendUDP(t, ns, 0, 9996, 1, 10)
	// An iteration that stops in the middle of the batch leaves the rest
	// to the next one.
	ps := collect(t, g, 2, 5*time.Second)
	ps = append(ps, collect(t, g, 3, 5*time.Second)...)
	if g.datagrams != 1 {
		t.Errorf("5 packets came in %d datagrams, want 1", g.datagrams)
	}
	// The NLMSG_DONE that ends the batch is no packet.
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for p, err := range g.Packets(ctx) {
		if err == nil {
			t.Fatalf("a sixth packet: %s", p)
		}
	}
	for i, p := range ps {
		if p.Seq != uint32(i) || !p.Has(PacketMsgAttrSeq) {
			t.Errorf("packet %d: seq %d, want %d", i, p.Seq, i)
		}
		if i > 0 && p.SeqGlobal != ps[i-1].SeqGlobal+1 {
			t.Errorf("packet %d: global seq %d after %d", i, p.SeqGlobal, ps[i-1].SeqGlobal)
		}
	}
}

// TestKernelFlushTimeout checks that a packet below the threshold arrives
// after the flush timeout.
func TestKernelFlushTimeout(t *testing.T) {
	nstest.RequireCommands(t, "iptables")
	ns, c := kernelConn(t)
	ns.Run(t, "iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "9995", "-j", "NFLOG", "--nflog-group", "13", "--nflog-threshold", "50")
	g := bind(t, c, 13, &GroupConfig{QueueThreshold: 50, FlushTimeout: 700 * time.Millisecond})
	start := time.Now()
	sendUDP(t, ns, 0, 9995, 1, 10)
	collect(t, g, 1, 5*time.Second)
	if d := time.Since(start); d < 600*time.Millisecond || d > 3*time.Second {
		t.Errorf("packet arrived after %v, want about 700ms", d)
	}
}

// TestKernelGroupBusy binds a group twice.
func TestKernelGroupBusy(t *testing.T) {
	_, c := kernelConn(t)
	g := bind(t, c, 14, nil)
	_, err := c.Bind(context.Background(), 14, nil)
	if !errors.Is(err, ErrGroupBusy) || !strings.Contains(fmt.Sprint(err), "bind group 14: group busy") {
		t.Fatalf("second bind: %v, want group busy", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	g2 := bind(t, c, 14, nil)
	if g2.Num() != 14 {
		t.Fatal(g2.Num())
	}
}

// TestKernelBindErrors checks what the client refuses before the kernel
// sees it.
func TestKernelBindErrors(t *testing.T) {
	_, c := kernelConn(t)
	for _, cfg := range []*GroupConfig{
		{CopyMode: CopyModeMeta, CopyRange: 10},
		{CopyRange: MaxCopyRange + 1},
		{KernelBuffer: 1 * KiB},
		{FlushTimeout: -time.Second},
		{Flags: 0x8},
	} {
		if _, err := c.Bind(context.Background(), 15, cfg); err == nil || !strings.HasPrefix(err.Error(), "nflog: bind group 15: ") {
			t.Errorf("%+v: %v, want an error naming the bind", cfg, err)
		}
	}
}

// TestKernelOverrun fills a tiny receive buffer, checks that the overrun is
// counted and that packets sent afterwards still arrive.
func TestKernelOverrun(t *testing.T) {
	nstest.RequireCommands(t, "iptables")
	ns, c := kernelConn(t)
	ns.Run(t, "iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "9994", "-j", "NFLOG", "--nflog-group", "16")
	g := bind(t, c, 16, &GroupConfig{ReadBuffer: 4 * KiB, QueueThreshold: 1, Flags: ConfigFlagsSeq})
	sendUDP(t, ns, 0, 9994, 100, 1000)
	drops, err := g.Drops()
	if err != nil {
		t.Fatal(err)
	}
	if drops == 0 {
		t.Fatal("no drops with a 4 KiB buffer and 100 packets of 1 KB")
	}
	// Drain what the buffer held: the kernel keeps dropping (the socket
	// stays congested) until the receive queue is empty.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	held := 0
	for p, err := range g.Packets(ctx) {
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Seq >= 100 {
			t.Fatalf("seq %d before the last send", p.Seq)
		}
		held++
	}
	if g.Overruns() == 0 {
		t.Error("overrun not counted")
	}
	if held == 0 || held >= 100 {
		t.Errorf("%d packets held in the buffer, want some, not all", held)
	}
	sendUDP(t, ns, 0, 9994, 1, 1000)
	if p := collect(t, g, 1, 5*time.Second)[0]; p.Seq != 100 {
		t.Errorf("after the overrun: seq %d, want 100", p.Seq)
	}
	t.Logf("drops %d, overruns %d, packets held %d", drops, g.Overruns(), held)
}

// TestKernelCancel ends a blocked iteration by cancelling its context, and
// another by closing the group; each must end within seconds.
func TestKernelCancel(t *testing.T) {
	_, c := kernelConn(t)
	g := bind(t, c, 17, nil)
	last := func(ctx context.Context) error {
		done := make(chan error, 1)
		go func() {
			var got error
			for _, err := range g.Packets(ctx) {
				got = err
			}
			done <- got
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("iteration still blocked 5s later")
			return nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	if err := last(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v, want context.Canceled", err)
	}
	time.AfterFunc(200*time.Millisecond, func() { g.Close() })
	if err := last(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("close: %v, want net.ErrClosed", err)
	}
}

// TestKernelConfigProc binds groups and reads back what the kernel applied
// from /proc/net/netfilter/nfnetlink_log of the namespace: group, port id,
// copy mode, copy range and flush timeout (in hundredths of a second).
func TestKernelConfigProc(t *testing.T) {
	ns, c := kernelConn(t)
	tests := []struct {
		num  uint16
		cfg  GroupConfig
		want string // copy mode, copy range, flush timeout
	}{
		{40, GroupConfig{}, "2 65531 100"},
		{41, GroupConfig{CopyRange: 300, FlushTimeout: 1234 * time.Millisecond}, "2 300 124"},
		{42, GroupConfig{CopyMode: CopyModeMeta, FlushTimeout: 10 * time.Millisecond}, "1 0 1"},
		{0x1234, GroupConfig{CopyRange: 0x10000 - 5, FlushTimeout: 70 * time.Second}, "2 65531 7000"},
	}
	ports := map[string]string{}
	for _, tt := range tests {
		g := bind(t, c, tt.num, &tt.cfg)
		ports[fmt.Sprint(tt.num)] = fmt.Sprint(g.s.Port())
	}
	var proc []byte
	err := ns.Do(func() (err error) {
		proc, err = os.ReadFile("/proc/thread-self/net/netfilter/nfnetlink_log")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(proc)), "\n") {
		// group portid qlen copy_mode copy_range flushtimeout use
		f := strings.Fields(line)
		if len(f) != 7 {
			t.Fatalf("line %q", line)
		}
		if ports[f[0]] != f[1] {
			t.Errorf("group %s: port id %s, want %s", f[0], f[1], ports[f[0]])
		}
		got[f[0]] = strings.Join(f[3:6], " ")
	}
	for _, tt := range tests {
		if g := got[fmt.Sprint(tt.num)]; g != tt.want {
			t.Errorf("group %d %+v: kernel has mode, range, timeout %q, want %q", tt.num, tt.cfg, g, tt.want)
		}
	}
}
