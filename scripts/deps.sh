#!/usr/bin/env bash
# Installs the Debian 12 packages flas builds with (only when one is missing: no network otherwise).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libeigen3-dev xtensor-dev xtl-dev libdnnl-dev doctest-dev
      libbenchmark-dev libsentencepiece-dev nlohmann-json3-dev libcli11-dev
      ocl-icd-opencl-dev libcpp-httplib-dev libssl-dev gnuplot-nox nodejs chromium
      libtrilinos-kokkos-dev libtrilinos-kokkos-kernels-dev libblas-dev liblapack-dev libopenblas0-pthread
      libopenmpi-dev openmpi-bin $(command -v npm >/dev/null || echo npm))
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "[deps] installing: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
