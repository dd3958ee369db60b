// Command demotraffic makes a little real traffic over loopback for
// scripts/demo.sh, so that the demo's conntrack table holds flows the
// kernel tracked itself: a few TCP connections over IPv4 and IPv6 that
// exchange a line and close, one that stays open for -hold, and a UDP
// request and answer. It needs nothing but loopback, so it runs in a fresh
// network namespace.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	hold := flag.Duration("hold", 5*time.Second, "how long the last TCP connection stays open")
	flag.Parse()
	if err := run(*hold); err != nil {
		fmt.Fprintln(os.Stderr, "demotraffic:", err)
		os.Exit(1)
	}
}

func run(hold time.Duration) error {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		if err := tcpExchange(addr, 2, 0); err != nil {
			return err
		}
		if err := udpExchange(addr); err != nil {
			return err
		}
	}
	// One connection stays ESTABLISHED while the demo lists the table.
	return tcpExchange("127.0.0.1:0", 1, hold)
}

// tcpExchange opens n connections to a listener on addr; each sends a
// line, reads the echo, and closes after hold.
func tcpExchange(addr string, n int, hold time.Duration) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					c.Write([]byte("echo " + line))
				}
				time.Sleep(hold)
			}()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return err
		}
		fmt.Fprintf(c, "hello %d\n", i)
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			c.Close()
			return err
		}
		time.Sleep(hold)
		c.Close()
	}
	return nil
}

func udpExchange(addr string) error {
	s, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := net.Dial("udp", s.LocalAddr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	s.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, from, err := s.ReadFrom(buf)
	if err != nil {
		return err
	}
	if _, err := s.WriteTo([]byte("pong"), from); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(buf)
	return err
}
