#pragma once
// Layers, losses and the Sequential model.

#include "cutrain/nn/conv.hpp"
#include "cutrain/nn/gradcheck.hpp"
#include "cutrain/nn/layer.hpp"
#include "cutrain/nn/layers.hpp"
#include "cutrain/nn/loss.hpp"
#include "cutrain/nn/residual.hpp"
#include "cutrain/nn/sequential.hpp"
