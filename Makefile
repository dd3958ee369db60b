# ctspec — see README.md. `make demo` shows the project at work in a
# throwaway network namespace; `make test` runs the whole test suite.

GO        ?= go
# Executions per fuzz target: a count, not a duration, so that a loaded
# machine makes the step slower, never wrong (see scripts/fuzz.sh).
FUZZTIME  ?= 10000x
# Each spec and the package generated from it.
SPECS     := conntrack:ctnetlink cttimeout:cttimeout nfqueue:nfqueue nflog:nflog
# go test's limit per package: the command's differential tests take 5 to
# 17 minutes on two loaded cores.
TESTTIMEOUT ?= 45m

.PHONY: all build generate check-generated headergen-check vet unit fuzz test check demo bench bench-check mutate mutate-gremlins mutate-hand clean

all: build

build:
	$(GO) build ./...

# Regenerate every package's zz_generated_*.go from its spec.
generate:
	$(GO) generate ./...

# Fail, with a diff, when the committed generated code differs from what the
# spec and the generator produce now.
check-generated:
	@set -e; for p in $(SPECS); do \
		echo "$(GO) run ./gen -spec spec/$${p%%:*}.yaml -out $${p#*:} -pkg $${p#*:} -check"; \
		$(GO) run ./gen -spec spec/$${p%%:*}.yaml -out $${p#*:} -pkg $${p#*:} -check; \
	done

# Compare each spec with the installed kernel UAPI headers.
headergen-check:
	@set -e; for p in $(SPECS); do \
		echo "$(GO) run ./tools/headergen check -spec spec/$${p%%:*}.yaml"; \
		$(GO) run ./tools/headergen check -spec spec/$${p%%:*}.yaml; \
	done

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "not gofmt'd:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Unit and kernel tests, with the race detector. Kernel tests run in network
# namespaces they create; without root they skip, unless
# CTSPEC_REQUIRE_KERNEL=1 turns the skip into a failure (CI sets it).
# scripts/noskip prints what go test prints and, under
# CTSPEC_REQUIRE_KERNEL=1, fails when any test skipped.
unit:
	$(GO) run ./scripts/noskip $(GO) test -json -race -count=1 -timeout $(TESTTIMEOUT) ./... ./gen/testdata/basic

# Run every fuzz target for FUZZTIME executions; a failing target prints its
# output and the crasher go saved in the package's testdata/fuzz.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh ./... ./gen/testdata/basic

check: vet check-generated headergen-check unit

# bench/ is a module of its own, so ./... above never reaches it: build and
# vet it, and run its benchmarks once each with their built-in checks
# (flow counts, what a cleanup left behind), on the smaller tables only.
bench-check:
	GO=$(GO) bash scripts/bench-check.sh

# The whole suite: what CI runs.
test: check fuzz bench-check

demo:
	bash scripts/demo.sh

# Compare ctspec with raw netlink, vishvananda/netlink, ti-mo/conntrack and
# conntrack(8) in throwaway network namespaces (needs root; about 5 to 8 minutes)
# and print the results as one Markdown table. bench/ is a module of its own.
bench:
	cd bench && $(GO) run ./report
	cd bench && $(GO) test -count=1 -run '^$$' -bench Throughput -benchtime 1x ./nfqueue

# Mutation testing, not part of make test: gremlins over the packages whose
# tests need no kernel (hours on two busy cores; GREMLINS_TARGETS picks
# some), then the hand-written mutants of scripts/mutants/ against the
# kernel tests (41 of them, about 11 minutes on two cores).
mutate: mutate-gremlins mutate-hand

mutate-gremlins:
	GO=$(GO) bash scripts/mutate-gremlins.sh

mutate-hand:
	$(GO) run ./scripts/mutate scripts/mutants

clean:
	rm -rf bin
