#!/usr/bin/env bash
# Builds llama.cpp (CPU only) as a reference peer for flas benchmarks and parity checks.
#
# The source comes from the npm registry only: node-llama-cpp (pinned by package.json and
# package-lock.json next to this script) ships llama.cpp's source tree as a git bundle,
# node_modules/node-llama-cpp/llama/gitRelease.bundle, tagged in llama/llama.cpp.info.json.
# We clone that bundle and build it as released (node-llama-cpp's own patches under
# llama/patches only touch its addon's "virtual model" loading and are not applied).
#
#   bash bench/peers/llamacpp.sh build   # install, clone, configure, build; prints the bin folder
#   bash bench/peers/llamacpp.sh bin     # prints the bin folder (fails if not built)
#
# Environment:
#   FLAS_PEERS_DIR   where sources and builds go (default /var/tmp/flas-peers; outside the repo)
#   FLAS_PEERS_JOBS  parallel compile jobs (default: nproc)
#   FLAS_PEERS_SERVER=0  skip llama-server and llama-cli (they need the server code, the
#                        slowest part of the build); llama-completion does plain completion.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
peers_dir="${FLAS_PEERS_DIR:-/var/tmp/flas-peers}"
jobs="${FLAS_PEERS_JOBS:-$(nproc)}"
with_server="${FLAS_PEERS_SERVER:-1}"

log() { echo "[llamacpp] $*" >&2; }
die() { echo "[llamacpp] error: $*" >&2; exit 1; }

for tool in node npm git cmake c++; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH"
done
[ -f "$here/package-lock.json" ] || die "missing $here/package-lock.json"

# The pinned node-llama-cpp version, read from the lock file (no network needed).
nlc_version="$(node -p 'require(process.argv[1]).packages["node_modules/node-llama-cpp"].version' \
  "$here/package-lock.json")" || die "cannot read node-llama-cpp's version from package-lock.json"
root="$peers_dir/llama.cpp-nlc$nlc_version"
src="$root/src"
build="$root/build"
bin="$build/bin"

targets=(llama-completion llama-simple llama-bench llama-cvector-generator llama-tokenize)
[ "$with_server" = 1 ] && targets+=(llama-cli llama-server)

# CPU-only Release build; everything that could reach the network is off.
cmake_flags=(
  -DCMAKE_BUILD_TYPE=Release
  -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_CCACHE=OFF
  -DBUILD_SHARED_LIBS=OFF          # self-contained binaries in bin/
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_APP=OFF
  -DLLAMA_BUILD_SERVER="$([ "$with_server" = 1 ] && echo ON || echo OFF)"
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF   # no web UI download (server serves no UI)
)

# 1. node_modules: npm ci unless the pinned version is already installed.
install_package() {
  local installed
  installed="$(node -p 'require(process.argv[1]).version' \
    "$here/node_modules/node-llama-cpp/package.json" 2>/dev/null || true)"
  if [ "$installed" != "$nlc_version" ]; then
    log "npm ci node-llama-cpp@$nlc_version into $here/node_modules (scripts and prebuilt binaries off)"
    (cd "$here" && npm ci --ignore-scripts --omit=optional --no-audit --no-fund >&2) \
      || die "npm ci failed in $here"
  fi
  bundle="$here/node_modules/node-llama-cpp/llama/gitRelease.bundle"
  [ -f "$bundle" ] || die "node-llama-cpp@$nlc_version has no llama/gitRelease.bundle (this version does not ship llama.cpp's source)"
  tag="$(node -p 'require(process.argv[1]).tag' \
    "$here/node_modules/node-llama-cpp/llama/llama.cpp.info.json")" || die "cannot read llama.cpp.info.json"
  commit="$(git bundle list-heads "$bundle" | awk '$2 == "HEAD" { print $1 }')"
  [ -n "$commit" ] || die "cannot read the HEAD of $bundle"
}

# 2. Source tree: a clone of the bundle, re-cloned when the bundle's commit changes.
checkout_source() {
  if [ "$(git -C "$src" rev-parse HEAD 2>/dev/null || true)" != "$commit" ]; then
    log "cloning llama.cpp $tag ($commit) from the bundle into $src"
    rm -rf "$src"
    mkdir -p "$root"
    git -c advice.detachedHead=false clone --quiet "$bundle" "$src" || die "git clone of $bundle failed"
  fi
}

# 3. Build, skipped when the stamp (source + flags + targets) matches and every binary exists.
build_all() {
  local stamp="nlc=$nlc_version tag=$tag commit=$commit flags=${cmake_flags[*]} targets=${targets[*]}"
  local missing=0 t
  for t in "${targets[@]}"; do [ -x "$bin/$t" ] || missing=1; done
  if [ "$missing" = 0 ] && [ "$(cat "$build/flas-stamp" 2>/dev/null || true)" = "$stamp" ]; then
    log "up to date: llama.cpp $tag ($commit) in $bin"
    return
  fi
  rm -f "$build/flas-stamp"
  log "configuring llama.cpp $tag in $build"
  cmake -S "$src" -B "$build" "${cmake_flags[@]}" >"$root/configure.log" 2>&1 \
    || { tail -n 30 "$root/configure.log" >&2; die "cmake configure failed (full log: $root/configure.log)"; }
  log "building ${targets[*]} with -j$jobs (log: $root/build.log; this takes a while)"
  local t0=$SECONDS
  cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$root/build.log" 2>&1 \
    || { grep -m 20 -E 'error|Error' "$root/build.log" >&2 || tail -n 30 "$root/build.log" >&2
         die "cmake build failed (full log: $root/build.log)"; }
  for t in "${targets[@]}"; do [ -x "$bin/$t" ] || die "build finished but $bin/$t is missing"; done
  echo "$stamp" >"$build/flas-stamp"
  log "built in $((SECONDS - t0)) s: ${targets[*]}"
}

case "${1:-}" in
  build)
    install_package
    checkout_source
    build_all
    echo "$bin"
    ;;
  bin)
    [ -f "$build/flas-stamp" ] || die "llama.cpp is not built; run: bash $0 build"
    echo "$bin"
    ;;
  *)
    echo "usage: $0 build|bin" >&2
    exit 2
    ;;
esac
