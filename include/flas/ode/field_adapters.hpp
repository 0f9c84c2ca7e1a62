#pragma once
// Adapters that turn plain callables into VelocityFields, so that a user's lambda needs no context or
// row-time plumbing:
//   make_field([](const S& h, double t, S& v) {...})           one time for all rows
//   make_field([](const S& h, RowTimes t, S& v) {...})         one time per row
//   make_field([](const S& h, RowTimes t, const EvalContext&, S& v) {...})
// A scalar-time callable under per-row time (rows at different times) is refused with a flas::Error.
#include <utility>

#include "flas/ode/field_concepts.hpp"

namespace flas::ode {

template <class Fn>
class FunctionField {
 public:
  explicit FunctionField(Fn fn) : fn_(std::move(fn)) {}

  template <class S>
  void operator()(const S& h, RowTimes t, const EvalContext& ctx, S& v) {
    if constexpr (requires { fn_(h, t, ctx, v); }) {
      fn_(h, t, ctx, v);
    } else if constexpr (requires { fn_(h, t, v); }) {
      fn_(h, t, v);
    } else {
      static_assert(requires { fn_(h, 0.0, v); },
                    "make_field: the callable must be fn(h, t, v) with t a double or RowTimes, or fn(h, t, ctx, v)");
      fn_(h, shared_time(t), v);
    }
  }

  Fn& function() { return fn_; }

 private:
  static double shared_time(RowTimes t) {
    for (std::size_t r = 1; r < t.size(); ++r)
      FLAS_CHECK(t[r] == t[0], "a field taking one time was given rows at different times (row 0 at ", t[0],
                 ", row ", r, " at ", t[r], "): give it a RowTimes parameter");
    return t[0];
  }
  Fn fn_;
};

template <class Fn>
FunctionField<Fn> make_field(Fn fn) {
  return FunctionField<Fn>(std::move(fn));
}

}  // namespace flas::ode
