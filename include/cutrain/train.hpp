#pragma once
// The trainer and checkpoints.

#include "cutrain/io/safetensors.hpp"
#include "cutrain/train/checkpoint.hpp"
#include "cutrain/train/confusion.hpp"
#include "cutrain/train/data_spec.hpp"
#include "cutrain/train/lr_finder.hpp"
#include "cutrain/train/regression_metrics.hpp"
#include "cutrain/train/trainer.hpp"
