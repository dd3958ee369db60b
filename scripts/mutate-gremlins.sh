#!/usr/bin/env bash
# Mutation testing with gremlins over the code whose tests need no kernel.
# Kernel tests skip (CTSPEC_SKIP_KERNEL=1), so their code shows as "not
# covered" and does not count. Prints the efficacy (killed / (killed +
# lived)) and mutant coverage of each target, and the mutants that lived.
#
# gremlins is pinned by version and installed into a scratch directory, so
# it never becomes a dependency of the module. gremlins v0.6.0 derives the
# package to test from the package clause, so for gen (package main) it
# would test the module root, which has no package, and count every mutant
# as killed: a go wrapper first on PATH sends that one argument to the
# target's package (gen, cmd/ctspec). GREMLINS_TARGETS picks targets by name, such
# as GREMLINS_TARGETS="nfnl headergen".
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
GREMLINS=${GREMLINS:-github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0}
# Under load a mutant's tests can outrun gremlins' timeout, which is a
# multiple of the tests' own time; timed-out mutants count as neither
# killed nor lived.
COEFF=${GREMLINS_TIMEOUT_COEFFICIENT:-20}

if [ "${CTSPEC_REQUIRE_KERNEL:-}" = 1 ]; then
	echo "mutate-gremlins: unset CTSPEC_REQUIRE_KERNEL: mutation runs skip the kernel tests" >&2
	exit 1
fi
export CTSPEC_SKIP_KERNEL=1

# name, package directory, files to mutate (a regexp of base names; others
# in the directory are excluded).
targets=(
	"gen gen .*"
	"internal-golden internal/golden .*"
	"internal-nlattr internal/nlattr .*"
	"internal-nstest internal/nstest .*"
	"internal-spec internal/spec .*"
	"nfnl nfnl .*"
	"headergen tools/headergen .*"
	"ctnetlink-pure ctnetlink ^(eventfilter|cleanup|cleanup_match|cleanup_plan)\.go$"
	"ctspec-options cmd/ctspec ^(cmdline|getopt|cparse)\.go$"
)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/bin" "$out/gobin"
GOBIN="$out/gobin" $GO install "$GREMLINS" || exit 1
realgo=$(command -v "$GO")
module=$($GO list -m)
cat >"$out/bin/go" <<WRAP
#!/usr/bin/env bash
args=()
for a in "\$@"; do
	if [ "\$a" = "$module" ]; then a="$module/\$GREMLINS_PKG"; fi
	args+=("\$a")
done
exec "$realgo" "\${args[@]}"
WRAP
chmod +x "$out/bin/go"
summary=()
status=0
for t in "${targets[@]}"; do
	read -r name dir files <<<"$t"
	if [ -n "${GREMLINS_TARGETS:-}" ] && ! grep -qw -- "$name" <<<"$GREMLINS_TARGETS"; then
		continue
	fi
	excl=()
	for f in "$dir"/*.go; do
		b=$(basename "$f")
		case "$b" in *_test.go) continue ;; esac
		# gremlins matches -E against the path below the target.
		grep -Eq -- "$files" <<<"$b" || excl+=(-E "(^|/)${b//./\\.}\$")
	done
	echo "== gremlins $name ($dir, files $files)"
	start=$SECONDS
	GREMLINS_PKG=$dir PATH="$out/bin:$PATH" "$out/gobin/gremlins" unleash --workers 1 --test-cpu 2 --timeout-coefficient "$COEFF" \
		-S lt "${excl[@]}" "./$dir" >"$out/$name.log" 2>&1
	rc=$?
	grep -E 'LIVED|TIMED OUT' "$out/$name.log" | sed 's/^ */  /'
	eff=$(sed -n 's/.*Test efficacy: //p' "$out/$name.log")
	cov=$(sed -n 's/.*Mutator coverage: //p' "$out/$name.log")
	counts=$(grep -E 'Killed:|Timed out:' "$out/$name.log" | tr -s ' \n' ' ')
	if [ $rc -ne 0 ] || [ -z "$eff" ]; then
		cat "$out/$name.log"
		eff="error"
		status=1
	fi
	summary+=("$(printf '%-16s efficacy %-8s coverage %-8s %s(%ds)' "$name" "$eff" "$cov" "$counts" $((SECONDS - start)))")
done
echo
echo "gremlins efficacy per target (goal: 85%):"
printf '  %s\n' "${summary[@]}"
exit $status
