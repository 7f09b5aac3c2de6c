#!/usr/bin/env bash
# Install everything the tests, the demo and the benchmarks need, on a fresh Debian 12 machine (as root).
# Idempotent: re-runs skip apt when every package is already installed and skip pip when pyproject.toml
# has not changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages ---------------------------------------------------------------------------------
# prometheus: its promtool tests the shipped alert rules (the service is never started: see policy-rc.d).
# xxhash: its xxh128sum checks a file against the manifest from the shell, as docs/load.md shows (a test runs it).
packages=(mariadb-server mariadb-client mydumper libmariadb-dev pkg-config ca-certificates time prometheus xxhash)
# mysqlclient ships no Linux wheels: building it needs a compiler and the Python headers.
if ! "$PY" -c 'import MySQLdb' >/dev/null 2>&1; then
    packages+=(build-essential python3-dev)
fi
if ! command -v "$PY" >/dev/null 2>&1 || ! "$PY" -m pip --version >/dev/null 2>&1; then
    packages+=(python3 python3-pip python3-venv)
fi
if [[ "${TIBACKUP_TEST_S3:-seaweedfs}" == "ceph" ]]; then
    packages+=(ceph-mon ceph-osd radosgw ceph-common)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        log "missing Debian packages (${missing[*]}) and not root: install them, then re-run"
        exit 1
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Without systemd, package scripts must not try to start mariadb/ceph/prometheus services: the tests
    # start their own throwaway servers. policy-rc.d exit 101 = "action forbidden".
    created_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        created_policy=1
    fi
    trap '[[ $created_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    log "Debian packages already installed"
fi
PY=${PYTHON:-python3}

# --- Python packages ---------------------------------------------------------------------------------
pip_args=()
stdlib=$("$PY" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
if [[ -e "$stdlib/EXTERNALLY-MANAGED" ]]; then
    # Debian's own python3 refuses system-wide pip installs (PEP 668); this machine is disposable.
    pip_args+=(--break-system-packages)
fi
stamp_dir="$ROOT/.run"
stamp="$stamp_dir/setup.stamp"
# Whatever pip builds from: the project metadata and the C row encoder (setup.py).
want="$(cat pyproject.toml setup.py src/tibackup/dump/_rowcodec.c | sha256sum | cut -d' ' -f1) $(command -v "$PY")"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$PY" -c 'import tibackup, MySQLdb, pytest_asyncio' 2>/dev/null \
    && command -v weed >/dev/null; then
    log "Python packages already installed (pyproject.toml unchanged)"
else
    log "pip install -e '.[dev,operator]'"
    "$PY" -m pip install -q "${pip_args[@]}" -e '.[dev,operator]'
    # kmock's pytest plugin imports pytest_asyncio; without it pytest cannot even start.
    if ! "$PY" -c 'import pytest_asyncio' 2>/dev/null; then
        "$PY" -m pip install -q "${pip_args[@]}" pytest-asyncio
    fi
    mkdir -p "$stamp_dir"
    printf '%s' "$want" >"$stamp"
fi
log "done"
