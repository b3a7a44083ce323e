#!/usr/bin/env bash
# scripts/test.sh: the README's test command. Installs (with the test-only packages: headless
# Chromium, xmllint) and builds (scripts/setup.sh --test), then runs
# every C unit test and busted spec under ctest, first in the Release build, then in the
# ASan+UBSan build (skip that with NEURONAS_NO_SANITIZE=1). Exit status: non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
status=0
ctest --test-dir build --output-on-failure -j 2 || status=1
if [ "${NEURONAS_NO_SANITIZE:-0}" != 1 ]; then
  scripts/setup.sh --sanitize --test
  ctest --test-dir build-asan --output-on-failure -j 2 || status=1
fi
exit $status
