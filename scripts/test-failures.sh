#!/usr/bin/env bash
# test-failures.sh LOG: what failed in the output of `go test -v` (one
# package or many), for the end of a long log: each failing test with the
# last lines it logged, each panic with the lines after it, and the FAIL
# line of its package. make test and make vmtest print it last, because
# a CI log cut short keeps its beginning and its end.
#
# go test -v names the test that logs next in its "=== RUN", "=== CONT"
# and "=== NAME" lines, and prints a subtest's verdict after its parent's,
# so logged lines are kept per test until its verdict. Without -v, go test
# prints a failing test's lines after its verdict instead. go test ./...
# prints each package's output whole, ending with its ok or FAIL line.
set -uo pipefail

log="${1:?usage: test-failures.sh GO-TEST-V-LOG}"
keep="${TEST_FAILURES_LINES:-6}"

awk -v keep="$keep" '
	function forget() { split("", n); split("", buf) }
	/^=== (RUN|CONT|NAME) / { cur = $3; verbose = 1; next }
	/^[ \t]*--- FAIL: / {
		name = $3
		print
		for (i = 1; i <= n[name]; i++) print "  " buf[name, i]
		after = !verbose
		next
	}
	after && /^[ \t]/ { print; next }
	{ after = 0 }
	/^panic:/ { p = 12 }
	p > 0 { print; p--; next }
	/^FAIL[ \t]/ { print; forget(); next }
	/^ok[ \t]/ { forget(); next }
	/^[ \t]+[^ \t]+_test\.go:[0-9]+:/ {
		if (n[cur] == keep) { for (i = 1; i < keep; i++) buf[cur, i] = buf[cur, i + 1]; n[cur] = keep - 1 }
		buf[cur, ++n[cur]] = $0
	}
' "$log"
