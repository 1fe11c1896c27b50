#pragma once
// Switches read from the environment (CUTRAIN_CUDNN, CUTRAIN_CUBLASLT): one parser, so that each
// takes the same values and a typo is an error, not the default in disguise.

namespace cutrain::detail {

/// An on/off switch: `fallback` when `name` is unset, true for "1", false for "0"; anything else
/// (CUTRAIN_CUDNN=off, =yes, an empty value) throws cutrain::Error naming the variable, its value
/// and what 0 and 1 select (`when_0`, `when_1`).
bool env_switch(const char* name, bool fallback, const char* when_0, const char* when_1);

}  // namespace cutrain::detail
