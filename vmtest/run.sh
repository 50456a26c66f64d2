#!/bin/bash
# vmtest/run.sh: the kernel matrix behind `make vmtest`. Boots Debian's stock
# kernels under QEMU with the privileged tests inside a busybox initramfs and
# reports pass/fail per kernel and test. See vmtest/README.md.
#
# Environment (all optional):
#   VMTEST_KERNELS  suites to boot, space or comma separated
#                   (default: bullseye bookworm trixie sid)
#   VMTEST_RUN      -test.run pattern for the bpf test binary (default: Hook|Tracer|Workload)
#   VMTEST_TESTS    tests to run in each VM, from: bpf check tax vs (default: bpf check);
#                   tax is memlock-bench -tax, reported as a matrix of ratios at the end;
#                   vs is memlock-bench -vs-counter, its VSCOUNTER lines reported at the end
#   VMTEST_TAX_ARGS arguments of memlock-bench -tax (default: -rounds 4 -tax-calls 50000)
#   VMTEST_VS_ARGS  arguments of memlock-bench -vs-counter
#                   (default: -vs-counter-rounds 6 -vs-counter-calls 100000)
#   VMTEST_TIMEOUT  seconds per kernel from QEMU's start to its exit (default 300)
#   VMTEST_EXPECT_<suite>  hook kinds that must attach on that suite's kernel,
#                   comma separated; passed to the tests as MEMLOCK_TEST_EXPECT_HOOKS
#                   (defaults below; set to "none" to expect nothing)
#   VMTEST_TCG_THREAD  single (default) or multi: QEMU's TCG threading; see README
#   VMTEST_RETRIES  boots to retry when a kernel dies before running /init (default 1)
#   VMTEST_FETCH_TRIES  tries at downloading a kernel before it counts as missing (default 3)
#   VMTEST_APPEND   extra kernel command line (KEY=VALUE words there become
#                   environment variables of the tests)
#   VMTEST_EXTRA    "PATH [ARGS...]": also run this static binary from the host,
#                   as test "extra" (e.g. a throwaway probe while debugging)
#   VMTEST_OUT      build and results directory (default: bin/vmtest in the repo)
#   VMTEST_CACHE, VMTEST_REFRESH, VMTEST_MIRROR, VMTEST_SECURITY_MIRROR: see fetch-kernel.sh
#   GO              the go command (default: go)
#
# Exit status: 0 if every test passed on every kernel, 1 otherwise, 2 on bad
# usage or when the test binaries cannot be built.

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
GO=${GO:-go}
kernels=${VMTEST_KERNELS:-bullseye bookworm trixie sid}
kernels=${kernels//,/ }
run=${VMTEST_RUN:-Hook|Tracer|Workload}
tests=${VMTEST_TESTS:-bpf check}
tests=${tests//,/ }
tax_args=${VMTEST_TAX_ARGS:--rounds 4 -tax-calls 50000}
vs_args=${VMTEST_VS_ARGS:--vs-counter-rounds 6 -vs-counter-calls 100000}
timeout=${VMTEST_TIMEOUT:-300}
out=${VMTEST_OUT:-$root/bin/vmtest}
export VMTEST_CACHE=${VMTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memlock-exporter/vmtest}

log() { echo "vmtest: $*" >&2; }
die() {
	log "$*"
	exit 2
}
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
# sq quotes $1 for the guest's shell.
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "VMTEST_TIMEOUT=$timeout: want a whole number of seconds"
for t in $tests; do
	case $t in bpf | check | tax | vs) ;; *) die "VMTEST_TESTS: unknown test $t (known: bpf check tax vs; VMTEST_EXTRA adds one)" ;; esac
done
[ -n "$kernels" ] || die "VMTEST_KERNELS is empty"
extra=(${VMTEST_EXTRA:-})
if [ ${#extra[@]} -gt 0 ]; then
	[ -x "${extra[0]}" ] || die "VMTEST_EXTRA: ${extra[0]} is not an executable file"
	tests+=" extra"
fi

# --- host tools -------------------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v gcc >/dev/null || need+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } ||
		die "cannot install ${need[*]} (run as root)"
fi

# --- test binaries and initramfs --------------------------------------------
t0=$(now)
build=$out/build
rm -rf "$build"
mkdir -p "$build"/root/bin "$build"/root/vmtest "$build"/root/dev "$build"/root/tmp
cd "$root" || exit 2
if [[ " $tests " == *" bpf "* ]]; then
	CGO_ENABLED=0 "$GO" test -c -trimpath -ldflags '-s -w' -o "$build"/root/vmtest/bpf.test ./bpf ||
		die "cannot build the bpf test binary"
fi
if [[ " $tests " == *" check "* ]]; then
	CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w -X main.version=vmtest' \
		-o "$build"/root/vmtest/memlock-exporter ./cmd/memlock-exporter ||
		die "cannot build memlock-exporter"
fi
if [[ " $tests " == *" tax "* ]] || [[ " $tests " == *" vs "* ]]; then
	CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$build"/root/vmtest/memlock-bench ./cmd/memlock-bench ||
		die "cannot build memlock-bench"
fi
# No compiler in the guest: the tests take this one (MEMLOCK_WORKLOAD_BIN),
# built as testutil.BuildWorkload builds it. It is linked dynamically, and
# the host's C library goes with it, so that the libc uprobe tests find a
# libc.so.6 in the guest and see the workload's calls go through it.
gcc -O2 -Wall -Wextra -Werror -pthread -o "$build"/root/vmtest/workload workload/workload.c ||
	die "cannot build the workload"
for lib in $(ldd "$build"/root/vmtest/workload | grep -o '/[^ ]*'); do
	cp --parents -L "$lib" "$build"/root/ || die "cannot copy $lib into the initramfs"
done
cp /bin/busybox "$build"/root/bin/busybox
[ ${#extra[@]} -gt 0 ] && cp "${extra[0]}" "$build"/root/vmtest/extra
install -m 0755 "$here"/init "$build"/root/init
[ "$(id -u)" = 0 ] && mknod -m 0600 "$build"/root/dev/console c 5 1
echo "export MEMLOCK_WORKLOAD_BIN=/vmtest/workload" >"$build"/root/vmtest/env
{
	echo "# <name> <command>, run in order by /init"
	for t in $tests; do
		case $t in
		bpf) echo "bpf /vmtest/bpf.test -test.v -test.count=1 -test.timeout=$((timeout * 2 / 3))s -test.run $(sq "$run")" ;;
		check) echo "check timeout 60 /vmtest/memlock-exporter --check" ;;
		tax) echo "tax timeout $((timeout * 2 / 3)) /vmtest/memlock-bench -tax $tax_args" ;;
		vs) echo "vs timeout $((timeout * 2 / 3)) /vmtest/memlock-bench -vs-counter $vs_args" ;;
		extra)
			printf 'extra /vmtest/extra'
			for a in "${extra[@]:1}"; do printf ' %s' "$(sq "$a")"; done
			echo
			;;
		esac
	done
} >"$build"/root/vmtest/tests
(cd "$build"/root && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$build"/initramfs.cpio.gz ||
	die "cannot build the initramfs"
log "built test binaries and initramfs ($(du -h "$build"/initramfs.cpio.gz | cut -f1)) in $(since "$t0")s"

# --- one kernel ---------------------------------------------------------------
results=$out/results
mkdir -p "$results"
declare -A release dl boot cell note
failed=0
retries=${VMTEST_RETRIES:-1}
fetch_tries=${VMTEST_FETCH_TRIES:-3}
tcg_thread=${VMTEST_TCG_THREAD:-single}
case $tcg_thread in single | multi) ;; *) die "VMTEST_TCG_THREAD=$tcg_thread: want single or multi" ;; esac
[[ $retries =~ ^[0-9]+$ ]] || die "VMTEST_RETRIES=$retries: want a whole number"
[[ $fetch_tries =~ ^[1-9][0-9]*$ ]] || die "VMTEST_FETCH_TRIES=$fetch_tries: want a whole number, 1 or more"

# expect SUITE: the hook kinds that must attach on the suite's stock kernel.
# bullseye (5.10): fentry on __x64_sys_* is refused by the verifier, whose
# BTF has pt_regs only as a forward declaration; kprobes and tracepoints work.
# bookworm (6.1): its BTF lists most __x64_sys_* functions twice, which
# cilium/ebpf refuses as fentry targets (cilium/ebpf#894); the tracer makes
# them unique in its copy of the BTF (bpf/btfdup.go), so fentry must work.
expect() {
	local var=VMTEST_EXPECT_$1 def
	case $1 in
	bullseye) def=kprobe,tracepoint ;;
	bookworm | trixie | sid) def=fentry,kprobe,tracepoint ;;
	*) def=none ;;
	esac
	def=${!var:-$def}
	[ "$def" = none ] || echo "$def"
}

# section NAME FILE: what test NAME printed, between its markers.
section() {
	awk -v b="VMTEST-BEGIN " -v e="VMTEST-RESULT " -v t=" test=$1" '
		index($0, b) == 1 && index($0 " ", t " ") { on = 1; next }
		index($0, e) == 1 && index($0 " ", t " ") { on = 0 }
		on' "$2"
}

boot_kernel() {
	local k=$1 res=$results/$1 vmlinuz started rc file line exitc secs p f s t
	rm -rf "$res"
	mkdir -p "$res"

	started=$(now)
	# A fresh machine downloads every kernel, and a mirror can fail for
	# a moment (a timeout, or a Hash Sum mismatch while it syncs): try
	# again after a pause before calling the kernel missing.
	local try=1 pause
	until vmlinuz=$(bash "$here"/fetch-kernel.sh "$k" 2> >(tee -a "$res"/fetch.log >&2)); do
		[ $try -lt "$fetch_tries" ] || { vmlinuz=; break; }
		pause=$((15 * try))
		log "$k: kernel download failed (try $try of $fetch_tries): trying again in ${pause}s"
		note[$k]="${note[$k]:+${note[$k]}; }download try $try failed, retried"
		sleep "$pause"
		try=$((try + 1))
	done
	if [ -z "$vmlinuz" ]; then
		dl[$k]=$(since "$started")
		release[$k]="?"
		note[$k]="${note[$k]:+${note[$k]}; }kernel download failed: see $res/fetch.log"
		for t in $tests; do cell[$k,$t]="NO KERNEL"; done
		failed=1
		return
	fi
	dl[$k]=$(since "$started")
	release[$k]=${vmlinuz##*/vmlinuz-}
	cp "$(dirname "$vmlinuz")"/package "$res"/package 2>/dev/null

	local want attempt=0 append="console=ttyS0 panic=-1 mitigations=off"
	want=$(expect "$k")
	[ -n "$want" ] && append+=" MEMLOCK_TEST_EXPECT_HOOKS=$want"
	append+=" ${VMTEST_APPEND:-}"
	while :; do
		log "$k: booting ${release[$k]} (timeout ${timeout}s${want:+, expecting hooks $want}; console: $res/console.log)"
		started=$(now)
		# QEMU exits 0 whatever happens in the guest: the markers tell.
		timeout -k 10 "$timeout" qemu-system-x86_64 \
			-accel tcg,thread="$tcg_thread" -cpu max -m 1G -smp 2 \
			-nographic -no-reboot -nic none -monitor none \
			-serial file:"$res"/console.raw -serial file:"$res"/tests.raw \
			-kernel "$vmlinuz" -initrd "$build"/initramfs.cpio.gz \
			-append "$append" \
			</dev/null >"$res"/qemu.log 2>&1
		rc=$?
		boot[$k]=$(since "$started")
		tr -d '\r' <"$res"/console.raw >"$res"/console.log
		tr -d '\r' <"$res"/tests.raw >"$res"/tests.log
		rm -f "$res"/console.raw "$res"/tests.raw
		# A kernel that dies before /init runs never saw our code: under
		# TCG that is emulation trouble (seen once: an int3 oops in
		# sched_clock_cpu while sid booted), so boot it again.
		grep -q '^VMTEST-BOOTED ' "$res"/tests.log "$res"/console.log && break
		[ $attempt -lt "$retries" ] || break
		attempt=$((attempt + 1))
		mv "$res"/console.log "$res"/console.failed-boot-$attempt.log
		note[$k]="${note[$k]:+${note[$k]}; }boot $attempt died before /init ($(grep -m1 -E 'Oops|Kernel panic|BUG' "$res"/console.failed-boot-$attempt.log | cut -c1-100)): retried, log in console.failed-boot-$attempt.log"
		log "$k: ${note[$k]}"
	done

	# tests.log has no kernel messages in it; console.log is the fallback.
	file=$res/tests.log
	grep -q '^VMTEST-BOOTED ' "$file" || file=$res/console.log
	line=$(grep -m1 '^VMTEST-BOOTED ' "$file")
	[ -n "$line" ] && release[$k]=$(sed -E 's/.* kernel=([^ ]+).*/\1/' <<<"$line")

	for t in $tests; do
		section "$t" "$file" >"$res/$t.log"
		line=$(grep -m1 "^VMTEST-RESULT .* test=$t exit=" "$file")
		if [ -z "$line" ]; then
			if [ $rc = 124 ] || [ $rc = 137 ]; then
				cell[$k,$t]="TIMEOUT"
			elif grep -q 'Kernel panic' "$res"/console.log; then
				cell[$k,$t]="PANIC"
			else
				cell[$k,$t]="NO RESULT"
			fi
			failed=1
			continue
		fi
		exitc=$(sed -E 's/.* exit=([0-9]+).*/\1/' <<<"$line")
		secs=$(sed -E 's/.* seconds=([0-9.]+).*/\1/' <<<"$line")
		if [ "$exitc" = 0 ]; then cell[$k,$t]="PASS"; else cell[$k,$t]="FAIL exit=$exitc" && failed=1; fi
		if [ "$t" = bpf ]; then
			p=$(grep -c -- '--- PASS' "$res/$t.log")
			f=$(grep -c -- '--- FAIL' "$res/$t.log")
			s=$(grep -c -- '--- SKIP' "$res/$t.log")
			cell[$k,$t]+=" ${p}p/${f}f/${s}s"
		fi
		cell[$k,$t]+=" ${secs}s"
	done
	case $rc in
	0) ;;
	124 | 137) note[$k]="${note[$k]:+${note[$k]}; }QEMU killed after ${timeout}s" ;;
	*) note[$k]="${note[$k]:+${note[$k]}; }QEMU exited $rc: see $res/qemu.log" ;;
	esac
	if ! grep -q '^VMTEST-DONE ' "$file"; then
		note[$k]="${note[$k]:+${note[$k]}; }the guest did not finish: see $res/console.log"
		failed=1
	fi
	log "$k: $(for t in $tests; do printf '%s=%s  ' "$t" "${cell[$k,$t]}"; done)(boot to result ${boot[$k]}s)"
}

for k in $kernels; do
	boot_kernel "$k"
done

# --- report -------------------------------------------------------------------
{
	echo
	if [[ " $tests " == *" bpf "* ]]; then
		echo "== vmtest: $(date -u +%FT%TZ), bpf tests -test.run '$run' (counts: passed/failed/skipped, with subtests)"
	else
		echo "== vmtest: $(date -u +%FT%TZ)"
	fi
	printf '%-9s %-24s' kernel release
	for t in $tests; do printf ' %-28s' "$t"; done
	printf ' %9s %14s\n' download boot-to-result
	for k in $kernels; do
		printf '%-9s %-24s' "$k" "${release[$k]}"
		for t in $tests; do printf ' %-28s' "${cell[$k,$t]}"; done
		printf ' %8ss %13ss\n' "${dl[$k]}" "${boot[$k]:-0}"
	done
	for k in $kernels; do
		[ -n "${note[$k]:-}" ] && echo "$k: ${note[$k]}"
	done
	for k in $kernels; do
		res=$results/$k
		[ -s "$res"/bpf.log ] || [ -s "$res"/check.log ] || [ -s "$res"/tax.log ] || [ -s "$res"/vs.log ] || [ -s "$res"/extra.log ] || continue
		echo
		echo "--- $k (${release[$k]}; expected hooks: $(expect "$k" || true); logs in $res)"
		if [ -s "$res"/bpf.log ]; then
			# go test's verdicts and what the tests logged, not the
			# tracer's continuation lines (the full text is in bpf.log).
			grep -E -- '^\s*--- (PASS|FAIL|SKIP)|^(ok|PASS|FAIL)\b|^panic:|^\s+\S+_test\.go:[0-9]+:' "$res"/bpf.log |
				cut -c1-240 | head -n 60
		fi
		if [ -s "$res"/check.log ]; then
			echo "memlock-exporter --check:"
			sed 's/^/  /' "$res"/check.log | head -n 20
		fi
		if [ -s "$res"/tax.log ]; then
			echo "memlock-bench -tax $tax_args:"
			grep -v '^TAX ' "$res"/tax.log | sed 's/^/  /' | head -n 20
		fi
		if [ -s "$res"/vs.log ]; then
			# The table and each kind's rounds; the VSCOUNTER lines come
			# at the end of the report.
			echo "memlock-bench -vs-counter $vs_args:"
			grep -v '^VSCOUNTER' "$res"/vs.log | sed 's/^/  /' | head -n 120
		fi
		if [ -s "$res"/extra.log ]; then
			echo "VMTEST_EXTRA (${extra[*]}):"
			sed 's/^/  /' "$res"/extra.log | head -n 40
		fi
	done
	if [[ " $tests " == *" tax "* ]]; then
		# Emulated time is not real time: only the ratios mean something.
		echo
		echo "== tax: getppid ns/call with / without the tracer (mlock2+munlock of one page in brackets), fastest of the rounds, under TCG"
		printf '%-9s %-24s' kernel release
		for h in fentry kprobe tracepoint; do printf ' %-16s' "$h"; done
		echo
		for k in $kernels; do
			printf '%-9s %-24s' "$k" "${release[$k]}"
			for h in fentry kprobe tracepoint; do
				line=$(grep -m1 "^TAX .* hook=$h " "$results/$k"/tax.log 2>/dev/null)
				case $line in
				*attached=yes*) printf ' %-16s' "$(sed -E 's/.* getppid_ratio=([^ ]+).* mlock_ratio=([^ ]+).*/\1 (\2)/' <<<"$line")" ;;
				*attached=no*) printf ' %-16s' "not attached" ;;
				*) printf ' %-16s' "-" ;;
				esac
			done
			echo
		done
		for k in $kernels; do
			grep '^TAX .* attached=no ' "$results/$k"/tax.log 2>/dev/null |
				sed -E "s/.* hook=([^ ]+) attached=no reason=(.*)/$k \1: \2/"
		done
	fi
	if [[ " $tests " == *" vs "* ]]; then
		# ns per failing mlock2 call and what each setup adds, under TCG:
		# compare within a row only; the ratios are the tracer's added
		# ns over the entry counter's.
		echo
		echo "== vs: memlock-bench -vs-counter $vs_args (counter = a BPF program counting the calls; ns under TCG)"
		for k in $kernels; do
			grep -h '^VSCOUNTER' "$results/$k"/vs.log 2>/dev/null
		done
	fi
	echo
	if [ $failed = 0 ]; then
		echo "vmtest: all passed"
	else
		# Repeated last: a CI log cut short keeps its end, and this
		# names what failed without the table above.
		for k in $kernels; do
			if [ "${release[$k]}" = "?" ]; then
				echo "vmtest: $k: no kernel; the end of $results/$k/fetch.log:"
				tail -n 8 "$results/$k/fetch.log" 2>/dev/null | cut -c1-240 | sed 's/^/  /'
				continue
			fi
			for t in $tests; do
				case ${cell[$k,$t]} in PASS*) continue ;; esac
				echo "vmtest: $k (${release[$k]}) $t: ${cell[$k,$t]}"
				case ${cell[$k,$t]} in
				PANIC* | TIMEOUT* | "NO RESULT"*)
					# The guest stopped mid-test: how the console ended.
					grep -v '^[[:space:]]*$' "$results/$k/console.log" 2>/dev/null | tail -n 8 | cut -c1-240 | sed 's/^/  console: /' ;;
				esac
				[ -s "$results/$k/$t.log" ] || continue
				bash "$root"/scripts/test-failures.sh "$results/$k/$t.log" | head -n 40 | cut -c1-240 | sed 's/^/  /'
			done
			[ -n "${note[$k]:-}" ] && echo "vmtest: $k: ${note[$k]}"
		done
		echo "vmtest: FAILED"
	fi
} | tee "$results"/matrix.txt

exit $failed
