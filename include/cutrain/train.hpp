#pragma once
// The trainer, inference without it, checkpoints and exports.

#include "cutrain/io/safetensors.hpp"
#include "cutrain/train/checkpoint.hpp"
#include "cutrain/train/confusion.hpp"
#include "cutrain/train/data_spec.hpp"
#include "cutrain/train/inference.hpp"
#include "cutrain/train/lr_finder.hpp"
#include "cutrain/train/onnx.hpp"
#include "cutrain/train/regression_metrics.hpp"
#include "cutrain/train/roc_auc.hpp"
#include "cutrain/train/trainer.hpp"
