#pragma once
// All optimizers and learning-rate schedules.

#include "cutrain/optim/adagrad.hpp"
#include "cutrain/optim/adam.hpp"
#include "cutrain/optim/lbfgs.hpp"
#include "cutrain/optim/newton.hpp"
#include "cutrain/optim/newton_cg.hpp"
#include "cutrain/optim/optimizer.hpp"
#include "cutrain/optim/rmsprop.hpp"
#include "cutrain/optim/schedule.hpp"
#include "cutrain/optim/sgd.hpp"
