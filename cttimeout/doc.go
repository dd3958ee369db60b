// Package cttimeout is a client of cttimeout, the nfnetlink subsystem of
// Linux conntrack timeout policies (NFNL_SUBSYS_CTNETLINK_TIMEOUT), generated
// from spec/cttimeout.yaml with a small hand-written client, as conntrack-tools'
// "nfct timeout" uses it.
//
// # Policies
//
// A timeout policy is a named set of timeouts for one layer 3 and layer 4
// protocol, for example shorter ESTABLISHED and TIME_WAIT timeouts for TCP.
// [Conn.Create], [Conn.Update], [Conn.Get], [Conn.List] and [Conn.Delete]
// manage policies; [Conn.DefaultGet] and [Conn.DefaultSet] read and change
// the timeouts every flow of a protocol gets when no policy applies.
//
// A policy does nothing until a rule attaches it to flows: iptables' CT
// target, for example
//
//	iptables -t raw -A PREROUTING -p tcp --dport 80 -j CT --timeout NAME
//
// While a rule or a flow uses a policy, deleting it fails with EBUSY.
// nftables' "ct timeout" objects are a different mechanism, kept in
// nf_tables itself, and are not visible here.
//
// # Timeouts
//
// [Timeouts] maps the states of a protocol to their timeouts, keyed by the
// kernel's state name without its prefix: "ESTABLISHED", "SYN_SENT" and
// "UNACK" for TCP (CTA_TIMEOUT_TCP_*), "UNREPLIED" and "REPLIED" for UDP,
// UDP-Lite and GRE, "TIMEOUT" for ICMP, ICMPv6 and the generic tracker, and
// the states of DCCP and SCTP. The kernel counts in whole seconds.
// Protocols without a tracker of their own use the generic set with l4proto
// 255.
//
// # Errors
//
// Kernel failures keep the *netlink.OpError with the extended ACK and name
// the operation; use errors.Is with os.ErrNotExist (ENOENT: no such policy),
// os.ErrExist, unix.EBUSY (the policy is in use) or unix.EOPNOTSUPP (no
// timeout support for the protocol, or the subsystem is missing).
//
// # Kernels
//
// Linux 3.4 and later have cttimeout; the spec is synced to Linux 6.18.
// Talking to it needs CAP_NET_ADMIN in the network namespace.
package cttimeout

//go:generate go run github.com/ctspec/ctspec/gen -spec ../spec/cttimeout.yaml -out . -pkg cttimeout
