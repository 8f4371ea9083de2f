#!/usr/bin/env bash
# Installs the QEMU the SMMUv3 oracle needs (qemu-system-aarch64 >= 10, for stage 2 and
# nesting) from Debian bookworm-backports when it is missing or older. The backports source
# reuses the URI and keyring of the machine's own Debian source, so no host is written here.
# Facts: ../shared/qemu-smmuv3.md (top).
set -euo pipefail

need_major=10
have_major() {
  command -v qemu-system-aarch64 >/dev/null || { echo 0; return; }
  qemu-system-aarch64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1
}

major=$(have_major)
if [ "${major:-0}" -ge "$need_major" ]; then
  echo "qemu: $(qemu-system-aarch64 --version | head -1) (>= $need_major, nothing to install)"
  exit 0
fi
echo "qemu: qemu-system-aarch64 ${major:+major $major }missing or older than $need_major; installing from bookworm-backports"

src=/etc/apt/sources.list.d/debian.sources
uri=$(sed -n 's/^URIs:[[:space:]]*//p' "$src" | head -1)
keyring=$(sed -n 's/^Signed-By:[[:space:]]*//p' "$src" | head -1)
[ -n "$uri" ] || { echo "qemu: no URIs: line in $src; cannot add backports" >&2; exit 1; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "qemu: adding bookworm-backports from $uri"
$sudo tee /etc/apt/sources.list.d/ptfuzz-backports.sources >/dev/null <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: ${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
SRC
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -t bookworm-backports qemu-system-arm >/dev/null
major=$(have_major)
if [ "${major:-0}" -lt "$need_major" ]; then
  echo "qemu: installed qemu-system-aarch64 is still older than $need_major" >&2
  exit 1
fi
echo "qemu: installed $(qemu-system-aarch64 --version | head -1)"
