#!/usr/bin/env bash
# Build and run bnnbench for Raspberry Pi architectures on an x86-64
# Debian/Ubuntu machine, under qemu-user.
#
#   tools/arm/arm.sh host-setup            install cross compilers and qemu-user (apt)
#   tools/arm/arm.sh verify ARCH...        build NEON and portable kernels, run `bnnbench verify`
#                                          (with $VERIFY_ARGS, e.g. --all-models)
#   tools/arm/arm.sh sweep ARCH OUTDIR     `bnnbench sweep --quick` with the NEON build
#
# ARCH is what `uname -m` says on the Pi: aarch64 (64-bit Raspberry Pi OS) or
# armv7l (32-bit). The Python that runs bnnbench is Debian bookworm's for that
# architecture (tools/arm/sysroot.sh), emulated by qemu-user with the Pi's CPU
# model. The kernels are built by setup.py running in that emulated Python, so
# sysconfig, numpy's headers and the flag probing are the target's; only the
# compiler it calls is the host's cross gcc (a native process: qemu-user hands
# exec of a host binary to the host kernel). The Cython .c files are made on
# the host first, by the same setup.py; they do not depend on the target.
#
# Everything lands in $ARM_CACHE (default .arm/, git-ignored); sysroots are
# reused across runs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${ARM_CACHE:-$repo/.arm}
host_python=${HOST_PYTHON:-$repo/.venv/bin/python}

die() { echo "arm.sh: error: $*" >&2; exit 1; }
say() { echo "arm.sh: $*" >&2; }

# ARCH -> Debian architecture, cross compiler, qemu binary, CPU emulated and
# built for (the Pi 4's Cortex-A72; for 32-bit the Pi 2's Cortex-A7, the
# oldest NEON Pi, whose code also runs on a Pi 3 and 4).
arch_vars() {
    case $1 in
        aarch64) deb=arm64; cc=aarch64-linux-gnu-gcc; qemu=qemu-aarch64
                 cpu=${ARM_CPU_AARCH64:-cortex-a72} ;;
        # -mfpu=vfp: Raspberry Pi OS's 32-bit gcc is configured with that FPU,
        # which hides NEON until setup.py's probing asks for the core's own.
        armv7l)  deb=armhf; cc="arm-linux-gnueabihf-gcc -mfpu=vfp"; qemu=qemu-arm
                 cpu=${ARM_CPU_ARMV7L:-cortex-a7} ;;
        *) die "unknown architecture '$1' (aarch64 or armv7l)" ;;
    esac
    sysroot=$cache/sysroot-$deb
}

host_setup() {
    local need=() cmd pkg
    for pair in aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu \
                aarch64-linux-gnu-gcc:libc6-dev-arm64-cross \
                arm-linux-gnueabihf-gcc:gcc-arm-linux-gnueabihf \
                arm-linux-gnueabihf-gcc:libc6-dev-armhf-cross \
                qemu-aarch64:qemu-user qemu-arm:qemu-user; do
        cmd=${pair%%:*}; pkg=${pair#*:}
        command -v "$cmd" >/dev/null || need+=("$pkg")
    done
    [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
    [ ${#need[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get: install them by hand"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    say "installing ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
}

# The pure-Python wheel of the host's version of a build dependency, for
# the emulated setup.py to import: Cython (which then finds the host-made .c
# files up to date) and setuptools (the target's own may be too old for
# pyproject.toml, e.g. Debian 12's 66 rejects an SPDX license string).
host_wheel_dir() {
    local name=$1 version dir
    version=$("$host_python" -c "from importlib.metadata import version; print(version('$name'))") \
        || die "no $name in $host_python (run make first)"
    dir=$cache/$name-$version
    if [ ! -f "$dir/.complete" ]; then
        rm -rf "$dir.tmp"
        "$host_python" -m pip install --quiet --no-deps --only-binary=:all: --platform any \
            --implementation py --python-version 3.11 --target "$dir.tmp" "$name==$version" \
            || die "could not fetch the pure-Python $name $version wheel"
        touch "$dir.tmp/.complete"
        rm -rf "$dir"; mv "$dir.tmp" "$dir"
    fi
    echo "$dir"
}

# Run the target's python under qemu-user: cwd and arguments as given.
# BNNBENCH_EMULATED tells the host fingerprint what it runs under.
emulated_python() {
    env -u PYTHONHOME -u VIRTUAL_ENV PYTHONNOUSERSITE=1 QEMU_LD_PREFIX="$sysroot" \
        QEMU_CPU="$cpu" BNNBENCH_EMULATED="$qemu" \
        "$qemu" "$sysroot/usr/bin/python3.11" "$@"
}

# build ARCH VARIANT -> $cache/ARCH-VARIANT/lib holds an importable bnnbench.
build() {
    local arch=$1 variant=$2 dest src portable wheels target_flags key
    arch_vars "$arch"
    wheels=$(host_wheel_dir cython):$(host_wheel_dir setuptools)
    dest=$cache/$arch-$variant
    src=$dest/src
    # The portable build is what any gcc makes for the architecture's baseline.
    portable=0; target_flags="-mcpu=$cpu"
    [ "$variant" = portable ] && { portable=1; target_flags=""; }
    # Everything the build depends on; an unchanged build is reused.
    key=$( (cd "$repo" && find setup.py pyproject.toml kernels_pyx bnnbench tools/arm -type f \
                ! -name '*.so' ! -name '*.c' ! -path '*/__pycache__/*' -print0 \
            | LC_ALL=C sort -z | xargs -0 sha256sum
            cat "$sysroot/.bnnbench-sysroot"
            echo "$cc $target_flags $portable $wheels") | sha256sum | cut -c1-16)
    if [ -f "$dest/lib/.build-key" ] && [ "$(cat "$dest/lib/.build-key")" = "$key" ]; then
        say "$arch $variant: sources unchanged since the last build, reusing it"
        grep '^bnnbench: building kernels' "$dest/build.log" >&2 || true
        return 0
    fi
    rm -rf "$dest"; mkdir -p "$src"
    # A copy of the working tree: the host's own build and .c files stay untouched.
    (cd "$repo" && tar --exclude='*.so' --exclude='__pycache__' --exclude='kernels_pyx/*.c' \
        -cf - setup.py pyproject.toml README.md kernels_pyx bnnbench) | tar -C "$src" -xf -
    (cd "$src" && "$host_python" setup.py --name >/dev/null 2>"$dest/cythonize.log") \
        || { cat "$dest/cythonize.log" >&2; die "$arch $variant: cythonize failed"; }
    # Newer than everything they depend on, Cython's own .pxd files included,
    # so the emulated setup.py does not cythonize again (slowly).
    touch "$src"/kernels_pyx/*.c
    (cd "$src" && CC=$cc BNNBENCH_PORTABLE=$portable BNNBENCH_CFLAGS="$target_flags" \
        CFLAGS="-idirafter $sysroot/usr/include" PYTHONPATH="$wheels" \
        emulated_python setup.py -q build --build-base "$dest/tmp" \
            build_py --build-lib "$dest/lib" build_ext --build-lib "$dest/lib" \
        >"$dest/build.log" 2>&1) \
        || { tail -30 "$dest/build.log" >&2; die "$arch $variant: build failed (log: $dest/build.log)"; }
    grep '^bnnbench: building kernels' "$dest/build.log" >&2 || true
    echo "$key" > "$dest/lib/.build-key"
}

# check_path ARCH VARIANT: the build must report the architecture and code
# path it was made for, or a verify would prove the wrong thing.
check_path() {
    local arch=$1 variant=$2 want got
    want=$variant
    got=$(cd "$cache/$arch-$variant/lib" && emulated_python -c \
        "import platform, bnnbench; print(platform.machine(), bnnbench.BUILD['kernel_path'])")
    [ "$got" = "$arch $want" ] || die "$arch $variant build reports '$got', expected '$arch $want'"
}

verify() {
    [ $# -gt 0 ] || die "verify needs at least one ARCH (aarch64, armv7l)"
    local arch variant t0 t1 t2 summary=() log
    for arch in "$@"; do
        arch_vars "$arch"
        "$here/sysroot.sh" "$deb" "$sysroot"
        for variant in neon portable; do
            say "$arch $variant: building"
            t0=$(date +%s)
            build "$arch" "$variant"
            t1=$(date +%s)
            check_path "$arch" "$variant"
            say "$arch $variant: bnnbench verify under $qemu -cpu $cpu"
            log=$cache/$arch-$variant/verify.log
            # shellcheck disable=SC2086  # VERIFY_ARGS: words for bnnbench verify
            if ! (cd "$cache/$arch-$variant/lib" \
                    && emulated_python -m bnnbench verify --quiet ${VERIFY_ARGS:-}) \
                    >"$log" 2>&1; then
                cat "$log" >&2
                die "$arch $variant: bnnbench verify FAILED (kernels wrong on $arch, path $variant)"
            fi
            t2=$(date +%s)
            cat "$log" >&2
            summary+=("$(printf '%-8s path=%-9s exact  (build %3ss, verify %4ss)' \
                "$arch" "$variant" $((t1 - t0)) $((t2 - t1)))")
        done
    done
    echo "arm-verify: all kernels exact under emulation:"
    printf '  %s\n' "${summary[@]}"
}

sweep() {
    local arch=${1:?sweep needs ARCH} out=${2:?sweep needs OUTDIR}
    arch_vars "$arch"
    "$here/sysroot.sh" "$deb" "$sysroot"
    build "$arch" neon
    check_path "$arch" neon
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    say "$arch: bnnbench sweep --quick under $qemu -cpu $cpu (timings are the emulator's, not a Pi's)"
    (cd "$cache/$arch-neon/lib" && emulated_python -m bnnbench sweep --quick --quiet \
        --label "$(uname -n)-$qemu" --out "$out")
}

case ${1:-} in
    host-setup) host_setup ;;
    verify) shift; host_setup; verify "$@" ;;
    sweep) shift; host_setup; sweep "$@" ;;
    *) die "usage: arm.sh host-setup | verify ARCH... | sweep ARCH OUTDIR" ;;
esac
