#pragma once
// Runs a stretch of code with a backend's reduced-precision matmul mode on, where the backend has one
// (CpuBackend::Precision::bf16_activations: activations rounded to bf16 for bf16 weights in prompt-
// sized matmuls), and restores the previous mode after. Generic code (the trainer's frozen forward)
// asks for it without knowing the backend; backends without such a mode ignore it.
//   { Bf16ActivationsScope<B> fast(config.bf16_frozen_forward);  base_prefix_forward(...); }
// The mode is the backend's global setting: the scope is for single-threaded callers of the op set.
#include <concepts>

namespace flas {

template <class B>
concept HasBf16ActivationMode = requires {
  B::set_precision(B::Precision::bf16_activations);
  { B::precision() } -> std::same_as<typename B::Precision>;
};

template <class B>
class Bf16ActivationsScope {
 public:
  explicit Bf16ActivationsScope(bool on) {
    if constexpr (HasBf16ActivationMode<B>) {
      if (on) {
        before_ = B::precision();
        B::set_precision(B::Precision::bf16_activations);
        active_ = true;
      }
    }
  }
  ~Bf16ActivationsScope() {
    if constexpr (HasBf16ActivationMode<B>) {
      if (active_) B::set_precision(before_);
    }
  }
  Bf16ActivationsScope(const Bf16ActivationsScope&) = delete;
  Bf16ActivationsScope& operator=(const Bf16ActivationsScope&) = delete;

  // Whether this backend has the mode at all (false: the scope is a no-op).
  static constexpr bool available() { return HasBf16ActivationMode<B>; }

 private:
  struct NoPrecision {};
  using Saved = decltype([] {
    if constexpr (HasBf16ActivationMode<B>) return typename B::Precision{};
    else return NoPrecision{};
  }());
  Saved before_{};
  bool active_ = false;
};

}  // namespace flas
