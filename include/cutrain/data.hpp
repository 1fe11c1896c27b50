#pragma once
// Datasets, readers, the streaming loader and on-device augmentation.

#include "cutrain/data/augment.hpp"
#include "cutrain/data/dataset.hpp"
#include "cutrain/data/loader.hpp"
#include "cutrain/data/npy.hpp"
#include "cutrain/data/readers.hpp"
