#pragma once
// Note [Philox on the host]: the numbers cuRAND's Philox4x32-10 generator produces, computed on
// the CPU in parallel, at any position, with no generator state.
//
// cuRAND's host generator (curandCreateGeneratorHost) fills an array on one thread, ~10 ns a
// number, and repositioning it costs 8.5-9 ms; the CPU backend's dropout masks spent ~7% of an
// epoch there. But a Philox stream is a pure function of (seed, position): number p of the
// generator is lane p % 4 of curand_Philox4x32_10(counter, key) for block b = p / 4, with
// counter = {b / 65536 (64 bits over x, y), b % 65536, 0} - the generator interleaves 65536
// subsequences block by block - and key = the seed's two halves; its float is
// _curand_uniform(bits) = bits * 2^-32 + 2^-33, in (0, 1]. Both functions are cuRAND's own
// device-API code, which its headers let a host compiler build (QUALIFIERS is overridable and
// mulhilo32 has a host branch), so nothing of the algorithm is restated here. The layout is
// cuRAND's choice, not documented: tests/init/curand_generator_test.cpp holds this function to
// curandGenerateUniform bit for bit (unaligned positions, odd lengths, positions past 2^34), so
// a cuRAND that changed it would fail there, not silently change the masks.

#include <cstddef>
#include <cstdint>

namespace cutrain::detail {

// out[i] = the uniform float at position `position + i` of the Philox stream of `seed`, exactly
// as curandGenerateUniform with that seed and offset writes it. OpenMP-parallel.
void philox_uniform_host(std::uint64_t seed, std::uint64_t position, float* out, std::size_t n);

// out[i] = the normal at position `position + i`, as curandGenerateNormal(mean, stddev) with that
// seed and offset writes it: cuRAND's Box-Muller (_curand_box_muller, its host branch: glibc's
// logf, sinf, cosf, as cuRAND's host generator calls them) on the pairs of numbers (2 m, 2 m + 1),
// then mean + stddev z. `position` and n even (the pairs are the generator's; an odd offset
// pairs differently - CurandGenerator leaves that case to cuRAND's host generator).
void philox_normal_host(std::uint64_t seed, std::uint64_t position, float mean, float stddev,
                        float* out, std::size_t n);

}  // namespace cutrain::detail
