// Exact Newton on a strictly convex problem: L2-regularized logistic regression separating
// T-shirts from shirts in Fashion-MNIST (400 images). Prints the gradient norm per iteration:
// it falls slowly at first, then squares each step (quadratic convergence) down to ~1e-13.
//   build/bin/logistic_newton [fashion-mnist dir]
#include <cutrain/cutrain.hpp>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  using namespace cutrain;
  const std::string dir = argc > 1 ? argv[1] : data::kFashionMnistDir;
  data::Dataset d;
  try {
    d = data::load_fashion_mnist(dir, "train");
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n(apt-get install dataset-fashion-mnist)\n", e.what());
    return 77;  // "skipped" for CTest
  }
  std::vector<float> x;
  std::vector<std::int32_t> y;
  int tshirts = 0, shirts = 0;
  for (std::int64_t r = 0; r < d.rows; ++r) {
    const std::int32_t c = d.labels[static_cast<std::size_t>(r)];
    if ((c == 0 && tshirts++ < 200) || (c == 6 && shirts++ < 200)) {
      for (std::int64_t j = 0; j < d.features; ++j)
        x.push_back(d.x[static_cast<std::size_t>(r * d.features + j)] / 255.0F);
      y.push_back(c == 6 ? 1 : 0);
    }
  }
  const optim::LogisticRegression problem(x, y, d.features, /*l2=*/1e-3);
  std::vector<double> theta(static_cast<std::size_t>(problem.size()), 0.0);
  const optim::NewtonResult r =
      optim::Newton({.tolerance_grad = 1e-10}).minimize(problem.objective(), theta);
  for (std::size_t k = 0; k < r.grad_norms.size(); ++k)
    std::printf("iteration %2zu  |g| = %.3e\n", k, r.grad_norms[k]);
  std::printf("loss %.12f after %d iterations, %d evaluations (%s)\n", r.loss, r.iterations,
              r.evaluations, r.converged ? "converged" : "not converged");
  return r.converged ? 0 : 1;
}
