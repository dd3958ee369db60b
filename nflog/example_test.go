package nflog_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/ctspec/ctspec/nflog"
)

// Print the packets that iptables -A INPUT -p icmp -j NFLOG --nflog-group 5
// --nflog-prefix ping logs, 64 bytes of each, in batches of up to 16.
func ExampleConn_Bind() {
	c, err := nflog.Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g, err := c.Bind(ctx, 5, &nflog.GroupConfig{
		CopyRange:      64,
		ReadBuffer:     2 * nflog.MiB,
		QueueThreshold: 16,
		FlushTimeout:   100 * time.Millisecond,
		Flags:          nflog.ConfigFlagsSeq,
	})
	if errors.Is(err, nflog.ErrGroupBusy) {
		log.Fatal("another program logs group 5: ", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	var kept []*nflog.Packet
	for p, err := range g.Packets(ctx) {
		if err != nil {
			break // the minute is over, or the group was closed
		}
		fmt.Printf("%d %s in %d, %d bytes\n", p.Seq, p.Prefix, p.InDev, len(p.Payload))
		kept = append(kept, p.Clone()) // p is reused by the next iteration
	}
	fmt.Println(len(kept), "packets,", g.Overruns(), "overruns")
}

// Decode the conntrack entry of logged packets; the group needs the
// conntrack flag, and the kernel CONFIG_NETFILTER_NETLINK_GLUE_CT.
func ExamplePacket_Conntrack() {
	c, err := nflog.Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	g, err := c.Bind(context.Background(), 6, &nflog.GroupConfig{Flags: nflog.ConfigFlagsConntrack})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	for p, err := range g.Packets(context.Background()) {
		if err != nil {
			log.Fatal(err)
		}
		f, err := p.Conntrack()
		if err != nil || f == nil {
			continue
		}
		fmt.Println(f.ID, f.TupleOrig.IP.V4Src, f.TupleOrig.Proto.DstPort)
	}
}
