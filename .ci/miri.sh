#!/usr/bin/env bash
# The engine's unit tests under Miri (undefined behaviour, leaks, out-of-bounds): the engine
# forbids `unsafe`, so this checks its dependencies' unsafe code as the engine uses it and
# keeps the engine runnable under Miri. Installs nightly's miri and rust-src when missing.
#
#   .ci/miri.sh              cargo +nightly miri test -p ptfuzz-engine --lib
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "nightly missing: installing it (minimal profile) with miri and rust-src"
  rustup toolchain install nightly --profile minimal --component miri,rust-src
fi
installed=$(rustup component list --toolchain nightly --installed)
for c in miri rust-src; do
  if ! grep -q "^$c" <<<"$installed"; then
    echo "nightly has no $c: rustup component add $c --toolchain nightly"
    rustup component add "$c" --toolchain nightly
  fi
done
# Miri's own sysroot (built once, cached under ~/.cache/miri).
cargo +nightly miri setup
cargo +nightly miri --version
cargo +nightly miri test -p ptfuzz-engine --lib
