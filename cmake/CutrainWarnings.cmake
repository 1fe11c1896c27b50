# Compiler settings shared by every cutrain target.
#
# Note [bit-identical backends]: every element-wise rule is one __host__ __device__ function
# compiled by g++ for the CPU loop and by nvcc for the kernel. For both to produce the same bits,
# neither compiler may fuse a*b+c on its own: rules write fmaf() where they want a fused
# multiply-add, host code builds with -ffp-contract=off and device code with --fmad=false.
# Division and sqrt stay IEEE-rounded on both sides (nvcc's default -prec-div/-prec-sqrt).
function(cutrain_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -ffp-contract=off -fno-math-errno>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-ffp-contract=off,-fno-math-errno --fmad=false
                               --expt-relaxed-constexpr>)
  if(CUTRAIN_NATIVE_CPU)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-march=native>
      $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-march=native>)
  endif()
endfunction()
