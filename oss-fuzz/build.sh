#!/bin/bash -eu
# The one build script for OSS-Fuzz and ClusterFuzzLite (docs/CONTINUOUS-FUZZING.md): every
# cargo-fuzz target of fuzz/libfuzzer except qemu_diff, each with its seed corpus zip, its
# .options and, when there is one, its .dict, into $OUT. oss-fuzz/Dockerfile links it and
# .clusterfuzzlite/Dockerfile copies it to $SRC/build.sh; .ci/oss-fuzz-check.sh runs it
# without Docker, with the environment OSS-Fuzz sets:
#   SRC=DIR-HOLDING-ptfuzz OUT=... WORK=... SANITIZER=address FUZZING_ENGINE=libfuzzer
#   ARCHITECTURE=x86_64 RUSTUP_TOOLCHAIN=nightly (or stable with RUSTC_BOOTSTRAP=1)
#   RUSTFLAGS="--cfg fuzzing -Cdebuginfo=1 -Cforce-frame-pointers"
# Optional: CARGO_TARGET_DIR (default $WORK/cargo-fuzz-target; CI points it at .ci/fuzz.sh's
# build, whose flags these are, so the build is shared), PTFUZZ_FUZZ_TRACE_COMPARES=1.

# The checkout, symlinks resolved: cargo's fingerprints hold paths, and a local run through
# a symlinked $SRC/ptfuzz then matches a build made from the checkout itself.
ROOT=$(cd "$SRC/ptfuzz" && pwd -P)
FUZZ_DIR=$ROOT/fuzz/libfuzzer
OSS_DIR=$ROOT/oss-fuzz
# qemu_diff needs qemu-system-aarch64 (and a QEMU per worker), which these images lack.
LEFT_OUT=qemu_diff

fail() { echo "build.sh: $*" >&2; exit 1; }

[ "${FUZZING_ENGINE:-libfuzzer}" = libfuzzer ] \
  || fail "FUZZING_ENGINE=$FUZZING_ENGINE: Rust targets build for libfuzzer only"
[ "${ARCHITECTURE:-x86_64}" = x86_64 ] \
  || fail "ARCHITECTURE=$ARCHITECTURE: only x86_64 is built (the image's cargo wrapper assumes it)"
TRIPLE=x86_64-unknown-linux-gnu
case ${SANITIZER:-address} in
  # In the image, a cargo wrapper turns `cargo fuzz build` into a source-coverage build when
  # SANITIZER=coverage (ClusterFuzzLite's coverage job); it builds from the current directory,
  # so the build below runs from inside fuzz/libfuzzer, and puts the binaries where cargo fuzz
  # would, under CARGO_TARGET_DIR.
  address | coverage) ;;
  *) fail "SANITIZER=$SANITIZER: Rust supports address (and coverage builds) only" ;;
esac

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORK/cargo-fuzz-target}
# The same build as .ci/fuzz.sh (docs/THROUGHPUT.md says why each): coverage feedback from
# the engine and the executor only; libFuzzer's own C++ without ASan; no comparison tracing.
if [ -n "${RUSTC_WRAPPER:-}" ]; then export PTFUZZ_NEXT_RUSTC_WRAPPER=$RUSTC_WRAPPER; fi
export RUSTC_WRAPPER=$FUZZ_DIR/sancov-scope.sh
export CXXFLAGS="${CXXFLAGS:+$CXXFLAGS }-fno-sanitize=address"
tc=--no-trace-compares
[ "${PTFUZZ_FUZZ_TRACE_COMPARES:-0}" = 1 ] && tc=

cd "$FUZZ_DIR"
# The [[bin]] names of the fuzz manifest (`cargo fuzz list` would be a coverage build in the
# image when SANITIZER=coverage).
TARGETS=$(awk '/^\[\[bin\]\]/ { bin = 1; next } /^\[/ { bin = 0 }
  bin && /^name *=/ { gsub(/^name *= *"|".*$/, ""); print }' Cargo.toml | grep -vx "$LEFT_OUT" || true)
[ -n "$TARGETS" ] || fail "no [[bin]] targets in $FUZZ_DIR/Cargo.toml"
echo "build.sh: targets $(echo $TARGETS) (left out: $LEFT_OUT) into $OUT;" \
  "target dir $CARGO_TARGET_DIR; sanitizer ${SANITIZER:-address}"

cargo fuzz build --fuzz-dir "$FUZZ_DIR" --target-dir "$CARGO_TARGET_DIR" --sanitizer address \
  --release --debug-assertions $tc

zip_flat() {   # out.zip dir: the files of dir, flat (zip -j); python3 where zip is absent
  rm -f "$1"
  if command -v zip >/dev/null; then
    zip -q -j "$1" "$2"/*
  else
    python3 - "$1" "$2" <<'PY'
import os, sys, zipfile
out, d = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for n in sorted(os.listdir(d)):
        if os.path.isfile(os.path.join(d, n)):
            z.write(os.path.join(d, n), n)
PY
  fi
}

mkdir -p "$OUT"
for t in $TARGETS; do
  [[ $t =~ ^[A-Za-z0-9_-]+$ ]] || fail "target name '$t': ClusterFuzz takes [A-Za-z0-9_-] only"
  [ -d "$ROOT/corpus/$t" ] || fail "no seed corpus corpus/$t/ for target $t"
  [ -f "$OSS_DIR/$t.options" ] || fail "no oss-fuzz/$t.options for target $t"
  cp "$CARGO_TARGET_DIR/$TRIPLE/release/$t" "$OUT/$t"
  zip_flat "$OUT/${t}_seed_corpus.zip" "$ROOT/corpus/$t"
  cp "$OSS_DIR/$t.options" "$OUT/$t.options"
  if [ -f "$OSS_DIR/$t.dict" ]; then cp "$OSS_DIR/$t.dict" "$OUT/$t.dict"; fi
done
ls -l "$OUT"
