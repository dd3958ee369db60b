// Package nfqueuebench measures the nfqueue client on the kernel, against a
// minimal C consumer on libnetfilter_queue (c/consumer.c, built with cc
// when the benchmark runs), both fed by the same C sender (c/sender.c),
// and checks that both decode the same packets alike. It runs in network namespaces it creates, as root.
//
//	go test -run Differential ./nfqueue
//	go test -run '^$' -bench Throughput -benchtime 1x ./nfqueue
//
// The package has no API.
package nfqueuebench
