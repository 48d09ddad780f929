#!/bin/sh
# tools/asv-html/need.sh COMMAND DEBIAN-PACKAGE
# Installs DEBIAN-PACKAGE with apt-get (as root, or through sudo) when COMMAND
# is not on PATH; says so in one line and exits 1 when it cannot.
#   need.sh npm npm            for `make asv-html-assets` (npm ci)
#   need.sh chromium chromium  for the headless-browser test of asv's HTML
set -eu
cmd=$1 pkg=$2
command -v "$cmd" >/dev/null 2>&1 && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$sudo" ] && ! sudo -n true 2>/dev/null; }; then
    echo "need.sh: no $cmd, and no apt-get to run as root: install $pkg by hand" >&2
    exit 1
fi
echo "need.sh: installing $pkg (apt-get) for $cmd"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
command -v "$cmd" >/dev/null 2>&1 || { echo "need.sh: $pkg installed no $cmd" >&2; exit 1; }
