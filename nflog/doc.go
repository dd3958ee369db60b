// Package nflog is a client of nflog, the nfnetlink subsystem of Linux
// packet logging (NFNL_SUBSYS_ULOG), generated from spec/nflog.yaml with a
// small hand-written client: it receives the packets that netfilter rules
// log to a group, as ulogd2 and libnetfilter_log do.
//
// # Groups
//
// A rule logs packets to a numbered group: iptables' NFLOG target
//
//	iptables -A INPUT -p icmp -j NFLOG --nflog-group 5 --nflog-prefix ping
//
// or nftables' log statement, log group 5 prefix "ping". [Conn.Bind] binds
// a group to a socket of its own and configures it in one request: copy mode
// and range, the kernel's buffer size, the queue threshold and flush
// timeout, and the flags that add sequence numbers and conntrack entries.
// One socket at a time may hold a group; binding a group another socket
// holds fails with an error that matches [ErrGroupBusy]. Closing the
// [Group] releases the group.
//
// # Packets
//
// [Group.Packets] is an iterator of [Packet] values with every attribute
// the kernel sends decoded: prefix, hook, link layer protocol, mark,
// timestamp, devices and physical devices, link layer address and header,
// uid and gid, sequence numbers, conntrack entry, VLAN tag and payload.
// The kernel collects up to the queue threshold packets, or what arrives
// within the flush timeout, in one datagram; the iterator yields them one by
// one. Byte slices of a Packet alias the receive buffer and are valid until
// the next iteration; [Packet.Clone] keeps one. [Packet.Conntrack] decodes
// the conntrack entry into a [ctnetlink.Flow] with the conntrack package's
// own decoder.
//
// # Overruns
//
// When packets arrive faster than the program reads them, the socket's
// receive buffer overflows and the kernel drops what does not fit; the next
// receive reports ENOBUFS, and the kernel keeps dropping the group's
// packets until the socket's queue is drained. The iterator counts each
// such report ([Group.Overruns]) and goes on. A larger receive buffer
// ([GroupConfig.ReadBuffer]) makes overruns rarer: at least the queue
// threshold times the copy range, and megabytes for thousands of packets
// per second.
//
// # Errors and shutdown
//
// Errors name the operation and the group and wrap the kernel's errno:
// errors.Is works with unix.EPERM, unix.EOPNOTSUPP and [ErrGroupBusy].
// Cancelling the iterator's context ends it with the context's error; Close
// ends it from any goroutine and always returns.
//
// # Kernels
//
// Linux 2.6.14 and later have nflog; the spec is synced to Linux 6.18. The
// kernel rejects unknown flags since Linux 6.5. Conntrack entries in logged
// packets need a kernel built with CONFIG_NETFILTER_NETLINK_GLUE_CT; without
// it Bind with ConfigFlagsConntrack fails with EOPNOTSUPP. Binding a group
// needs CAP_NET_ADMIN in the network namespace.
//
// # Measured
//
// On two shared cores, one goroutine receives about 70,000 to 95,000
// packets/s of 100 bytes, as fast as one sender makes them. With one packet
// per datagram (the NFLOG target's default threshold) the default receive
// buffer lost 0.6% to 13% of them, a 2 MiB buffer none (BenchmarkReceive).
package nflog

//go:generate go run github.com/ctspec/ctspec/gen -spec ../spec/nflog.yaml -out . -pkg nflog
