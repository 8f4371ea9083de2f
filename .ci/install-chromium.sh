#!/usr/bin/env bash
# Debian's headless Chromium for the report's browser test (fuzz/harness/tests/report_page.rs),
# installed when missing. Prints the browser's path; fails loudly when it cannot install it.
set -euo pipefail
for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null; then command -v "$b"; exit 0; fi
done
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "install-chromium: installing Debian's chromium (apt-get)" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
command -v chromium
