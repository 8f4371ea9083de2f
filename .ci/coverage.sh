#!/usr/bin/env bash
# Line coverage of engine/ by a campaign's inputs: `cargo fuzz coverage` builds each target
# with -Cinstrument-coverage and runs it over the given corpora; the profiles are merged and
# the nightly toolchain's own llvm-cov (Debian's LLVM does not match rustc's) writes an HTML
# report and a JSON summary of engine/src only.
#
#   .ci/coverage.sh OUT TARGET=PATH[:PATH...] [TARGET=...]...
#
# PATH: a corpus folder or an input file. Writes OUT/html/index.html, OUT/summary.json
# (llvm-cov export -summary-only) and OUT/merged.profdata. Installs the nightly toolchain's
# llvm-tools component when it is missing (and the nightly toolchain itself, minimal profile).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ $# -ge 2 ] || { echo "usage: $0 OUT TARGET=PATH[:PATH...]..." >&2; exit 2; }
OUT=$1; shift
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal >&2
fi
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^llvm-tools'; then
  rustup component add llvm-tools --toolchain nightly >&2
fi
HOST=$(rustc +nightly -vV | sed -n 's/^host: //p')
TOOLS=$(rustc +nightly --print sysroot)/lib/rustlib/$HOST/bin
[ -x "$TOOLS/llvm-cov" ] || { echo "!!! no llvm-cov in $TOOLS after installing llvm-tools" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || bash .ci/fuzz.sh install >&2

TARGET_DIR=target/fuzz-coverage
objects=()
profiles=()
for spec in "$@"; do
  t=${spec%%=*}
  IFS=: read -r -a paths <<<"${spec#*=}"
  rm -rf "fuzz/libfuzzer/coverage/$t"
  # The instrumented build, then every input once; inputs that crash are the campaign's
  # crashes (kept elsewhere) and only end their batch early.
  cargo +nightly fuzz coverage --fuzz-dir fuzz/libfuzzer --target-dir "$TARGET_DIR" \
    --sanitizer none "$t" "${paths[@]}" >"$OUT/$t.log" 2>&1 \
    || echo "cargo fuzz coverage $t exited non-zero (see $OUT/$t.log); using what it measured" >&2
  prof=fuzz/libfuzzer/coverage/$t/coverage.profdata
  if [ ! -f "$prof" ]; then
    echo "!!! cargo fuzz coverage $t left no profile; see $OUT/$t.log" >&2
    exit 1
  fi
  mv "$prof" "$OUT/$t.profdata"
  rm -rf "fuzz/libfuzzer/coverage/$t"
  profiles+=("$OUT/$t.profdata")
  objects+=(-object "$TARGET_DIR/$HOST/release/$t")
done
rmdir fuzz/libfuzzer/coverage 2>/dev/null || true

"$TOOLS/llvm-profdata" merge -sparse "${profiles[@]}" -o "$OUT/merged.profdata"
# llvm-cov takes the first binary bare and the others after -object.
first=${objects[1]}
rest=("${objects[@]:2}")
"$TOOLS/llvm-cov" show -format=html -output-dir="$OUT/html" -show-line-counts-or-regions \
  -instr-profile="$OUT/merged.profdata" "$first" "${rest[@]}" "$ROOT/engine/src" >/dev/null
"$TOOLS/llvm-cov" export -summary-only -instr-profile="$OUT/merged.profdata" \
  "$first" "${rest[@]}" "$ROOT/engine/src" >"$OUT/summary.json"
echo "coverage: $OUT/html/index.html"
