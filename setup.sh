#!/usr/bin/env bash
# Installs everything TradeKernel and its tests need: the Debian tools the tests use as real peers
# (nasm builds the guest images, qemu-system-x86 boots them as a second PC, dosfstools/mtools
# check our FAT disks) and a fresh virtual environment in .venv with the project and test tools.
set -euo pipefail
cd "$(dirname "$0")"
need=()
for pair in nasm:nasm qemu-system-i386:qemu-system-x86 fsck.fat:dosfstools mdir:mtools; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
