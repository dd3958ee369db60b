package nfqueue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ctspec/ctspec/internal/nstest"
)

// env is a namespace of its own with a UDP receiver on 127.0.0.1 and a
// sender, both inside it.
type env struct {
	ns   *nstest.NS
	recv *net.UDPConn
	port int
}

// newEnv makes a namespace with a UDP receiver.
func newEnv(t *testing.T) *env {
	t.Helper()
	nstest.RequireRoot(t)
	nstest.RequireCommands(t, "iptables")
	e := &env{ns: nstest.New(t)}
	err := e.ns.Do(func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		e.recv, e.port = c, c.LocalAddr().(*net.UDPAddr).Port
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.recv.Close() })
	return e
}

// iptables runs iptables with args in the namespace.
func (e *env) iptables(t *testing.T, args ...string) {
	t.Helper()
	e.ns.Run(t, "iptables", args...)
}

// queueRule sends the UDP packets to the receiver's port to NFQUEUE with
// the target options opts, from the OUTPUT hook.
func (e *env) queueRule(t *testing.T, opts ...string) {
	t.Helper()
	e.iptables(t, append([]string{"-A", "OUTPUT", "-p", "udp", "--dport", strconv.Itoa(e.port), "-j", "NFQUEUE"}, opts...)...)
}

// sender returns a UDP socket of the namespace connected to the receiver,
// from source port src (0: any).
func (e *env) sender(t *testing.T, src int) *net.UDPConn {
	t.Helper()
	return e.dial(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: src})
}

// senderFrom returns a UDP socket of the namespace connected to the
// receiver, from address ip.
func (e *env) senderFrom(t *testing.T, ip net.IP) *net.UDPConn {
	t.Helper()
	return e.dial(t, &net.UDPAddr{IP: ip})
}

func (e *env) dial(t *testing.T, local *net.UDPAddr) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := e.ns.Do(func() error {
		var err error
		c, err = net.DialUDP("udp4", local, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: e.port})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send sends msg from s.
func send(t *testing.T, s *net.UDPConn, msg string) {
	t.Helper()
	if _, err := s.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// received returns the datagrams the receiver gets within d.
func (e *env) received(t *testing.T, d time.Duration) []string {
	t.Helper()
	var out []string
	buf := make([]byte, 65536)
	deadline := time.Now().Add(d)
	for {
		e.recv.SetReadDeadline(deadline)
		n, err := e.recv.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(buf[:n]))
	}
}

// expectReceived waits for the receiver to get want, and nothing else, in
// that order; it waits at most a second for each.
func (e *env) expectReceived(t *testing.T, want ...string) {
	t.Helper()
	buf := make([]byte, 65536)
	var got []string
	for range want {
		e.recv.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := e.recv.Read(buf)
		if err != nil {
			t.Fatalf("received %q, want %q: %v", got, want, err)
		}
		got = append(got, string(buf[:n]))
	}
	if extra := e.received(t, 100*time.Millisecond); len(extra) > 0 {
		got = append(got, extra...)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("received %q, want %q", got, want)
	}
}

// open binds a Conn in the namespace with cfg (NetNS is set here).
func (e *env) open(t *testing.T, cfg Config) *Conn {
	t.Helper()
	cfg.NetNS = e.ns.FD()
	c, err := Open(context.Background(), &cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// next returns the next packet of c, failing the test after two seconds.
func next(t *testing.T, c *Conn) *Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for p, err := range c.Packets(ctx) {
		if err != nil {
			t.Fatalf("Packets: %v", err)
		}
		return p
	}
	t.Fatal("Packets ended")
	return nil
}

// udpPayload returns the UDP payload of an IPv4 packet.
func udpPayload(t *testing.T, pkt []byte) string {
	t.Helper()
	if len(pkt) < 28 || pkt[0]>>4 != 4 {
		t.Fatalf("not an IPv4 packet: %x", pkt)
	}
	return string(pkt[int(pkt[0]&0xf)*4+8:])
}
