#!/usr/bin/env bash
# Keeps the continuous-fuzzing files from rotting (docs/CONTINUOUS-FUZZING.md):
#   1. the ClusterFuzzLite workflows, project files, Dockerfiles and .options are checked for
#      syntax and for what ClusterFuzzLite and OSS-Fuzz read (.ci/check-cflite.py, PyYAML);
#   2. oss-fuzz/build.sh runs without Docker, in the environment OSS-Fuzz sets;
#   3. every binary it put in $OUT fuzzes its unzipped seed corpus for PTFUZZ_OSSFUZZ_SECONDS
#      (default 5) with the flags of its .options, as ClusterFuzz would: it must run at least
#      PTFUZZ_OSSFUZZ_MIN_EXECS inputs (default 1000) and exit 0 with no crash file.
# Installs cargo-fuzz and PyYAML when missing. In CI it runs after .ci/fuzz.sh libfuzzer and
# shares that build (same toolchain choice, flags and target dir), so step 2 is a copy.
#
#   .ci/oss-fuzz-check.sh            all three
#   .ci/oss-fuzz-check.sh files      step 1 only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${PTFUZZ_OSSFUZZ_SECONDS:-5}
MIN_EXECS=${PTFUZZ_OSSFUZZ_MIN_EXECS:-1000}
SCRATCH=$ROOT/target/oss-fuzz-check
LEFT_OUT=qemu_diff

step() {   # like .ci/run's stage
  local name=$1; shift
  echo "::: oss-fuzz step '$name': $*"
  local t0=$SECONDS
  "$@"
  echo "::: oss-fuzz step '$name' took $((SECONDS - t0)) s"
}

need_pyyaml() {
  python3 -c 'import yaml' 2>/dev/null && return
  echo "PyYAML missing: installing it for this user"
  python3 -m pip install --user --quiet pyyaml 2>/dev/null \
    || python3 -m pip install --user --quiet --break-system-packages pyyaml 2>/dev/null \
    || { local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
         $sudo apt-get install -y -q python3-yaml >/dev/null; }
  python3 -c 'import yaml' || { echo "!!! could not install PyYAML (pip or apt python3-yaml)"; exit 1; }
}

need_cargo_fuzz() {
  if command -v cargo-fuzz >/dev/null; then return; fi
  step install-cargo-fuzz cargo install --locked cargo-fuzz --version 0.13.2
}

# The toolchain and target dir .ci/fuzz.sh would use, so its build is reused: nightly where
# installed, else stable with RUSTC_BOOTSTRAP=1 (ASan needs one of the two).
TOOLCHAIN_ENV=()
choose_toolchain() {
  if [ "${PTFUZZ_FUZZ_TOOLCHAIN:-}" != stable ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    TOOLCHAIN_ENV=(RUSTUP_TOOLCHAIN=nightly CARGO_TARGET_DIR="$ROOT/fuzz/libfuzzer/target")
  else
    TOOLCHAIN_ENV=(RUSTUP_TOOLCHAIN=stable RUSTC_BOOTSTRAP=1
      CARGO_TARGET_DIR="$ROOT/fuzz/libfuzzer/target/bootstrap")
  fi
}

check_files() { python3 .ci/check-cflite.py; }

run_build() {
  rm -rf "$SCRATCH"
  mkdir -p "$SCRATCH/src" "$SCRATCH/out" "$SCRATCH/work"
  ln -s "$ROOT" "$SCRATCH/src/ptfuzz"
  # What OSS-Fuzz's base-builder-rust sets (../shared/FUZZ-TOOLING.md), nothing inherited
  # from this shell's C flags.
  env -u CFLAGS -u CXXFLAGS -u RUSTFLAGS -u RUSTC_WRAPPER \
    SRC="$SCRATCH/src" OUT="$SCRATCH/out" WORK="$SCRATCH/work" \
    SANITIZER=address FUZZING_ENGINE=libfuzzer ARCHITECTURE=x86_64 \
    RUSTFLAGS="--cfg fuzzing -Cdebuginfo=1 -Cforce-frame-pointers" \
    "${TOOLCHAIN_ENV[@]}" bash -eu "$ROOT/oss-fuzz/build.sh"
}

# The targets build.sh must have built: every cargo-fuzz target but qemu_diff.
expected_targets() {
  cargo fuzz list --fuzz-dir fuzz/libfuzzer | grep -vx "$LEFT_OUT"
}

# An .options file as libFuzzer flags (ClusterFuzz passes its [libfuzzer] keys as -key=value).
options_flags() {
  python3 - "$1" <<'PY'
import configparser, sys
c = configparser.ConfigParser()
c.read(sys.argv[1])
print(" ".join(f"-{k}={v}" for k, v in c["libfuzzer"].items()))
PY
}

run_one() {   # target: fuzz $OUT/target on its unzipped seeds, as ClusterFuzz would
  local t=$1 out=$SCRATCH/out dir=$SCRATCH/run/$1
  [ -x "$out/$t" ] || { echo "!!! build.sh made no binary $out/$t"; return 1; }
  [ -f "$out/${t}_seed_corpus.zip" ] || { echo "!!! no $out/${t}_seed_corpus.zip"; return 1; }
  # What OSS-Fuzz's check_build looks for: a libFuzzer entry point, built with ASan.
  local sym
  for sym in LLVMFuzzerTestOneInput __asan_init; do
    grep -q -a "$sym" "$out/$t" || { echo "!!! $out/$t has no $sym"; return 1; }
  done
  rm -rf "$dir"
  mkdir -p "$dir/seeds" "$dir/corpus" "$dir/artifacts"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$out/${t}_seed_corpus.zip" "$dir/seeds"
  local seeds
  seeds=$(find "$dir/seeds" -type f | wc -l)
  [ "$seeds" -gt 0 ] || { echo "!!! ${t}_seed_corpus.zip is empty"; return 1; }
  [ "$seeds" -eq "$(find "corpus/$t" -maxdepth 1 -type f | wc -l)" ] \
    || { echo "!!! ${t}_seed_corpus.zip holds $seeds files, corpus/$t/ more or fewer"; return 1; }
  local flags rc=0
  flags=$(options_flags "$out/$t.options")
  echo "$t: $seeds seeds, $SECONDS_EACH s, options: $flags; log $dir/log"
  # shellcheck disable=SC2086
  (cd "$dir" && "$out/$t" $flags -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" corpus seeds) >"$dir/log" 2>&1 || rc=$?
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  echo "$t: ${execs:-?} execs ($(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1) exec/s), corpus $(ls "$dir/corpus" | wc -l) files, exit $rc"
  if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$dir/artifacts")" ]; then
    tail -40 "$dir/log"
    echo "!!! $t crashed or failed (exit $rc; artifacts: $(ls "$dir/artifacts" | tr '\n' ' '))"
    return 1
  fi
  # It must have fuzzed, not only replayed its seeds (that plus libFuzzer's own few runs
  # is a dozen or two; a 5 s run makes thousands even on a loaded machine).
  if [ -z "$execs" ] || [ "$execs" -lt "$MIN_EXECS" ] || [ "$execs" -le "$seeds" ]; then
    tail -20 "$dir/log"
    echo "!!! $t ran ${execs:-no} inputs from $seeds seeds, fewer than $MIN_EXECS: it did not fuzz"
    return 1
  fi
}

run_all() {
  local t n=0
  for t in $(expected_targets); do
    step "run-$t" run_one "$t"
    n=$((n + 1))
  done
  [ -e "$SCRATCH/out/$LEFT_OUT" ] && { echo "!!! $LEFT_OUT was built for OSS-Fuzz"; return 1; }
  [ "$(find "$SCRATCH/out" -maxdepth 1 -type f -perm -u+x | wc -l)" -eq "$n" ] \
    || { ls -l "$SCRATCH/out"; echo "!!! \$OUT holds other binaries than the $n targets"; return 1; }
}

need_pyyaml
step files check_files
if [ "${1:-all}" = files ]; then exit 0; fi
need_cargo_fuzz
choose_toolchain
echo "build.sh environment: ${TOOLCHAIN_ENV[*]}"
step build.sh run_build
step run run_all
