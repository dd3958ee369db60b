#!/usr/bin/env bash
# make demo: ctspec, the conntrack replacement, at work in a throwaway
# network namespace. It builds ctspec, makes the namespace, fills its
# conntrack table with real loopback traffic and a few flows created with
# ctspec -I, shows the table (-L, -L -o json, -C, -S), watches events (-E)
# while flows come and go, and removes the namespace when it exits. The
# host's own conntrack table is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo needs root: it creates a network namespace and changes its conntrack table." >&2
	echo "Run it as root, for example: sudo make demo" >&2
	exit 1
fi
for tool in ip go; do
	command -v "$tool" >/dev/null 2>&1 || { echo "make demo needs '$tool' (Debian: apt-get install iproute2 golang)" >&2; exit 1; }
done

work=$(mktemp -d)
ns="ctspec-demo-$$"
cleanup() {
	[ -n "${events_pid:-}" ] && kill "$events_pid" 2>/dev/null || true
	[ -n "${traffic_pid:-}" ] && kill "$traffic_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_ns() { ip netns exec "$ns" "$@"; }

step "build ctspec"
go build -o "$work/ctspec" ./cmd/ctspec
go build -o "$work/demotraffic" ./scripts/demotraffic
ct() { echo "\$ ctspec $*"; in_ns "$work/ctspec" "$@"; }

step "make network namespace $ns (loopback up, accounting and timestamps on)"
ip netns add "$ns"
in_ns ip link set lo up
in_ns sh -c 'echo 1 > /proc/sys/net/netfilter/nf_conntrack_acct && echo 1 > /proc/sys/net/netfilter/nf_conntrack_timestamp'

step "real traffic over loopback (TCP and UDP, IPv4 and IPv6) and a few synthetic flows"
# Without a ruleset that uses conntrack, the kernel tracks no traffic in a
# new namespace: one rule that matches on the state turns tracking on.
if command -v nft >/dev/null 2>&1; then
	in_ns nft add table inet demo
	in_ns nft add chain inet demo out '{ type filter hook output priority 0; }'
	in_ns nft add rule inet demo out ct state new counter
else
	echo "(nft is not installed: the real traffic is not tracked; apt-get install nftables)"
fi
ip netns exec "$ns" "$work/demotraffic" -hold 6s &
traffic_pid=$!
sleep 1
ct -I -p tcp -s 192.0.2.1 -d 198.51.100.7 --sport 40000 --dport 443 --state ESTABLISHED -t 300 -u ASSURED,SEEN_REPLY -m 7
ct -I -p udp -s 192.0.2.1 -d 198.51.100.53 --sport 5353 --dport 53 -t 60
ct -I -p icmp -s 192.0.2.1 -d 198.51.100.7 --icmp-type 8 --icmp-code 0 --icmp-id 42 -t 30
ct -I -p udp -s 2001:db8::1 -d 2001:db8::53 --sport 5353 --dport 53 -t 60 -w 3

step "list the table"
ct -L
step "list it as JSON, one object per line"
ct -L -o json
step "only UDP to port 53"
ct -L -p udp --dport 53
step "count and per-CPU statistics"
ct -C
ct -S

step "watch events for a few seconds while flows come and go"
ip netns exec "$ns" "$work/ctspec" -E -o extended &
events_pid=$!
sleep 0.5
in_ns "$work/ctspec" -I -p tcp -s 192.0.2.9 -d 198.51.100.9 --sport 1234 --dport 80 --state SYN_SENT -t 30 2>/dev/null
in_ns "$work/ctspec" -U -s 192.0.2.9 -m 99 >/dev/null 2>&1
in_ns "$work/ctspec" -D -s 192.0.2.9 >/dev/null 2>&1
sleep 2
kill -INT "$events_pid"
wait "$events_pid" || true
events_pid=

step "delete the synthetic flows (pipelined) and flush the rest"
ct -D -s 192.0.2.1
ct -F
ct -C
wait "$traffic_pid" 2>/dev/null || true
traffic_pid=
step "done; namespace $ns is removed on exit"

