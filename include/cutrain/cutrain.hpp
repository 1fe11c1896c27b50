#pragma once
// The whole public API of cutrain.

#include "cutrain/arena.hpp"
#include "cutrain/buffer.hpp"
#include "cutrain/clip.hpp"
#include "cutrain/data.hpp"
#include "cutrain/device.hpp"
#include "cutrain/error.hpp"
#include "cutrain/hd.hpp"
#include "cutrain/init.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/ops.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/precision.hpp"
#include "cutrain/stream.hpp"
#include "cutrain/train.hpp"
#include "cutrain/version.hpp"
