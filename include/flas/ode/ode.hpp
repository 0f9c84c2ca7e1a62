#pragma once
// flas::ode — steppers, integration, observers and gradient strategies. Include this, plus the algebra
// header of your state type (algebra_tensor.hpp, algebra_eigen.hpp, algebra_xtensor.hpp).
#include "flas/ode/algebra.hpp"
#include "flas/ode/algebra_ops.hpp"
#include "flas/ode/butcher_tableau.hpp"
#include "flas/ode/field_adapters.hpp"
#include "flas/ode/field_concepts.hpp"
#include "flas/ode/observers.hpp"
#include "flas/ode/schedule.hpp"
#include "flas/ode/solve.hpp"
#include "flas/ode/time_axis.hpp"
