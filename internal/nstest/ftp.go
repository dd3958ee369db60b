package nstest

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FTPRuleset attaches the kernel's FTP helper to TCP connections to port
// 21, those that arrive (prerouting) and those made locally (output).
const FTPRuleset = `table inet t {
	ct helper ftp-h { type "ftp" protocol tcp; }
	chain pre { type filter hook prerouting priority 0; tcp dport 21 ct helper set "ftp-h"; }
	chain out { type filter hook output priority 0; tcp dport 21 ct helper set "ftp-h"; }
}`

// LoadFTPHelper loads FTPRuleset into the namespace with nft(8), which the
// test then needs.
func (ns *NS) LoadFTPHelper(tb testing.TB) {
	tb.Helper()
	RequireCommands(tb, "nft")
	cmd := ns.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(FTPRuleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("nft -f: %v\n%s", err, out)
	}
}

// FTPSession runs a minimal FTP control connection on 127.0.0.1:21 inside
// the namespace: the client logs in and then sends cmd, such as a PORT
// command, which the kernel's FTP helper (LoadFTPHelper) parses. It returns
// the client's and the server's address of the control connection, which
// stays open until the test ends.
//
// The FTP helper reads a command only at the start of a segment that
// follows a line end it has seen in the same direction, so the client sends
// USER first and waits for each answer before the next command.
func (ns *NS) FTPSession(tb testing.TB, cmd string) (client, server netip.AddrPort) {
	tb.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp4", "127.0.0.1:21")
		return err
	}); err != nil {
		tb.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer s.Close()
		s.SetDeadline(time.Now().Add(time.Minute))
		if _, err := s.Write([]byte("220 ready\r\n")); err != nil {
			done <- err
			return
		}
		r := bufio.NewReader(s)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				done <- nil // the client closed the session
				return
			}
			answer := "200 ok\r\n"
			if strings.HasPrefix(line, "USER ") {
				answer = "331 send a password\r\n"
			}
			if _, err := s.Write([]byte(answer)); err != nil {
				done <- err
				return
			}
		}
	}()
	var cl net.Conn
	if err := ns.Do(func() (err error) {
		cl, err = net.Dial("tcp4", "127.0.0.1:21")
		return err
	}); err != nil {
		ln.Close()
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() {
		cl.Close()
		if err := <-done; err != nil {
			tb.Errorf("ftp server: %v", err)
		}
		ln.Close()
	})
	cl.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(cl)
	expectLine := func(prefix string) {
		tb.Helper()
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, prefix) {
			tb.Fatalf("ftp client: got %q, %v; want a line starting with %q", line, err, prefix)
		}
	}
	expectLine("220 ")
	for _, c := range []struct{ send, want string }{{"USER anonymous\r\n", "331 "}, {cmd + "\r\n", "200 "}} {
		if _, err := cl.Write([]byte(c.send)); err != nil {
			tb.Fatalf("ftp client: %v", err)
		}
		expectLine(c.want)
	}
	return netip.MustParseAddrPort(cl.LocalAddr().String()), netip.MustParseAddrPort(cl.RemoteAddr().String())
}
