#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build script: the cargo-fuzz targets of fuzz/libfuzzer, their seed
# corpora and options, into $OUT. Runs in the base-builder-rust image, or locally without
# Docker (see ../shared/FUZZ-TOOLING.md, "OSS-Fuzz and ClusterFuzzLite"):
#   SRC=... (holding ptfuzz/) OUT=... WORK=... SANITIZER=address FUZZING_ENGINE=libfuzzer \
#   ARCHITECTURE=x86_64 RUSTUP_TOOLCHAIN=nightly \
#   RUSTFLAGS="--cfg fuzzing -Cdebuginfo=1 -Cforce-frame-pointers" bash .clusterfuzzlite/build.sh
# (on stable: RUSTUP_TOOLCHAIN=stable RUSTC_BOOTSTRAP=1). The C -fsanitize CFLAGS of the base
# image are not passed on: this is a pure Rust build.

cd "$SRC/ptfuzz"
FUZZ_DIR=fuzz/libfuzzer
# qemu_diff is left out: it needs qemu-system-aarch64, which the runner image lacks.
TARGETS="pagetable ioasid prealloc"
TRIPLE=x86_64-unknown-linux-gnu
# A target dir of our own under $WORK, so a local run never mixes with the developer's builds.
TARGET_DIR=${WORK}/cargo-fuzz-target

cargo fuzz build -O --debug-assertions --fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR"

zip_flat() {   # out.zip dir: the files of dir, flat (zip -j), with python3 when zip is absent
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

for t in $TARGETS; do
  cp "$TARGET_DIR/$TRIPLE/release/$t" "$OUT/$t"
  zip_flat "$OUT/${t}_seed_corpus.zip" "corpus/$t"
  cp ".clusterfuzzlite/$t.options" "$OUT/$t.options"
done
ls -l "$OUT"
