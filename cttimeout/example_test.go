package cttimeout_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/cttimeout"
)

// Create a policy with a short TCP ESTABLISHED timeout; attach it with
// iptables -t raw -A PREROUTING -p tcp --dport 80 -j CT --timeout web.
func ExampleConn_Create() {
	c, err := cttimeout.Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	err = c.Create(context.Background(), &cttimeout.Policy{
		Name:     "web",
		Family:   unix.NFPROTO_IPV4,
		Protocol: unix.IPPROTO_TCP,
		Timeouts: cttimeout.Timeouts{"ESTABLISHED": 10 * time.Minute, "TIME_WAIT": 30 * time.Second},
	})
	if err != nil {
		log.Fatal(err)
	}
}

// List every policy with its TCP ESTABLISHED timeout.
func ExampleConn_List() {
	c, err := cttimeout.Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for p, err := range c.List(context.Background()) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p.Name, p.Protocol, p.Timeouts["ESTABLISHED"], "in use:", p.Use > 1)
	}
}

// The states a protocol has, in the kernel's order.
func ExampleStates() {
	fmt.Println(cttimeout.States(unix.IPPROTO_UDP))
	fmt.Println(cttimeout.States(unix.IPPROTO_GRE))
	// Output:
	// [UNREPLIED REPLIED]
	// [UNREPLIED REPLIED]
}
