package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ctspec/ctspec/internal/nstest"
)

// ioTimeout bounds every read and write of the traffic generators.
const ioTimeout = 5 * time.Second

// traffic holds the sockets of the traffic flows. They stay open until the
// dumps are taken, so that TCP connections are still ESTABLISHED.
type traffic struct {
	ns      *nstest.NS
	closers []io.Closer
}

// startTraffic runs every traffic generator inside ns. On error it closes
// what it opened.
func startTraffic(ns *nstest.NS) (*traffic, error) {
	t := &traffic{ns: ns}
	steps := []struct {
		what string
		fn   func() error
	}{
		{"tcp4", func() error { return t.tcp("tcp4", tcp4Client, tcp4Server) }},
		{"tcp6", func() error { return t.tcp("tcp6", tcp6Client, tcp6Server) }},
		{"udp4", func() error { return t.udp("udp4", udp4Client, udp4Server) }},
		{"ftp4", func() error {
			return t.ftp("tcp4", ftp4Client, ftp4Server, "PASV", "227 Entering Passive Mode (127,0,0,1,195,80).")
		}},
		{"ftp6", func() error {
			return t.ftp("tcp6", ftp6Client, ftp6Server, "EPSV", "229 Entering Extended Passive Mode (|||50000|)")
		}},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			t.Close()
			return nil, fmt.Errorf("%s traffic: %w", s.what, err)
		}
	}
	// Let delayed acknowledgements go out: until the last segment is
	// acknowledged, the kernel counts one packet less and gives the
	// entry the short timeout for unacknowledged data.
	time.Sleep(settle)
	return t, nil
}

// settle is how long the sockets stay idle before the dumps, well above
// the delayed-acknowledgement timeout of 40 to 200 ms.
const settle = 500 * time.Millisecond

// Close closes every socket.
func (t *traffic) Close() error {
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		errs = append(errs, t.closers[i].Close())
	}
	t.closers = nil
	return errors.Join(errs...)
}

// connect opens a listener on server and a connection from client to it
// inside the namespace, and returns both ends of the connection.
func (t *traffic) connect(network string, client, server netip.AddrPort) (cl, srv net.Conn, err error) {
	var ln net.Listener
	err = t.ns.Do(func() error {
		// No keep-alive probes: counters must not change while the
		// connection sits idle.
		lc := net.ListenConfig{KeepAlive: -1}
		var err error
		if ln, err = lc.Listen(context.Background(), network, server.String()); err != nil {
			return err
		}
		t.closers = append(t.closers, ln)
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(client), Timeout: ioTimeout, KeepAlive: -1}
		if cl, err = d.Dial(network, server.String()); err != nil {
			return err
		}
		t.closers = append(t.closers, cl)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	// The accepted socket belongs to the listener's namespace whatever
	// thread accepts it.
	if srv, err = ln.Accept(); err != nil {
		return nil, nil, err
	}
	t.closers = append(t.closers, srv)
	deadline := time.Now().Add(ioTimeout)
	if err := errors.Join(cl.SetDeadline(deadline), srv.SetDeadline(deadline)); err != nil {
		return nil, nil, err
	}
	return cl, srv, nil
}

// tcp exchanges a few messages over a TCP connection and leaves it open.
func (t *traffic) tcp(network string, client, server netip.AddrPort) error {
	cl, srv, err := t.connect(network, client, server)
	if err != nil {
		return err
	}
	return pingPong(cl, srv)
}

// pingPong sends "ping\n" from a to b and "pong\n" back, exchanges times.
func pingPong(a, b io.ReadWriter) error {
	buf := make([]byte, 5)
	for i := 0; i < exchanges; i++ {
		if _, err := a.Write([]byte("ping\n")); err != nil {
			return err
		}
		if _, err := io.ReadFull(b, buf); err != nil {
			return err
		}
		if _, err := b.Write([]byte("pong\n")); err != nil {
			return err
		}
		if _, err := io.ReadFull(a, buf); err != nil {
			return err
		}
	}
	return nil
}

// udp exchanges a few datagrams between client and server.
func (t *traffic) udp(network string, client, server netip.AddrPort) error {
	var cl, srv *net.UDPConn
	err := t.ns.Do(func() error {
		var err error
		if srv, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(server)); err != nil {
			return err
		}
		t.closers = append(t.closers, srv)
		if cl, err = net.DialUDP(network, net.UDPAddrFromAddrPort(client), net.UDPAddrFromAddrPort(server)); err != nil {
			return err
		}
		t.closers = append(t.closers, cl)
		return nil
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(ioTimeout)
	if err := errors.Join(cl.SetDeadline(deadline), srv.SetDeadline(deadline)); err != nil {
		return err
	}
	buf := make([]byte, 16)
	for i := 0; i < exchanges; i++ {
		if _, err := cl.Write([]byte("ping\n")); err != nil {
			return err
		}
		_, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		if _, err := srv.WriteToUDPAddrPort([]byte("pong\n"), from); err != nil {
			return err
		}
		if _, err := cl.Read(buf); err != nil {
			return err
		}
	}
	return nil
}

// ftp plays the start of an FTP session: the server greets, the client
// sends command and the server answers with reply, from which the kernel's
// ftp helper creates an expectation for the data connection. The helper
// only parses a line that follows a complete line in the same direction,
// hence the greeting before the reply.
func (t *traffic) ftp(network string, client, server netip.AddrPort, command, reply string) error {
	cl, srv, err := t.connect(network, client, server)
	if err != nil {
		return err
	}
	clr, srvr := bufio.NewReader(cl), bufio.NewReader(srv)
	steps := []struct {
		w    io.Writer
		r    *bufio.Reader
		line string
	}{
		{srv, clr, "220 ctspec capture"},
		{cl, srvr, command},
		{srv, clr, reply},
	}
	for _, s := range steps {
		if _, err := io.WriteString(s.w, s.line+"\r\n"); err != nil {
			return err
		}
		got, err := s.r.ReadString('\n')
		if err != nil {
			return err
		}
		if got = strings.TrimRight(got, "\r\n"); got != s.line {
			return fmt.Errorf("read %q, want %q", got, s.line)
		}
	}
	return nil
}
