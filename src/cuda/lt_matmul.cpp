// Note [bias in the GEMM epilogue] (lt_matmul.hpp).
#include "src/cuda/lt_matmul.hpp"

#include <cstdlib>

#include "src/core/environment.hpp"
#include "src/cuda/check.hpp"
#include "src/cuda/runtime.hpp"

namespace cutrain::detail {

namespace {

// Enough for every fp32 algorithm cuBLASLt offers at the layer shapes cutrain trains (its split-K
// variants keep their partial tiles here); allocated once per model.
constexpr std::size_t kWorkspaceBytes = std::size_t{4} << 20;

// The largest power of two (at most 256, cuBLASLt's default expectation) dividing the address.
std::uint32_t alignment_of(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t align = 256;
  while (align > 1 && a % align != 0) align /= 2;
  return align;
}

bool env_enabled() {
  return cutrain::detail::env_switch("CUTRAIN_CUBLASLT", true,
                                     "a Linear's bias in a kernel of its own",
                                     "cuBLASLt's fused bias and ReLU epilogues");
}

template <class T, cublasStatus_t (*Destroy)(T)>
struct LtDeleter {
  void operator()(T p) const {
    if (p != nullptr) Destroy(p);
  }
};
using DescPtr = std::unique_ptr<cublasLtMatmulDescOpaque_t,
                                LtDeleter<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>>;
using LayoutPtr = std::unique_ptr<cublasLtMatrixLayoutOpaque_t,
                                  LtDeleter<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>>;
using PrefPtr =
    std::unique_ptr<cublasLtMatmulPreferenceOpaque_t,
                    LtDeleter<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>>;

}  // namespace

struct LtMatmul::Plan {
  bool supported = false;
  DescPtr desc;
  LayoutPtr a, b, d;  // cuBLASLt's A, B and C = D
  cublasLtMatmulAlgo_t algo{};
};

LtMatmul::LtMatmul(int ordinal) : enabled_(env_enabled()) {
  require_usable(Device::cuda(ordinal));
  cuda::DeviceGuard guard(ordinal);
  CUTRAIN_CUBLAS_CHECK(cublasLtCreate(&handle_));
  workspace_ = Buffer(kWorkspaceBytes, Device::cuda(ordinal));
  workspace_.zero();  // once: compute-sanitizer's initcheck runs over the layer tests
}

void LtMatmul::set_precision(Precision precision) {
  if (precision == precision_) return;
  precision_ = precision;
  plans_.clear();  // planned with the other compute type
}

LtMatmul::~LtMatmul() {
  plans_.clear();  // descriptors before the handle
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

// Note [row-major GEMM on cuBLAS], for cuBLASLt: row-major C = op(A) op(B) is column-major
// C^T = op(B)^T op(A)^T, so cuBLASLt's A is our B and its B our A, its m and n our n and m. The
// bias runs along cuBLASLt's rows of D - our columns - which is a Linear's bias per output feature.
// A failure to plan is no error: the case is marked unsupported and runs in two passes.
LtMatmul::Plan* LtMatmul::plan_for(const Key& key, const float* bias) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();
  const bool trans_a = std::get<0>(key), trans_b = std::get<1>(key);
  const auto m = static_cast<std::uint64_t>(std::get<2>(key));
  const auto n = static_cast<std::uint64_t>(std::get<3>(key));
  const auto k = static_cast<std::uint64_t>(std::get<4>(key));
  const std::int64_t lda = std::get<5>(key), ldb = std::get<6>(key), ldc = std::get<7>(key);
  // cuBLASLt's A, B, C and D are our B, A, C and C (the bias's alignment the heuristic reads
  // from the pointer itself).
  const std::uint32_t aligns[4] = {std::get<9>(key), std::get<8>(key), std::get<10>(key),
                                   std::get<10>(key)};
  auto plan = std::make_unique<Plan>();
  auto make = [&]() -> cublasStatus_t {
    cublasLtMatmulDesc_t desc = nullptr;
    const cublasComputeType_t compute =
        precision_ == Precision::kTf32   ? CUBLAS_COMPUTE_32F_FAST_TF32
        : precision_ == Precision::kBf16 ? CUBLAS_COMPUTE_32F_FAST_16BF
        : precision_ == Precision::kFp16 ? CUBLAS_COMPUTE_32F_FAST_16F
                                         : CUBLAS_COMPUTE_32F;
    cublasStatus_t s = cublasLtMatmulDescCreate(&desc, compute, CUDA_R_32F);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    plan->desc.reset(desc);
    auto set = [&](cublasLtMatmulDescAttributes_t attribute, const auto& value) {
      return s = cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value));
    };
    const cublasOperation_t op_a = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasLtEpilogue_t epilogue =
        std::get<12>(key) ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    const void* bias_ptr = bias;
    if (set(CUBLASLT_MATMUL_DESC_TRANSA, op_a) || set(CUBLASLT_MATMUL_DESC_TRANSB, op_b) ||
        set(CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue) ||
        set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias_ptr))
      return s;
    // Stored shapes, column-major: our row-major X[r, c] with row length ld is X^T[c, r], ld.
    auto layout = [&](LayoutPtr& out, std::uint64_t rows, std::uint64_t cols, std::int64_t ld) {
      cublasLtMatrixLayout_t l = nullptr;
      s = cublasLtMatrixLayoutCreate(&l, CUDA_R_32F, rows, cols, ld);
      out.reset(l);
      return s;
    };
    if ((trans_b ? layout(plan->a, k, n, ldb) : layout(plan->a, n, k, ldb)) ||
        (trans_a ? layout(plan->b, m, k, lda) : layout(plan->b, k, m, lda)) ||
        layout(plan->d, n, m, ldc))
      return s;
    cublasLtMatmulPreference_t raw_pref = nullptr;
    if ((s = cublasLtMatmulPreferenceCreate(&raw_pref)) != CUBLAS_STATUS_SUCCESS) return s;
    const PrefPtr pref(raw_pref);
    auto prefer = [&](cublasLtMatmulPreferenceAttributes_t attribute, const auto& value) {
      return s = cublasLtMatmulPreferenceSetAttribute(raw_pref, attribute, &value, sizeof(value));
    };
    const std::size_t ws = workspace_.bytes();
    if (prefer(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, ws) ||
        prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, aligns[0]) ||
        prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, aligns[1]) ||
        prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, aligns[2]) ||
        prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, aligns[3]))
      return s;
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    s = cublasLtMatmulAlgoGetHeuristic(handle_, desc, plan->a.get(), plan->b.get(), plan->d.get(),
                                       plan->d.get(), raw_pref, 1, &result, &found);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (found < 1 || result.state != CUBLAS_STATUS_SUCCESS) return CUBLAS_STATUS_NOT_SUPPORTED;
    plan->algo = result.algo;
    return CUBLAS_STATUS_SUCCESS;
  };
  plan->supported = make() == CUBLAS_STATUS_SUCCESS;
  if (!plan->supported) *plan = Plan{};  // nothing of a failed plan is kept but the verdict
  return plans_.emplace(key, std::move(plan)).first->second.get();
}

bool LtMatmul::gemm_bias(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                         const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
                         float* c, std::int64_t ldc, const float* bias, NativeStream stream,
                         bool relu) {
  if (!enabled_) return false;
  // As PyTorch's addmm: a one-row or one-column B gets no heuristic from cuBLASLt (it reports
  // an invalid value), and a bias the epilogue may read in vectors must be 16-byte aligned.
  if (m < 1 || n < 2 || k < 2 || alignment_of(bias) < 16) {
    ++fallbacks_;
    return false;
  }
  const Key key{trans_a,
                trans_b,
                m,
                n,
                k,
                lda,
                ldb,
                ldc,
                alignment_of(a),
                alignment_of(b),
                alignment_of(c),
                alignment_of(bias),
                relu};
  Plan* plan = plan_for(key, bias);
  if (!plan->supported) {
    ++fallbacks_;
    return false;
  }
  const void* bias_ptr = bias;
  CUTRAIN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
      plan->desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr, sizeof(bias_ptr)));
  const float alpha = 1.0F, beta = 0.0F;
  CUTRAIN_CUBLAS_CHECK(cublasLtMatmul(handle_, plan->desc.get(), &alpha, b, plan->a.get(), a,
                                      plan->b.get(), &beta, c, plan->d.get(), c, plan->d.get(),
                                      &plan->algo, workspace_.data(), workspace_.bytes(), stream));
  ++fused_;
  return true;
}

}  // namespace cutrain::detail
