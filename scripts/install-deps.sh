#!/usr/bin/env bash
# Installs the Debian 12 packages Tessera builds, tests and runs with.
# Idempotent: asks apt only for what is missing, so a ready machine pays nothing.
set -euo pipefail

packages=(
    build-essential cmake pkg-config git
    openssl libssl-dev
    libp11-kit-dev softhsm2 opensc
    libcmocka-dev
    libjansson-dev libsqlite3-dev sqlite3 libpq-dev postgresql
    libevent-dev libcurl4-openssl-dev curl
    protobuf-c-compiler libprotobuf-c-dev
    mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev
    python3 python3-cryptography
    clang clang-format libclang-rt-14-dev
    procps
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
