#!/usr/bin/env bash
# Install the Debian 12 packages cfplex needs to build, test and run its demo.
# Idempotent: installs only what is missing. Run as root (or with sudo).
set -euo pipefail

PKGS=(gcc make meson ninja-build pkg-config
      libev-dev libibverbs-dev librdmacm-dev ibverbs-providers libpmem2-dev libsodium-dev zlib1g-dev
      procps iproute2 util-linux coreutils python3)
case "${1:-}" in
  --fuzz) PKGS+=(clang libclang-rt-14-dev) ;;
  --bench) PKGS+=(gnuplot-nox postgresql etcd-server etcd-client nftables perftest) ;;
  "") ;;
  *) echo "usage: $0 [--fuzz|--bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# An old or empty package list makes apt miss packages: refresh once per run.
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
