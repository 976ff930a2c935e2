#!/usr/bin/env bash
# Debian's chromium, for kaleido's PNG/SVG export and the browser tests. Never a downloaded browser.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing Debian's chromium (apt-get)..."
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }; then
  echo "warning: chromium could not be installed; static image export and browser tests will be skipped" >&2
fi
