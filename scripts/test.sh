#!/usr/bin/env bash
# make test: formatting, then every test on a normal build and on an ASan+UBSan build,
# then a short run of each libFuzzer target when clang is there.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

step() { printf '\n== %s\n' "$*"; }

step "format (clang-format against .clang-format)"
files=$( (git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null ||
    find src include tests bench -name '*.[ch]') | while read -r f; do [ -f "$f" ] && echo "$f"; done)
if ! echo "$files" | xargs clang-format --dry-run -Werror; then
    echo "format: files above differ from .clang-format; run 'make format'" >&2
    exit 1
fi

build_and_test() {
    local dir=$1; shift
    step "build $dir ($*)"
    cmake -S . -B "$dir" -DTS_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
    step "ctest $dir"
    ctest --test-dir "$dir" -L 'unit|integration' --output-on-failure -j "$jobs"
}

build_and_test build -DCMAKE_BUILD_TYPE=RelWithDebInfo
build_and_test build-asan -DCMAKE_BUILD_TYPE=Debug -DTS_SANITIZE=ON

if command -v clang >/dev/null; then
    step "fuzz (libFuzzer, short runs)"
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DTS_FUZZ=ON \
        -DTS_FUZZ_SECONDS="${TS_FUZZ_SECONDS:-20}" >/dev/null
    cmake --build build-fuzz -j "$jobs"
    ctest --test-dir build-fuzz -L fuzz --output-on-failure -j "$jobs"
else
    echo "fuzz: clang is not installed, fuzz targets skipped"
fi
