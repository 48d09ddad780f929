#!/usr/bin/env bash
# Unpack a Debian bookworm userland for one ARM architecture (arm64 or armhf):
# the Python interpreter, its headers and the libraries bnnbench imports,
# enough for qemu-user to run bnnbench and for a cross compiler to build
# against. bookworm is what Raspberry Pi OS is built on.
#
# A private apt root (its own lists, empty dpkg status) resolves the whole
# dependency closure for the target architecture without touching the host's
# package state; the packages are only unpacked (dpkg -x), never configured,
# so no foreign maintainer script has to run.
#
#   tools/arm/sysroot.sh ARCH DEST       (ARCH: arm64 or armhf)
#
# Reuses DEST if it was completed for the same package list.
set -euo pipefail

arch=${1:?usage: sysroot.sh ARCH DEST}
dest=${2:?usage: sysroot.sh ARCH DEST}
mirror=${BNNBENCH_ARM_MIRROR:-http://deb.debian.org/debian}
suite=${BNNBENCH_ARM_SUITE:-bookworm}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

case $arch in
    arm64) triplet=aarch64-linux-gnu ;;
    armhf) triplet=arm-linux-gnueabihf ;;
    *) echo "sysroot.sh: unsupported architecture $arch (arm64 or armhf)" >&2; exit 1 ;;
esac
# OpenBLAS, as numpy's own wheels bundle: the float_blas baseline should be
# the BLAS a user would have, not the reference one.
packages="python3.11 libpython3.11-dev libgomp1 libopenblas0-pthread python3-numpy
python3-pandas python3-psutil python3-threadpoolctl python3-cpuinfo python3-setuptools"

stamp="$dest/.bnnbench-sysroot"
# Bump when the layout made below changes, so old sysroots are remade.
layout=2
want="$layout $arch $suite $mirror $(echo $packages)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
[ -f "$keyring" ] || { echo "sysroot.sh: $keyring missing (install debian-archive-keyring)" >&2; exit 1; }

apt_root="$dest.apt"
rm -rf "$dest" "$apt_root"
mkdir -p "$apt_root"/etc/apt/sources.list.d "$apt_root"/etc/apt/preferences.d \
         "$apt_root"/var/lib/apt/lists/partial "$apt_root"/var/cache/apt/archives/partial \
         "$apt_root"/var/lib/dpkg
: > "$apt_root/var/lib/dpkg/status"
echo "deb [arch=$arch signed-by=$keyring] $mirror $suite main" > "$apt_root/etc/apt/sources.list"

apt_opts=(-o "Dir=$apt_root" -o "Dir::State::Status=$apt_root/var/lib/dpkg/status"
          -o "Dir::Etc::TrustedParts=/etc/apt/trusted.gpg.d"
          -o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
          -o "APT::Install-Recommends=false" -o "APT::Get::Download-Only=true"
          -o "Debug::NoLocking=true" -o "APT::Sandbox::User=root")
echo "sysroot.sh: resolving $arch packages from $mirror $suite" >&2
apt-get "${apt_opts[@]}" -qq update
apt-get "${apt_opts[@]}" -qq -y install $packages >/dev/null

mkdir -p "$dest"
n=0
for deb in "$apt_root"/var/cache/apt/archives/*.deb; do
    dpkg-deb -x "$deb" "$dest"
    n=$((n + 1))
done
# bookworm's merged /usr (/lib -> usr/lib, ...), which base-files and usrmerge
# would have made: with /lib a real directory here but a symlink on the host,
# qemu-user answers lstat and readlink of /lib from different trees and
# os.path.realpath fails.
for d in bin sbin lib; do
    if [ -d "$dest/$d" ] && [ ! -L "$dest/$d" ]; then
        mkdir -p "$dest/usr/$d"
        cp -a "$dest/$d/." "$dest/usr/$d/"
        rm -rf "${dest:?}/$d"
    fi
    ln -sfn "usr/$d" "$dest/$d"
done
# What python3-minimal's and update-alternatives' maintainer scripts would
# have linked.
ln -sf python3.11 "$dest/usr/bin/python3"
libdir="$dest/usr/lib/$triplet"
for lib in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
    ln -sf "openblas-pthread/$lib" "$libdir/$lib"
    [ -e "$libdir/$lib" ] || { echo "sysroot.sh: $libdir/openblas-pthread/$lib missing" >&2; exit 1; }
done
rm -rf "$apt_root"
echo "$want" > "$stamp"
echo "sysroot.sh: $arch userland in $dest ($n packages)" >&2
