// doctest's main for the CUDA tests, behind a device check: with no usable CUDA device (no GPU, no
// driver) the program prints why and exits with 77, which ctest reports as "Skipped" (the tests set
// SKIP_RETURN_CODE 77). With a device it prints which one, then runs every test case.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "flas/backends/cuda.hpp"

int main(int argc, char** argv) {
  if (!flas::CudaBackend::available()) {
    std::printf("no usable CUDA device (cudaGetDeviceCount failed or found none): skipping the CUDA tests\n");
    return 77;
  }
  std::printf("CUDA device: %s\n", flas::CudaBackend::device_description().c_str());
  doctest::Context context(argc, argv);
  return context.run();
}
