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
// BenchmarkDial opens and closes each Go client's connection, the set-up
// the dump benchmarks leave out while conntrack -L pays its process start.
// BenchmarkEvents counts a 200k-event burst with ctspec's Listener (which
// decodes and counts) at its default buffer and at 256 MiB, and with the
// ctspec command and conntrack -E (which format text into a pipe), each
// with its default buffer and with -b for 256 MiB. The peak-rss children
// also print the time of the run they measure, so that a peak RSS comes
// with the time of the same run.
//
// BenchmarkCommandRuns compares the ctspec command with conntrack as whole
// processes on the same 100k-flow table: -R of 100k and 1M lines, three
// kinds of -D, -L, -L -o xml and three small calls (-C, -G and -I of one
// flow). Each row runs every tool in turn, several times, so that all see
// the same load; it reports the median wall time, the CPU time and peak
// RSS of the median run, and x-conntrack, conntrack's median over the
// tool's. The processes fork from a thread inside the namespace, so no
// nsenter start-up is timed. ctspec is built static (CGO_ENABLED=0), and
// the small calls also run the dynamically linked binary of a plain go
// build. Floors run in the same rows: for the small calls a Go program
// that only prints, /bin/true, and the program in ./floor sending -C's one
// request on a raw socket and through mdlayher/netlink; for -D, ctspec
// --kernel-flush (one filtered kernel flush) and one unfiltered flush of
// the same table from the benchmark's process; for -L, the raw receive of
// the same dump from the benchmark's process.
//
// The README's performance tables come from the report program, which
// prints them first, every cell naming the method it measures, then one
// row per benchmark. It runs the read-only workloads with the default
// -benchtime, the ones that change the table with a fixed number of
// iterations after a warm-up iteration, and the cleanups of 250k tables,
// some of which take minutes, once.
package bench
