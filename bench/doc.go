// Package bench compares ctspec's ctnetlink client with the other ways to
// read and change the conntrack table from Go and from the shell: a raw
// netlink receive loop (the physical limit of a dump), vishvananda/netlink,
// ti-mo/conntrack and the conntrack(8) command of conntrack-tools.
//
// The package holds only benchmarks. It is a module of its own so that the
// peers it measures never become dependencies of ctspec.
//
// # Running
//
// From the repository root, make bench runs the suite through the report
// program and prints one Markdown table. Inside bench/,
//
//	go run ./report            # the whole suite and the table
//	go test -run '^$' -bench . -benchmem -timeout 60m
//	go test -run '^$' -bench 'Dump/n=100k/ctspec-stream' -cpuprofile cpu.out
//
// run it by hand. The benchmarks need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)
// and the conntrack and nsenter commands. Each workload runs in a network
// namespace it creates, so the host's conntrack table is never read or
// changed. Without root they skip, or fail when CTSPEC_REQUIRE_KERNEL=1.
//
// # Metrics
//
// Every kernel benchmark reports flows/s. Its ns/op and flows/s are those
// of the median iteration, not the mean, so that an iteration another
// process slowed down does not skew them on a small shared machine. Dumps
// also report x-raw, their time as a multiple of the raw receive loop's for
// the same table. Go code reports allocs/flow and B/flow over all
// iterations; table setup between iterations is not timed and not counted.
// The peak-rss benchmarks run one dump of the largest table, or one
// ctspec cleanup of a 250k table, in a child process (the test binary
// again, or conntrack under GNU time) and report its peak resident set
// size, VmHWM, in MiB; the idle child only dials. The cleanup benchmarks
// check after every run that exactly the selected flows are gone. Where
// conntrack would need one command per endpoint, 1,000 commands of about a
// second each, the suite runs a sample of them and scales the time up;
// cli-sample says how many ran.
//
// BenchmarkCommandRuns compares the ctspec command with conntrack as whole
// processes on the same 100k-flow table: -R of 100k and 1M lines, three
// kinds of -D, -L, -L -o xml and one small call (-G of one flow). Each
// row runs every tool in turn, several times, so that all see the same
// load; it reports the median wall time, the peak RSS of the median run
// (from wait4's rusage, the same run), and x-conntrack, conntrack's median
// over the tool's. The processes fork from a thread inside the namespace,
// so no nsenter start-up is timed. Floors run in the same rows: a Go
// program that only prints (Go's start-up), /bin/true, and ctspec
// --kernel-flush, one filtered kernel flush.
//
// The table of the README comes from the report program, which runs the
// read-only workloads with the default -benchtime, the ones that change
// the table with a fixed number of iterations after a warm-up iteration,
// and the cleanups of 250k tables, some of which take minutes, once.
package bench
