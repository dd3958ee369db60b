// Package nfqueue is a client of nfnetlink_queue, the nfnetlink subsystem
// that hands packets to user space for a verdict (NFNL_SUBSYS_QUEUE),
// generated from spec/nfqueue.yaml with a small hand-written client, as
// libnetfilter_queue serves C programs.
//
// # Queues
//
// A rule sends packets to a numbered queue, for example
//
//	iptables -A INPUT -p tcp --dport 80 -j NFQUEUE --queue-num 3
//	iptables -A FORWARD -j NFQUEUE --queue-balance 0:3 --queue-bypass
//
// and the kernel holds each packet until the socket bound to that queue
// gives it a verdict. [Open] binds Config.Queue, or the range Queue to
// Queue+Count-1 that --queue-balance spreads flows over, one socket each,
// and sets the copy mode and range (the whole packet by default), the queue
// length and the flags ([FlagsFailOpen], [FlagsConntrack], [FlagsGSO],
// [FlagsUIDGID], [FlagsSecCtx]). A queue is bound to one socket: Open fails
// with an error naming the port id of the socket that holds it. The
// obsolete PF_BIND and PF_UNBIND commands are never sent.
//
// Without a bound socket, packets sent to a queue are dropped, unless the
// rule has --queue-bypass, which accepts them. A full queue (Config.MaxLen
// packets waiting) drops further packets, or accepts them with
// FlagsFailOpen; [Conn.Stats] shows the kernel's counters.
//
// # Packets and verdicts
//
// [Conn.Packets] yields the packets of every queue; [Conn.Run] calls a
// function with them from one goroutine per queue. A [Packet] exposes every
// attribute the kernel sends ([Packet.Attrs], a generated [Message]),
// including its conntrack entry as a [ctnetlink.Flow] with FlagsConntrack.
// Its Payload is a view of the message buffer, valid until the verdict;
// [Packet.Clone] keeps a copy. The Packet itself is reused for a later
// packet once it has its verdict, so that receiving, decoding and
// accepting packets allocates nothing on the heap: do not touch it after
// the verdict.
//
// Each packet needs exactly one verdict, [Packet.Verdict] (or Accept,
// Drop), given from any goroutine: a reader of its own per queue receives
// the kernel's answers, so a verdict never waits for the code that reads
// packets, and its error is the kernel's answer to that verdict. A second
// verdict fails with [ErrVerdictGiven], and one on a packet the kernel does
// not hold with [ErrUnknownPacket] (ENOENT). A [Verdict] may set a new
// packet mark, replace the payload ([FixChecksums] then fixes the
// checksums), and change the conntrack entry's mark and labels, which needs
// a kernel built with CONFIG_NETFILTER_NETLINK_GLUE_CT: without it such a
// verdict fails with [ErrNoConntrack] instead of being ignored.
// [Conn.VerdictBatch] gives one verdict to every waiting packet of a queue
// up to an id, and counts each of them as given.
//
// # Asynchronous verdicts
//
// By default a verdict asks the kernel for an acknowledgement and waits
// for it, so that its error is returned to its caller: each verdict costs
// a round trip through the queue's reader. With Config.AsyncVerdicts a
// verdict returns once written, as libnetfilter_queue's do, and Run calls
// its function on the queue's reader itself: with a verdict per packet,
// roughly twice the packets per second on one queue (bench/nfqueue). The kernel still answers a failed
// verdict, with the verdict's sequence number, which is then the packet
// id: the reader passes the error, the queue and the id to
// Config.VerdictError. The trade-off: such an error arrives later, on
// another goroutine, and an overrun of the receive buffer may drop it, in
// which case VerdictError hears of the overrun instead.
//
// # Overruns
//
// When a socket's receive buffer is full, the kernel drops the packet (or
// accepts it with FlagsFailOpen) and the reader sees ENOBUFS: Packets
// yields an error matching [ErrPacketsLost], [Conn.Overruns] counts it, and
// the stream goes on. Open sizes the buffer for a full queue of the copy
// range unless Config.ReadBuffer says otherwise.
//
// # Kernels
//
// Linux 3.8 and later; the spec is synced to Linux 6.18. Binding a queue
// needs CAP_NET_ADMIN in the network namespace.
package nfqueue

//go:generate go run github.com/ctspec/ctspec/gen -spec ../spec/nfqueue.yaml -out . -pkg nfqueue
