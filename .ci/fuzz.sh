#!/usr/bin/env bash
# Bounded fuzzing for CI: cargo-fuzz (libFuzzer) on every target in PTFUZZ_FUZZ_TARGETS
# (default pagetable), each seeded from corpus/<target>/ when it exists, and AFL++ (cargo-afl)
# on the first. Facts behind every choice: ../shared/FUZZ-TOOLING.md.
#
#   .ci/fuzz.sh install      cargo-fuzz 0.13.2 and cargo-afl 0.18.2, when missing
#   .ci/fuzz.sh libfuzzer    build, then fuzz PTFUZZ_FUZZ_SECONDS (default 60)
#   .ci/fuzz.sh libfuzzer-build  the same build only; prints "binaries: DIR sanitizer: S"
#   .ci/fuzz.sh afl          build, then fuzz PTFUZZ_AFL_SECONDS (default 30)
#   .ci/fuzz.sh afl-build    the same build only; prints "binaries: DIR"
#   .ci/fuzz.sh [all]        the three in order
#
# Environment: PTFUZZ_FUZZ_SECONDS, PTFUZZ_AFL_SECONDS, PTFUZZ_FUZZ_SANITIZER,
# PTFUZZ_FUZZ_TOOLCHAIN=stable (do not use nightly even where installed),
# PTFUZZ_FUZZ_TRACE_COMPARES=1 (build with libFuzzer's comparison tracing, cargo-fuzz's
# default; off here because it halves the execution rate and every deliberate mistake is
# found as fast without it: docs/THROUGHPUT.md), PTFUZZ_SANCOV_CRATES (which crates give
# coverage feedback: fuzz/libfuzzer/sancov-scope.sh).
# Options: --sanitizer none|address (or PTFUZZ_FUZZ_SANITIZER; default address = ASan, which
# needs nightly, or stable with RUSTC_BOOTSTRAP=1; `none` works on plain stable and runs ~3x
# more inputs a second on this harness). Any crash fails: a non-zero exit from the fuzzer, or any crash file it left. Crash
# files are copied to reports/ci-crashes/ and never written into corpus/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

FUZZ_SECONDS=${PTFUZZ_FUZZ_SECONDS:-60}
AFL_SECONDS=${PTFUZZ_AFL_SECONDS:-30}
SANITIZER=${PTFUZZ_FUZZ_SANITIZER:-address}
# cargo-fuzz targets, each fuzzed FUZZ_SECONDS with seeds from corpus/<target>/ when it
# exists; AFL runs the first one.
read -r -a TARGETS <<<"${PTFUZZ_FUZZ_TARGETS:-pagetable}"
TARGET=${TARGETS[0]}
FUZZ_DIR=fuzz/libfuzzer
SEEDS=corpus/$TARGET
SCRATCH=target/fuzz-ci          # scratch corpora, artifacts, logs (the repository's target/)
CRASHES=reports/ci-crashes      # where found crashes are kept

what=()
while [ $# -gt 0 ]; do
  case $1 in
    --sanitizer) SANITIZER=$2; shift 2 ;;
    --sanitizer=*) SANITIZER=${1#*=}; shift ;;
    install|libfuzzer|libfuzzer-build|afl|afl-build|all) what+=("$1"); shift ;;
    *) echo "usage: $0 [install|libfuzzer|afl|all]... [--sanitizer none|address]" >&2; exit 2 ;;
  esac
done
[ ${#what[@]} -gt 0 ] || what=(all)

step() {   # like .ci/run's stage: name, then the command; prints how long it took
  local name=$1; shift
  echo "::: fuzz step '$name': $*"
  local t0=$SECONDS
  "$@"
  echo "::: fuzz step '$name' took $((SECONDS - t0)) s"
}

# Crash files found by a fuzzer: keep them, tell how to read them, fail.
report_crashes() {   # engine, files...
  local engine=$1; shift
  mkdir -p "$CRASHES/$engine"
  echo "!!! $engine found $# crash file(s); copies in $CRASHES/$engine/:"
  local f
  for f in "$@"; do
    cp "$f" "$CRASHES/$engine/"
    echo "!!!   $CRASHES/$engine/$(basename "$f")  ($(wc -c <"$f") bytes)"
    echo "!!!     print as a trace: cargo run --release -- print '$CRASHES/$engine/$(basename "$f")'"
  done
}

install_tools() {
  if command -v cargo-fuzz >/dev/null; then
    echo "cargo-fuzz present: $(cargo fuzz --version)"
  else
    step install-cargo-fuzz cargo install --locked cargo-fuzz --version 0.13.2
  fi
  if command -v cargo-afl >/dev/null; then
    echo "cargo-afl present: $(cargo afl --version 2>/dev/null | head -1)"
  else
    # Builds AFL++ from the crate during install (needs make and a C compiler, no network).
    step install-cargo-afl cargo install --locked cargo-afl --version 0.18.2
  fi
}

# Coverage feedback from the engine and the executor only, for cargo-fuzz and cargo-afl alike
# (PTFUZZ_SANCOV_CRATES=all: from every crate); the header of the wrapper says why.
SCOPE_ENV=("RUSTC_WRAPPER=$ROOT/$FUZZ_DIR/sancov-scope.sh")
if [ -n "${RUSTC_WRAPPER:-}" ]; then SCOPE_ENV+=("PTFUZZ_NEXT_RUSTC_WRAPPER=$RUSTC_WRAPPER"); fi

# How to run cargo fuzz: nightly where installed, else stable with RUSTC_BOOTSTRAP=1 (and a
# target dir of its own), and `--sanitizer none` on plain stable as the last resort.
FUZZ_CARGO=(cargo)
FUZZ_ENV=()
FUZZ_TARGET_DIR=$FUZZ_DIR/target
choose_toolchain() {
  # PTFUZZ_FUZZ_TOOLCHAIN=stable skips nightly even where it is installed.
  if [ "${PTFUZZ_FUZZ_TOOLCHAIN:-}" != stable ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ_CARGO=(cargo +nightly)
    FUZZ_ENV=()
    FUZZ_TARGET_DIR=$FUZZ_DIR/target
  elif [ "$SANITIZER" = none ]; then
    FUZZ_CARGO=(cargo)
    FUZZ_ENV=()
    FUZZ_TARGET_DIR=$FUZZ_DIR/target/stable
  else
    FUZZ_CARGO=(cargo)
    FUZZ_ENV=(RUSTC_BOOTSTRAP=1)
    FUZZ_TARGET_DIR=$FUZZ_DIR/target/bootstrap
  fi
  FUZZ_ENV+=("${SCOPE_ENV[@]}")
  # libFuzzer itself without ASan: the cc crate (>= 1.11) compiles C++ with -fsanitize=address
  # whenever rustc builds with it, and libFuzzer's per-feature callback then poisons and
  # clears a large stack frame for every feature of every execution (docs/THROUGHPUT.md).
  FUZZ_ENV+=("CXXFLAGS=${CXXFLAGS:+$CXXFLAGS }-fno-sanitize=address")
  # The RUSTFLAGS of OSS-Fuzz's image (../shared/FUZZ-TOOLING.md), so that oss-fuzz/build.sh,
  # run after this by .ci/oss-fuzz-check.sh, finds this build up to date instead of redoing it.
  FUZZ_ENV+=("RUSTFLAGS=${RUSTFLAGS:---cfg fuzzing -Cdebuginfo=1 -Cforce-frame-pointers}")
  local rustc=(rustc)
  [ "${FUZZ_CARGO[1]:-}" = +nightly ] && rustc=(rustc +nightly)
  echo "cargo fuzz: $(cargo fuzz --version), $("${rustc[@]}" --version) ${FUZZ_ENV[*]}" \
    "sanitizer=$SANITIZER target-dir=$FUZZ_TARGET_DIR"
}

fuzz_flags() {   # the flags build and run share, so run does not rebuild
  local tc=--no-trace-compares
  [ "${PTFUZZ_FUZZ_TRACE_COMPARES:-0}" = 1 ] && tc=
  echo --fuzz-dir "$FUZZ_DIR" --target-dir "$FUZZ_TARGET_DIR" --sanitizer "$SANITIZER" \
    --release --debug-assertions $tc
}

libfuzzer_build() {   # every target in one build
  # shellcheck disable=SC2046
  if ! env "${FUZZ_ENV[@]}" "${FUZZ_CARGO[@]}" fuzz build $(fuzz_flags); then
    if [ "$SANITIZER" = none ]; then return 1; fi
    echo "!!! the $SANITIZER build failed on this toolchain; falling back to --sanitizer none"
    SANITIZER=none
    choose_toolchain
    # shellcheck disable=SC2046
    env "${FUZZ_ENV[@]}" "${FUZZ_CARGO[@]}" fuzz build $(fuzz_flags)
  fi
}

libfuzzer_run() {   # target
  local TARGET=$1 SEEDS=corpus/$1
  # qemu_diff decodes the pagetable op language: it starts from the pagetable seeds.
  [ "$TARGET" = qemu_diff ] && SEEDS=corpus/pagetable
  local corpus=$SCRATCH/libfuzzer/corpus/$TARGET art=$SCRATCH/libfuzzer/artifacts/$TARGET
  local log=$SCRATCH/libfuzzer/$TARGET.log
  rm -rf "$corpus" "$art"
  mkdir -p "$corpus" "$art"
  if [ -d "$SEEDS" ]; then cp "$SEEDS"/* "$corpus"/; fi
  echo "$TARGET seeds: $(ls "$corpus" | wc -l) files from $SEEDS; fuzzing $FUZZ_SECONDS s; full log: $log"
  local rc=0
  # The log keeps every line; the console skips libFuzzer's per-input NEW/REDUCE lines.
  # shellcheck disable=SC2046
  env "${FUZZ_ENV[@]}" "${FUZZ_CARGO[@]}" fuzz run $(fuzz_flags) "$TARGET" "$corpus" -- \
    -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -artifact_prefix="$ROOT/$art/" \
    -max_len=4096 -timeout=20 -rss_limit_mb=2560 2>&1 \
    | tee "$log" | grep --line-buffered -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE)' \
    || rc=${PIPESTATUS[0]}
  local execs eps
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  echo "libFuzzer $TARGET ($SANITIZER): ${execs:-?} execs, ${eps:-?} exec/s, corpus $(ls "$corpus" | wc -l) files, exit $rc"
  local found=()
  shopt -s nullglob
  found=("$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*)
  shopt -u nullglob
  if [ ${#found[@]} -gt 0 ]; then
    report_crashes libfuzzer "${found[@]}"
    echo "!!! the panic message above names the op, the oracle and the trace; rerun one with"
    echo "!!!   ${FUZZ_ENV[*]} ${FUZZ_CARGO[*]} fuzz run $(fuzz_flags) $TARGET FILE"
    return 1
  fi
  if [ "$rc" -ne 0 ]; then
    echo "!!! cargo fuzz run exited $rc without leaving a crash file; see $log"
    return 1
  fi
}

afl_build() {
  # Coverage from the engine and the executor only, as for libFuzzer: without AFL++'s LLVM
  # plugins (not installed here) cargo-afl instruments through the same sancov flags, which
  # the wrapper scopes. Instrumented oracles made AFL see the oracles' reuse of warm storage
  # (grow or not, by what the last input left) as unstable edges (docs/THROUGHPUT.md).
  env "${SCOPE_ENV[@]}" cargo afl build --release --manifest-path fuzz/afl/Cargo.toml --target-dir target/afl
}

afl_run() {
  local out=$SCRATCH/afl/out bin=target/afl/release/$TARGET
  rm -rf "$out"
  mkdir -p "$SCRATCH/afl"
  echo "seeds: $(ls "$SEEDS" | wc -l) files from $SEEDS (read only); fuzzing $AFL_SECONDS s"
  local rc=0
  # Instability is reported once, from fuzzer_stats, instead of a warning per queue entry.
  AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_WARN_INSTABILITY=1 \
    cargo afl fuzz -i "$SEEDS" -o "$out" -V "$AFL_SECONDS" "$bin" || rc=$?
  local stats=$out/default/fuzzer_stats
  if [ -f "$stats" ]; then
    local k
    for k in execs_done execs_per_sec corpus_count stability bitmap_cvg saved_crashes saved_hangs; do
      printf '%s ' "$(grep "^$k " "$stats" | tr -s ' ')"
    done
    echo
    echo "AFL: $(sed -n 's/^execs_done *: *//p' "$stats") execs," \
      "$(sed -n 's/^execs_per_sec *: *//p' "$stats") exec/s," \
      "stability $(sed -n 's/^stability *: *//p' "$stats"), exit $rc"
  fi
  local found=()
  shopt -s nullglob
  found=("$out"/default/crashes/id:*)
  shopt -u nullglob
  if [ ${#found[@]} -gt 0 ]; then
    report_crashes afl "${found[@]}"
    # AFL keeps the target's output to itself: run the first crash once more, outside AFL.
    echo "!!! $bin < '${found[0]}':"
    if "$bin" <"${found[0]}"; then echo "!!! (it did not crash outside AFL)"; fi
    return 1
  fi
  if [ "$rc" -ne 0 ]; then
    echo "!!! cargo afl fuzz exited $rc without a crash file (a seed that crashes or hangs fails here)"
    return 1
  fi
}

for w in "${what[@]}"; do
  case $w in
    install) install_tools ;;
    libfuzzer-build)
      # For `ptfuzz campaign --engine libfuzzer`: the same build, then where the binaries are.
      choose_toolchain >&2
      step libfuzzer-build libfuzzer_build >&2
      echo "binaries: $ROOT/$FUZZ_TARGET_DIR/x86_64-unknown-linux-gnu/release sanitizer: $SANITIZER" ;;
    libfuzzer)
      choose_toolchain
      step libfuzzer-build libfuzzer_build
      for t in "${TARGETS[@]}"; do step "libfuzzer-run-$t" libfuzzer_run "$t"; done ;;
    afl)
      step afl-build afl_build
      step afl-run afl_run ;;
    afl-build)
      # For `ptfuzz campaign --engine afl`: the same build, then where the binaries are.
      step afl-build afl_build >&2
      echo "binaries: $ROOT/target/afl/release" ;;
    all)
      install_tools
      choose_toolchain
      step libfuzzer-build libfuzzer_build
      step libfuzzer-run libfuzzer_run
      step afl-build afl_build
      step afl-run afl_run ;;
  esac
done
