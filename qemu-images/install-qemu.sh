#!/usr/bin/env bash
# Installs the QEMU the SMMUv3 oracle needs (qemu-system-aarch64 >= 11.1: iommu-testdev,
# stage 2, nesting) into a private prefix of this checkout, from Debian unstable's binary
# packages. Its binary needs a newer glibc than the machine's, so the prefix holds QEMU and
# every shared library it needs, and QEMU is started through the prefix's own loader:
#   PREFIX/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path PREFIX/usr/lib/x86_64-linux-gnu PREFIX/usr/bin/qemu-system-aarch64
# The machine is left alone: apt runs with its own sources list, lists directory, cache and
# an empty status file; nothing is installed system-wide. The sources list reuses the URI and
# keyring of the machine's own Debian source, so no host is written here.
# An empty `qemu-bundle` directory beside the loader makes QEMU look for its modules inside
# the prefix, never in the system's module directory (where a system QEMU 10's modules would
# abort the 11.1 binary). Idempotent: a verified prefix is reused.
# Usage: install-qemu.sh [PREFIX]   (default: qemu-images/root of this checkout)
# Facts: ../shared/qemu-smmuv3.md, section 16.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prefix=${1:-${PTFUZZ_QEMU_PREFIX:-$here/root}}
need_major=11
need_minor=1
libdir=usr/lib/x86_64-linux-gnu
stamp=.ptfuzz-verified

# Runs the prefix's QEMU with the given arguments.
run_qemu() {
  local p=$1; shift
  "$p/$libdir/ld-linux-x86-64.so.2" --library-path "$p/$libdir" "$p/usr/bin/qemu-system-aarch64" "$@"
}

# Succeeds when the prefix holds a QEMU >= 11.1 that lists iommu-testdev; writes the stamp.
verify() {
  local p=$1 version major minor
  [ -x "$p/usr/bin/qemu-system-aarch64" ] || return 1
  version=$(run_qemu "$p" --version 2>&1 | head -1) || return 1
  major=$(sed -n 's/.*version \([0-9]*\)\.\([0-9]*\).*/\1/p' <<<"$version")
  minor=$(sed -n 's/.*version \([0-9]*\)\.\([0-9]*\).*/\2/p' <<<"$version")
  if [ -z "$major" ] || [ "$major" -lt $need_major ] ||
     { [ "$major" -eq $need_major ] && [ "$minor" -lt $need_minor ]; }; then
    echo "qemu: $p holds '$version', need >= $need_major.$need_minor" >&2
    return 1
  fi
  if ! run_qemu "$p" -M virt -device help 2>&1 | grep -q '^name "iommu-testdev"'; then
    echo "qemu: $p ($version) does not list iommu-testdev under -M virt -device help" >&2
    return 1
  fi
  echo "$version" >"$p/$stamp"
  echo "qemu: $version in $p (iommu-testdev present)"
}

if [ -f "$prefix/$stamp" ] && verify "$prefix"; then
  exit 0
fi

# One installer at a time per prefix (cargo test may start several test binaries).
mkdir -p "$(dirname "$prefix")"
exec 9>"$prefix.lock"
flock 9
if [ -f "$prefix/$stamp" ] && verify "$prefix"; then
  exit 0
fi

echo "qemu: installing QEMU >= $need_major.$need_minor from Debian unstable's binary packages into $prefix"
src=/etc/apt/sources.list.d/debian.sources
[ -r "$src" ] || { echo "qemu: $src missing; cannot find the machine's Debian source" >&2; exit 1; }
uri=$(sed -n 's/^URIs:[[:space:]]*//p' "$src" | head -1 | awk '{print $1}')
keyring=$(sed -n 's/^Signed-By:[[:space:]]*//p' "$src" | head -1)
keyring=${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
[ -n "$uri" ] || { echo "qemu: no URIs: line in $src" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ptfuzz-qemu-apt.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/root"
echo "deb [signed-by=$keyring] $uri sid main" >"$work/sources.list"
apt_opts=(
  -o "Dir::Etc::sourcelist=$work/sources.list"
  -o "Dir::Etc::sourceparts=$work/none"
  -o "Dir::State::lists=$work/lists"
  -o "Dir::State::status=/dev/null"
  -o "Dir::Cache=$work/cache"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)
apt-get "${apt_opts[@]}" -qq update
# QEMU's own library dependencies and theirs (only shared-library packages: QEMU is run
# from the prefix, never installed, so maintainer scripts and tools are not needed).
direct=$(apt-cache "${apt_opts[@]}" depends qemu-system-arm |
  sed -n 's/^  Depends: \(lib[^ ]*\|zlib1g\)$/\1/p')
[ -n "$direct" ] || { echo "qemu: apt lists no dependencies of qemu-system-arm in sid" >&2; exit 1; }
closure=$(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
  --no-conflicts --no-breaks --no-replaces --no-enhances $direct |
  grep -E '^(lib|zlib1g)' | sort -u)
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download qemu-system-arm $closure)
echo "qemu: unpacking $(ls "$work/debs" | wc -l) packages ($(du -sh "$work/debs" | cut -f1))"
for deb in "$work/debs"/*.deb; do
  dpkg-deb -x "$deb" "$work/root"
done
mkdir -p "$work/root/$libdir/qemu-bundle"
verify "$work/root" || { echo "qemu: the unpacked QEMU does not verify" >&2; exit 1; }
rm -rf "$prefix.old"
[ -e "$prefix" ] && mv "$prefix" "$prefix.old"
mv "$work/root" "$prefix"
rm -rf "$prefix.old"
verify "$prefix"
