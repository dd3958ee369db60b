package nfqueue_test

import (
	"context"
	"log"

	"github.com/ctspec/ctspec/nfqueue"
)

// Accept every packet of queue 3, giving DNS packets a mark; send packets
// there with
//
//	iptables -A OUTPUT -p udp -j NFQUEUE --queue-num 3
func ExampleConn_Packets() {
	ctx := context.Background()
	c, err := nfqueue.Open(ctx, &nfqueue.Config{Queue: 3})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	dnsMark := uint32(53)
	for p, err := range c.Packets(ctx) {
		if err != nil {
			log.Print(err) // an overrun (ErrPacketsLost) or the end
			continue
		}
		v := nfqueue.Verdict{Action: nfqueue.Accept}
		if len(p.Payload) > 23 && p.Payload[9] == 17 && p.Payload[22] == 0 && p.Payload[23] == 53 {
			v.Mark = &dnsMark
		}
		if err := p.Verdict(ctx, v); err != nil {
			log.Print(err)
		}
	}
}

// Spread flows over four queues (iptables -j NFQUEUE --queue-balance 0:3
// --queue-bypass) and handle each queue in a goroutine of its own, with
// fail-open so that a full queue passes packets rather than drop them.
func ExampleConn_Run() {
	ctx := context.Background()
	c, err := nfqueue.Open(ctx, &nfqueue.Config{Queue: 0, Count: 4, Flags: nfqueue.FlagsFailOpen})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	err = c.Run(ctx, func(p *nfqueue.Packet) {
		if err := p.Accept(ctx); err != nil {
			log.Print(err)
		}
	})
	log.Fatal(err)
}

// Give verdicts without waiting for the kernel's answer, as
// libnetfilter_queue does: Run then calls the function on each queue's
// reader, and the kernel's errors, such as ENOENT for a packet it does not
// hold, arrive later with the packet's id.
func ExampleConfig_asyncVerdicts() {
	ctx := context.Background()
	c, err := nfqueue.Open(ctx, &nfqueue.Config{
		Queue:         0,
		AsyncVerdicts: true,
		VerdictError: func(queue uint16, id uint32, err error) {
			log.Printf("queue %d, packet %d: %v", queue, id, err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	err = c.Run(ctx, func(p *nfqueue.Packet) {
		// Returns once written: an error here is ours, not the kernel's.
		if err := p.Accept(ctx); err != nil {
			log.Print(err)
		}
	})
	log.Fatal(err)
}
