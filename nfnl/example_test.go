package nfnl_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/ctspec/ctspec/nfnl"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Frame two requests as a batch, then find the request a reply answers.
func ExampleBatch() {
	b := nfnl.NewBatch(nfnl.SubsysNFTables)
	for _, msg := range []uint8{0x00, 0x02} {
		b.Add(netlink.Message{
			Header: netlink.Header{
				Type:  nfnl.Type(nfnl.SubsysNFTables, msg),
				Flags: nfnl.Create | nfnl.Acknowledge,
			},
			Data: nfnl.Header{Family: unix.AF_INET, Version: nfnl.Version0}.Append(nil),
		})
	}
	for _, m := range b.Messages(100) {
		s, msg := nfnl.SplitType(m.Header.Type)
		fmt.Printf("seq %d: %s message %#02x\n", m.Header.Sequence, s, msg)
	}

	// The kernel rejects the second request.
	reply := (&nfnl.Error{Errno: unix.EINVAL, Sequence: 102}).Encode()

	e, err := nfnl.DecodeError(reply)
	if err != nil {
		fmt.Println(err)
		return
	}
	if i, ok := b.Index(e.Sequence); ok {
		fmt.Printf("request %d: %v\n", i, e.Err())
	}
	// Output:
	// seq 100: none message 0x10
	// seq 101: nftables message 0x00
	// seq 102: nftables message 0x02
	// seq 103: none message 0x11
	// request 1: nfnl: errno 22: invalid argument
}

// Tell acknowledgements from errors in a stream of replies, and match errors
// with errors.Is.
func ExampleDecodeError() {
	replies := []netlink.Message{
		(&nfnl.Error{Sequence: 1, Capped: true}).Encode(),
		(&nfnl.Error{Errno: unix.ENOENT, Sequence: 2, Capped: true}).Encode(),
		(&nfnl.Error{Errno: unix.EINVAL, Sequence: 3, Capped: true, Message: "bad attribute", Offset: 20}).Encode(),
	}
	for _, m := range replies {
		e, err := nfnl.DecodeError(m)
		if err != nil {
			fmt.Println(err)
			return
		}
		switch err := e.Err(); {
		case err == nil:
			fmt.Printf("seq %d: ack\n", e.Sequence)
		case errors.Is(err, os.ErrNotExist):
			fmt.Printf("seq %d: not found\n", e.Sequence)
		default:
			fmt.Printf("seq %d: %v\n", e.Sequence, err)
		}
	}
	// Output:
	// seq 1: ack
	// seq 2: not found
	// seq 3: nfnl: errno 22: invalid argument (extack: "bad attribute", offset 20)
}
