#!/usr/bin/env bash
# Creates the project's virtual environment, installing Debian packages first when the
# machine lacks them (a fresh Debian 12 has python3 but not always python3-venv).
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}

apt_updated=0
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "bootstrap: need root to install Debian packages: $*" >&2
        exit 1
    fi
    if [ "$apt_updated" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

here=$(cd "$(dirname "$0")" && pwd)
missing=()
while read -r pkg; do
    pkg=${pkg%%#*}; pkg=${pkg//[[:space:]]/}
    [ -n "$pkg" ] || continue
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done < "$here/debian-packages.txt"
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    apt_install "${missing[@]}"
fi

# The web UI's front end is built with node and npm (scripts/build-ui.sh). A machine may already have them
# from elsewhere (e.g. a newer node that bundles npm): only install Debian's when either is missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: installing Debian packages: nodejs npm"
    apt_install nodejs npm
fi

if ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    apt_install python3 python3-venv python3-pip
    python=python3
fi
if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        rm -rf "$venv"
        apt_install python3-venv
        "$python" -m venv "$venv"
    fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
