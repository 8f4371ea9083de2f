#!/usr/bin/env bash
# Executions per second of one cargo-fuzz target, the way docs/THROUGHPUT.md measures them:
# built with the given flavour into a target dir of its own (so flavours do not rebuild each
# other), run pinned to one core from a scratch copy of its seeds, and reported as libFuzzer's
# exec/s and as executions per CPU second of the process (which a busy machine changes less).
# Coverage comes from the engine and the executor only, as CI builds it
# (fuzz/libfuzzer/sancov-scope.sh); --sancov-all instruments every crate, as cargo-fuzz does.
#
#   fuzz/rate.sh [--sanitizer address|none] [--no-trace-compares] [--sancov-all] [--seconds N]
#                [--core C] [--seeds DIR] [TARGET]   # defaults: address, 60 s, core 0, pagetable
set -euo pipefail
cd "$(dirname "$0")/.."

sanitizer=address seconds=60 core=0 target=pagetable seeds="" extra=() scope=scoped
while [ $# -gt 0 ]; do
  case $1 in
    --sanitizer) sanitizer=$2; shift 2 ;;
    --no-trace-compares) extra+=(--no-trace-compares); shift ;;
    --sancov-all) scope=all; shift ;;
    --seconds) seconds=$2; shift 2 ;;
    --core) core=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    -*) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    *) target=$1; shift ;;
  esac
done
[ -n "$seeds" ] || seeds=corpus/$target
flavour=$sanitizer${extra[0]:+-ntc}-$scope
tdir=target/rate-$flavour
mkdir -p target   # a fresh clone has none yet; the build log goes beside the target dir
# libFuzzer itself is built without ASan, as CI builds it (.ci/fuzz.sh says why).
wrapper=(env "CXXFLAGS=${CXXFLAGS:+$CXXFLAGS }-fno-sanitize=address")
[ $scope = scoped ] && wrapper+=("RUSTC_WRAPPER=$PWD/fuzz/libfuzzer/sancov-scope.sh")
"${wrapper[@]}" cargo +nightly fuzz build --fuzz-dir fuzz/libfuzzer --target-dir "$tdir" --sanitizer "$sanitizer" \
  "${extra[@]}" "$target" >"$tdir.build.log" 2>&1 || { tail -20 "$tdir.build.log"; exit 1; }
bin=$tdir/x86_64-unknown-linux-gnu/release/$target

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
if [ -d "$seeds" ]; then cp "$seeds"/* "$work/corpus/"; fi
/usr/bin/time -f "%U %S" -o "$work/time" taskset -c "$core" "$bin" "$work/corpus" \
  -max_total_time="$seconds" -print_final_stats=1 -seed=1 -max_len=4096 >"$work/log" 2>&1 || {
  tail -30 "$work/log"; echo "$target crashed or failed (log above)"; exit 1; }
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
cpu=$(awk '{print $1 + $2}' "$work/time")
per_cpu=$(awk -v n="$execs" -v c="$cpu" 'BEGIN {printf "%.0f", n / c}')
echo "$target $flavour core $core ${seconds}s: $execs execs, $eps exec/s, $cpu CPU s," \
  "$per_cpu exec per CPU s, corpus $(ls "$work/corpus" | wc -l) files"
