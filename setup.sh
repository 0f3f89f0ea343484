#!/usr/bin/env bash
# Installs everything TradeKernel and its tests need: the Debian tools the tests use as real peers
# (nasm and gcc rebuild the guest images, qemu-system-x86 boots them as a second PC,
# dosfstools/mtools check our FAT disks, bsdextrautils' hexdump checks ours) and a fresh virtual
# environment in .venv with the project and test tools. tests/peers.py finds the same tools
# (PATH, then /usr/sbin and /sbin) and a test checks that every package it names is listed here.
set -euo pipefail
cd "$(dirname "$0")"
need=()
for pair in nasm:nasm gcc:gcc qemu-system-i386:qemu-system-x86 fsck.fat:dosfstools mdir:mtools \
            hexdump:bsdextrautils ip:iproute2 ping:iputils-ping dnsmasq:dnsmasq-base \
            dpkg-deb:dpkg dpkg-scanpackages:dpkg-dev nm:binutils; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# tshark reads every --pcap capture the network tests write (zero malformed packets).
command -v tshark >/dev/null 2>&1 || need+=(tshark)
# gcc-multilib lets gcc -m32 -static build the glibc program tests/system/test_linux.py runs.
dpkg -s gcc-multilib >/dev/null 2>&1 || need+=(gcc-multilib)
# gdb drives the GDB stub in tests/debug (tk boot --gdb / -s / -S).
command -v gdb >/dev/null 2>&1 || need+=(gdb)
# curl on the Linux side of a TAP fetches from the guest's httpd (tests/hostnet/test_http_tap.py).
command -v curl >/dev/null 2>&1 || need+=(curl)
# tmux is the real terminal that renders the tty's serial mirror (tests/console/test_tty_mirror.py).
command -v tmux >/dev/null 2>&1 || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # wireshark-common asks whether non-root users may capture: answer no, non-interactively.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
# The package manager's tests read real Debian i386 packages (tests/pkg/debs/, git-ignored),
# fetched once here through apt; nothing is downloaded at test time.
if ! ls tests/pkg/debs/busybox-static_*_i386.deb >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  dpkg --print-foreign-architectures | grep -qx i386 || $sudo dpkg --add-architecture i386
  $sudo apt-get update -qq
  mkdir -p tests/pkg/debs
  (cd tests/pkg/debs && apt-get download -qq busybox-static:i386)
fi
# Debian's i386 tcc and lua5.4 with what they need (tests/pkg/test_toolchain.py), in a directory
# of their own that serves as a package repository: fetched once here, never at test time.
if ! ls tests/pkg/debs/toolchain/tcc_*_i386.deb >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  dpkg --print-foreign-architectures | grep -qx i386 || $sudo dpkg --add-architecture i386
  $sudo apt-get update -qq
  mkdir -p tests/pkg/debs/toolchain
  (cd tests/pkg/debs/toolchain && apt-get download -qq tcc:i386 lua5.4:i386 libc6:i386 \
    libc6-dev:i386 libgcc-s1:i386 gcc-12-base:i386 libtinfo6:i386 libreadline8:i386 \
    readline-common install-info:i386)
fi
# libc6-dev's Depends (Debian 12), so `pkg install libc6-dev` works from that directory
# (tests/pkg/test_toolchain.py); fetched on their own so an older toolchain directory gets them.
if ! ls tests/pkg/debs/toolchain/linux-libc-dev_*_i386.deb >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  dpkg --print-foreign-architectures | grep -qx i386 || $sudo dpkg --add-architecture i386
  $sudo apt-get update -qq
  mkdir -p tests/pkg/debs/toolchain
  (cd tests/pkg/debs/toolchain && apt-get download -qq libc-dev-bin:i386 linux-libc-dev:i386 \
    libcrypt-dev:i386 libcrypt1:i386 libnsl-dev:i386 libnsl2:i386 libtirpc-dev:i386 \
    libtirpc3:i386 libtirpc-common libgssapi-krb5-2:i386 libk5crypto3:i386 libkeyutils1:i386 \
    libkrb5-3:i386 libkrb5support0:i386 libcom-err2:i386 libssl3:i386 rpcsvc-proto:i386)
fi
