#pragma once
// Datasets, readers and the streaming loader.

#include "cutrain/data/dataset.hpp"
#include "cutrain/data/loader.hpp"
#include "cutrain/data/npy.hpp"
#include "cutrain/data/readers.hpp"
