// Command floor is the floor of a small call of a Go conntrack command:
// a program that asks the kernel for the conntrack statistics once, the
// request conntrack -C sends, and exits. The benchmarks of the bench
// module run it beside conntrack and ctspec as whole processes.
//
//	floor raw      one request on a blocking netlink socket of its own
//	floor netlink  the same request through github.com/mdlayher/netlink,
//	               the transport ctspec stands on
//
// It prints the kernel's reply length and exits 0, or prints an error and
// exits 1.
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ipctnlMsgCtGetStats is IPCTNL_MSG_CT_GET_STATS from
// linux/netfilter/nfnetlink_conntrack.h.
const ipctnlMsgCtGetStats = 5

// msgType is the netlink message type of the request: the ctnetlink
// subsystem and the message.
const msgType = unix.NFNL_SUBSYS_CTNETLINK<<8 | ipctnlMsgCtGetStats

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floor raw|netlink")
		os.Exit(2)
	}
	var n int
	var err error
	switch os.Args[1] {
	case "raw":
		n, err = raw()
	case "netlink":
		n, err = viaNetlink()
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	fmt.Println(n)
}

// raw sends the request on a blocking socket and reads one reply.
func raw() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	req := make([]byte, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], msgType)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(req[8:], 1)
	req[16] = unix.AF_UNSPEC
	req[17] = unix.NFNETLINK_V0
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("receive: %w", err)
	}
	if n < unix.NLMSG_HDRLEN || binary.NativeEndian.Uint16(buf[4:]) != msgType {
		return 0, errors.New("receive: not a statistics reply")
	}
	return n, nil
}

// viaNetlink sends the request through github.com/mdlayher/netlink.
func viaNetlink() (int, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return 0, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: msgType, Flags: netlink.Request | netlink.Acknowledge},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return 0, fmt.Errorf("execute: %w", err)
	}
	if len(msgs) == 0 {
		return 0, errors.New("execute: no reply")
	}
	return len(msgs[0].Data), nil
}
