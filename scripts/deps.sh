#!/usr/bin/env bash
# Installs the Debian 12 packages flas builds with (only when one is missing: no network otherwise).
set -euo pipefail
# `--demo`: only what the demo's program needs (the CLI on the CPU backend: no test, benchmark, browser,
# Kokkos or MPI packages); the default installs everything the build and the tests use.
core=(build-essential cmake pkg-config libeigen3-dev xtensor-dev xtl-dev libdnnl-dev ocl-icd-opencl-dev
      libsentencepiece-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libssl-dev)
if [ "${1:-}" = --demo ]; then
  pkgs=("${core[@]}")
else
  pkgs=("${core[@]}" doctest-dev libbenchmark-dev gnuplot-nox nodejs chromium
        libtrilinos-kokkos-dev libtrilinos-kokkos-kernels-dev libblas-dev liblapack-dev libopenblas0-pthread
        libopenmpi-dev openmpi-bin $(command -v npm >/dev/null || echo npm))
fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "[deps] installing: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
