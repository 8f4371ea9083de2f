#!/usr/bin/env bash
# RUSTC_WRAPPER for fuzz builds: coverage instrumentation (SanitizerCoverage) only where the
# feedback is about the code under test. cargo-fuzz and cargo-afl put the sancov flags in
# RUSTFLAGS, so every crate gets them: the oracles, serde, clap... Their edges tell the
# fuzzer nothing about the engine, yet each one costs a counter update while running and a
# slot libFuzzer scans after every execution. This wrapper drops `-Cpasses=sancov-module`
# and the `-sanitizer-coverage-*` options for every crate but:
#   - the crates named in PTFUZZ_SANCOV_CRATES (default: ptfuzz_engine ptfuzz_harness), and
#   - binaries (the fuzz targets themselves).
# The engine's generic code is compiled where the executor instantiates it, so the harness
# crate carries most of the engine's edges; the oracles instantiate their own walks
# (oracles/src/walker/logged.rs) and stay out. Sanitizers (ASan) and every other flag are
# untouched. PTFUZZ_SANCOV_CRATES=all instruments everything (cargo-fuzz's own behaviour).
# Measured in docs/THROUGHPUT.md. A wrapper already set goes in PTFUZZ_NEXT_RUSTC_WRAPPER.
set -euo pipefail
rustc=$1
shift
keep=${PTFUZZ_SANCOV_CRATES:-ptfuzz_engine ptfuzz_harness}
name="" type="" prev=""
for a in "$@"; do
  case $prev in
    --crate-name) name=$a ;;
    --crate-type) type=$a ;;
  esac
  prev=$a
done
args=("$@")
if [ "$keep" != all ] && [ "$type" != bin ] && [[ " $keep " != *" $name "* ]]; then
  args=()
  for a in "$@"; do
    case $a in
      -Cpasses=sancov-module | -Cllvm-args=-sanitizer-coverage-*) ;;
      -C) args+=("$a") ;;
      passes=sancov-module | llvm-args=-sanitizer-coverage-*)
        # The split form `-C passes=...`: take the `-C` back as well.
        unset 'args[${#args[@]}-1]' ;;
      *) args+=("$a") ;;
    esac
  done
fi
exec ${PTFUZZ_NEXT_RUSTC_WRAPPER:-} "$rustc" "${args[@]}"
