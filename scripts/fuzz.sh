#!/usr/bin/env bash
# Run every fuzz target of the given packages for FUZZTIME (default 10000x).
#
# A target that fails prints its whole output and each new input go saved
# under the package's testdata/fuzz/<target>/, which stays there for the
# commit that fixes the bug. All targets run; the script fails at the end.
#
# Reliability on a loaded machine: FUZZTIME is a count of executions, not a
# duration, and one worker fuzzes (-parallel 1, FUZZPARALLEL to change).
# With a duration, the fuzzing engine races a wall-clock deadline: a
# starved worker that cannot finish its batch and answer before the
# deadline fails the target with no crash at all. With two workers on two
# busy cores, a worker can also be kept off the CPU long enough that the
# engine's own limit of 10 s per call ("deadlocked!") kills it, and the
# engine then reports "fuzzing process hung or terminated unexpectedly" and
# writes the innocent input as a crasher. A count has no deadline, and one
# worker leaves a core to the coordinator.
set -uo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10000x}
FUZZPARALLEL=${FUZZPARALLEL:-1}

failed=()
for pkg in $($GO list "$@"); do
	targets=$($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz') || continue
	dir=$($GO list -f '{{.Dir}}' "$pkg")
	for t in $targets; do
		echo "fuzz $pkg $t"
		before=$(ls "$dir/testdata/fuzz/$t" 2>/dev/null | sort)
		out=$($GO test "$pkg" -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" -timeout 10m 2>&1)
		if [ $? -eq 0 ]; then
			continue
		fi
		failed+=("$pkg $t")
		printf '%s\n' "$out"
		after=$(ls "$dir/testdata/fuzz/$t" 2>/dev/null | sort)
		for f in $(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after")); do
			echo "--- new input $dir/testdata/fuzz/$t/$f (kept; commit it with the fix):"
			cat "$dir/testdata/fuzz/$t/$f"
		done
	done
done
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz targets that failed:"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
