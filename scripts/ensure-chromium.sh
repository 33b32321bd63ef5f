#!/usr/bin/env bash
# Headless Chromium for the evidence report's rendering test (tests/test_report.py): Debian's
# package `chromium`, installed where apt-get and root (or sudo) are available.  Never fails: where
# it cannot be installed, that one test is skipped, and says why.
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: no apt-get here; the report's Chromium test will be skipped" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "note: installing Chromium needs root; the report's Chromium test will be skipped" >&2
    exit 0
  fi
fi
echo "Chromium missing: installing the Debian package chromium (the report's rendering test)"
timeout 600 $SUDO apt-get install -y -qq chromium >/dev/null 2>&1 \
  || { timeout 300 $SUDO apt-get update -qq >/dev/null 2>&1 && timeout 600 $SUDO apt-get install -y -qq chromium >/dev/null 2>&1; } \
  || echo "note: could not install chromium; the report's Chromium test will be skipped" >&2
exit 0
