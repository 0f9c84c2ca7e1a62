#!/usr/bin/env bash
# Configures and builds flas in ./build (Release, native ISA). Extra arguments go to `cmake --build`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DFLAS_NATIVE=ON >/dev/null
cmake --build build -j"$(nproc)" "$@"
