#!/usr/bin/env bash
# scripts/setup.sh: installs NeuroNAS's Debian packages (when missing) and builds it.
#   scripts/setup.sh             Release build in build/
#   scripts/setup.sh --sanitize  ASan+UBSan build in build-asan/
#   scripts/setup.sh --test      also installs what only the tests need (headless Chromium for the
#                                HTML report's browser spec, xmllint; luarocks, groff and git for
#                                the install checks); combines with --sanitize
# The Release build is also installed under /usr/local when run as root (so `neuronas` is on
# PATH); NEURONAS_NO_INSTALL=1 skips that.
# Environment: NEURONAS_NO_APT=1 skips the package step; JOBS sets build parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
flags=(-DCMAKE_BUILD_TYPE=Release)
pkgs=(build-essential cmake pkg-config lua5.4 liblua5.4-dev libopenblas-dev zlib1g-dev lua-busted dataset-fashion-mnist)
for a in "$@"; do
  case $a in
    --sanitize) build=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEURONAS_SANITIZE=ON) ;;
    --test) pkgs+=(chromium libxml2-utils luarocks groff-base git) ;;
    *) echo "setup.sh: unknown option '$a' (expected --sanitize, --test)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ "${NEURONAS_NO_APT:-0}" != 1 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B "$build" "${flags[@]}" >/dev/null
cmake --build "$build" -j "${JOBS:-$(nproc)}" >/dev/null
echo "setup: built $build/neuronas" >&2
if [ "$build" = build ] && [ "$(id -u)" -eq 0 ] && [ "${NEURONAS_NO_INSTALL:-0}" != 1 ]; then
  cmake --install build >/dev/null && echo "setup: installed $(command -v neuronas || echo /usr/local/bin/neuronas)" >&2
fi
