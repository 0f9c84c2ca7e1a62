#!/usr/bin/env bash
# The whole test suite: deps, build, install + a consumer project built against the installed
# package, then every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
rm -rf build/_install build/consumer
cmake --install build --prefix build/_install >/dev/null
cmake -S examples/consumer -B build/consumer -DCMAKE_PREFIX_PATH="$PWD/build/_install" >/dev/null
cmake --build build/consumer -j"$(nproc)" >/dev/null
./build/consumer/flas_consumer models/tiny-gemma2-chat
cd build && ctest --output-on-failure -j"$(nproc)" --timeout 900
