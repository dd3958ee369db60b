package nflog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctspec/ctspec/internal/nstest"
)

// BenchmarkReceive sends b.N UDP datagrams of 100 bytes as fast as one
// goroutine can, logged by an iptables NFLOG rule, and receives them: the
// packets/s received, the share lost and the overruns, with the socket's
// default receive buffer and with 2 MiB, one packet per datagram (the NFLOG
// target's default threshold) and 32 per datagram.
func BenchmarkReceive(b *testing.B) {
	for _, bc := range []struct {
		buf       Size
		threshold int
	}{{0, 1}, {2 * MiB, 1}, {0, 32}, {2 * MiB, 32}} {
		name := fmt.Sprintf("buffer=default/threshold=%d", bc.threshold)
		if bc.buf != 0 {
			name = fmt.Sprintf("buffer=%dMiB/threshold=%d", bc.buf/MiB, bc.threshold)
		}
		b.Run(name, func(b *testing.B) { benchReceive(b, bc.buf, bc.threshold) })
	}
}

func benchReceive(b *testing.B, buf Size, threshold int) {
	nstest.RequireCommands(b, "iptables")
	ns := nstest.New(b)
	c, err := Dial(&Config{NetNS: ns.FD()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ns.Run(b, "iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "9988", "-j", "NFLOG", "--nflog-group", "30",
		"--nflog-threshold", fmt.Sprint(threshold))
	g, err := c.Bind(context.Background(), 30, &GroupConfig{ReadBuffer: buf, QueueThreshold: uint32(threshold),
		FlushTimeout: 10 * time.Millisecond, CopyRange: 128})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	sent := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() {
		sent <- ns.Do(func() error {
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return err
			}
			defer conn.Close()
			to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9988}
			p := make([]byte, 100)
			for range b.N {
				if _, err := conn.WriteToUDP(p, to); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	var received int
	var last atomic.Int64 // UnixNano of the last packet received
	last.Store(start.UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sendErr error
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		sendErr = <-sent
		// What the kernel still holds arrives within the flush timeout;
		// stop once nothing came for 200 ms.
		for time.Since(time.Unix(0, last.Load())) < 200*time.Millisecond {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}()
	for _, err := range g.Packets(ctx) {
		if errors.Is(err, context.Canceled) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		received++
		last.Store(time.Now().UnixNano())
	}
	<-stopped
	if sendErr != nil {
		b.Fatal(sendErr)
	}
	elapsed := time.Unix(0, last.Load()).Sub(start)
	b.StopTimer()
	if received > 0 && elapsed > 0 {
		b.ReportMetric(float64(received)/elapsed.Seconds(), "pkts/s")
	}
	b.ReportMetric(100*float64(b.N-received)/float64(b.N), "%lost")
	b.ReportMetric(float64(g.Overruns()), "overruns")
}
