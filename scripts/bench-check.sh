#!/usr/bin/env bash
# Build, vet and check bench/, a module of its own that go ... ./... from
# the repository root never reaches. The benchmarks have no Test functions;
# their correctness checks (every tool sees the flows it should, a cleanup
# leaves exactly the unselected flows) run inside the benchmarks, so this
# runs a cheap selection of them once each (-benchtime=1x), with the same
# no-skip rule as make unit. Timings printed here mean nothing: make bench
# measures.
#
# BENCH_RUN selects the benchmarks: go test -bench regexps separated by
# spaces, one go test run each. The default leaves out the 100k and 250k
# tables and the peers that take minutes on them, but keeps ctspec's
# cleanups of 250k tables, which check what they leave behind, and one
# listener of each kind in the events benchmark.
# BENCH_RUN=. runs every benchmark once (25 minutes on two busy cores).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
BENCH_RUN=${BENCH_RUN:-'^(BenchmarkDecode|BenchmarkDial)$ ^BenchmarkEvents$/^(ctspec-default|ctspec-256MiB|ctspec-cli-default|conntrack-cli-default)$ ^BenchmarkDump$/^n=10k$ ^BenchmarkCleanup(Endpoints|Mark|State)$/^ctspec'}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$GO build -o "$tmp/noskip" ./scripts/noskip

cd bench
$GO mod download
test -z "$(gofmt -l .)" || { echo "bench: not gofmt'd:"; gofmt -l .; exit 1; }
$GO build ./...
$GO vet ./...
for re in $BENCH_RUN; do
	"$tmp/noskip" $GO test -json -count=1 -run '^$' -bench "$re" -benchtime=1x -timeout 30m .
done
# nfqueue's decoding against libnetfilter_queue's, packet by packet.
"$tmp/noskip" $GO test -json -count=1 -run '^TestDifferential$' -timeout 10m ./nfqueue
