// Training BatchNorm fused with the activation that follows it, for MindSpore Custom(func_type="aot")
// on the CPU: batch statistics, normalization, affine and activation in one pass forward (the
// statistics come from a per-plane two-pass over data that is still in cache), and the backward in
// two passes.
//
// Entry points (float32; x is NCHW; meta = [act, eps], act: 0 none, 1 ReLU, 2 swish):
//   BatchNormActForward(meta, x, gamma, beta) -> y, mean, var
//       y = act((x - mean) / sqrt(var + eps) * gamma + beta), mean and biased var per channel
//   BatchNormActBackward(meta, x, gamma, beta, mean, var, dy) -> dx, dgamma, dbeta
// The moving statistics are left to the caller. They return 1 for unsupported ranks or dtypes and 2
// for inconsistent shapes or meta.

#include "common.h"

namespace mixnet {
namespace {

struct Norm {
  int64_t n, c, p;  // batch, channels, positions per plane
  int act;
  float eps;
};

bool make_norm(const float *meta, int64_t meta_len, int *ndims, int64_t **shapes, Norm *b) {
  if (meta_len != 2 || ndims[1] != 4 || ndims[2] != 1 || ndims[3] != 1) return false;
  b->act = static_cast<int>(meta[0]);
  b->eps = meta[1];
  b->n = shapes[1][0];
  b->c = shapes[1][1];
  b->p = shapes[1][2] * shapes[1][3];
  return b->act >= kNone && b->act <= kSwish && shapes[2][0] == b->c && shapes[3][0] == b->c && b->n * b->p > 0;
}

// Planes per work item: about 16k floats.
inline int64_t grain(int64_t p) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, p)); }

// y = act(x * a + b) over a run.
inline void normalize_run(int act, const float *x, float a, float b, int64_t n, float *y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * a + b;
  activate_run(act, y, n);
}

// g = dy * act'(z) over a run, z = x * a + b (each loop vectorizes).
inline void activation_grad_run(int act, const float *x, const float *dy, float a, float b, int64_t n, float *g) {
  if (act == kNone) {
    copy_row(dy, n, g);
    return;
  }
  for (int64_t i = 0; i < n; ++i) g[i] = x[i] * a + b;
  if (act == kRelu) {
    for (int64_t i = 0; i < n; ++i) g[i] = g[i] > 0.f ? dy[i] : 0.f;
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float z = g[i], s = 1.f / (1.f + fast_exp(-z));
    g[i] = dy[i] * (s + z * s * (1.f - s));
  }
}

}  // namespace
}  // namespace mixnet

extern "C" {

int BatchNormActForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                        void *extra) {
  (void)stream;
  (void)extra;
  using mixnet::Norm;
  if (nparam != 7 || ndims[0] != 1 || !mixnet::all_float32(nparam, dtypes)) return 1;
  Norm b;
  if (!mixnet::make_norm(static_cast<const float *>(params[0]), shapes[0][0], ndims, shapes, &b)) return 2;
  const float *x = static_cast<const float *>(params[1]), *gamma = static_cast<const float *>(params[2]);
  const float *beta = static_cast<const float *>(params[3]);
  float *y = static_cast<float *>(params[4]), *mean = static_cast<float *>(params[5]);
  float *var = static_cast<float *>(params[6]);
  // Per plane: mean and sum of squared deviations (exact two-pass while the plane is in cache).
  std::vector<double> plane_mean(b.n * b.c), plane_m2(b.n * b.c);
  mixnet::parallel_for(b.n * b.c, mixnet::grain(b.p), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const float *xi = x + i * b.p;
      const float m = mixnet::sum_n(xi, b.p) / static_cast<float>(b.p);
      mixnet::v16 acc = {};
      int64_t j = 0;
      for (; j + mixnet::kLanes <= b.p; j += mixnet::kLanes) {
        const mixnet::v16 d = mixnet::load(xi + j) - mixnet::splat(m);
        acc += d * d;
      }
      float m2 = 0.f;
      for (int64_t l = 0; l < mixnet::kLanes; ++l) m2 += acc[l];
      for (; j < b.p; ++j) m2 += (xi[j] - m) * (xi[j] - m);
      plane_mean[i] = m;
      plane_m2[i] = m2;
    }
  });
  // Per channel: combine the planes (equal sizes), then fold into y = x * a + shift.
  std::vector<float> a(b.c), shift(b.c);
  for (int64_t ch = 0; ch < b.c; ++ch) {
    double s = 0.0;
    for (int64_t img = 0; img < b.n; ++img) s += plane_mean[img * b.c + ch];
    const double m = s / static_cast<double>(b.n);
    double m2 = 0.0;
    for (int64_t img = 0; img < b.n; ++img) {
      const double d = plane_mean[img * b.c + ch] - m;
      m2 += plane_m2[img * b.c + ch] + d * d * static_cast<double>(b.p);
    }
    mean[ch] = static_cast<float>(m);
    var[ch] = static_cast<float>(m2 / static_cast<double>(b.n * b.p));
    const float rstd = 1.f / std::sqrt(var[ch] + b.eps);
    a[ch] = gamma[ch] * rstd;
    shift[ch] = beta[ch] - mean[ch] * a[ch];
  }
  mixnet::parallel_for(b.n * b.c, mixnet::grain(b.p), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t ch = i % b.c;
      mixnet::normalize_run(b.act, x + i * b.p, a[ch], shift[ch], b.p, y + i * b.p);
    }
  });
  return 0;
}

int BatchNormActBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                         void *extra) {
  (void)stream;
  (void)extra;
  using mixnet::Norm;
  if (nparam != 10 || ndims[0] != 1 || ndims[4] != 1 || ndims[5] != 1 || ndims[6] != 4 ||
      !mixnet::all_float32(nparam, dtypes))
    return 1;
  Norm b;
  if (!mixnet::make_norm(static_cast<const float *>(params[0]), shapes[0][0], ndims, shapes, &b)) return 2;
  if (shapes[4][0] != b.c || shapes[5][0] != b.c) return 2;
  const float *x = static_cast<const float *>(params[1]), *gamma = static_cast<const float *>(params[2]);
  const float *beta = static_cast<const float *>(params[3]), *mean = static_cast<const float *>(params[4]);
  const float *var = static_cast<const float *>(params[5]), *dy = static_cast<const float *>(params[6]);
  float *dx = static_cast<float *>(params[7]), *dgamma = static_cast<float *>(params[8]);
  float *dbeta = static_cast<float *>(params[9]);
  std::vector<float> rstd(b.c), a(b.c), shift(b.c);
  for (int64_t ch = 0; ch < b.c; ++ch) {
    rstd[ch] = 1.f / std::sqrt(var[ch] + b.eps);
    a[ch] = gamma[ch] * rstd[ch];
    shift[ch] = beta[ch] - mean[ch] * a[ch];
  }
  // g = dy * act'(z): per plane sums of g and g * xhat.
  std::vector<double> sum_g(b.n * b.c), sum_gx(b.n * b.c);
  auto g_run = [&](int64_t i, float *g) {  // g for plane i into g[0..p)
    const int64_t ch = i % b.c;
    mixnet::activation_grad_run(b.act, x + i * b.p, dy + i * b.p, a[ch], shift[ch], b.p, g);
  };
  mixnet::parallel_for(b.n * b.c, mixnet::grain(b.p), [&](int64_t lo, int64_t hi) {
    float *g = mixnet::grow(mixnet::thread_scratch().out, b.p);
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t ch = i % b.c;
      g_run(i, g);
      const float *xi = x + i * b.p;
      const float sg = mixnet::sum_n(g, b.p);
      sum_g[i] = sg;
      sum_gx[i] = (mixnet::dot_n(g, xi, b.p) - mean[ch] * sg) * rstd[ch];
    }
  });
  std::vector<float> k1(b.c), k2(b.c);
  const double count = static_cast<double>(b.n * b.p);
  for (int64_t ch = 0; ch < b.c; ++ch) {
    double sg = 0.0, sgx = 0.0;
    for (int64_t img = 0; img < b.n; ++img) {
      sg += sum_g[img * b.c + ch];
      sgx += sum_gx[img * b.c + ch];
    }
    dbeta[ch] = static_cast<float>(sg);
    dgamma[ch] = static_cast<float>(sgx);
    k1[ch] = static_cast<float>(sg / count);
    k2[ch] = static_cast<float>(sgx / count);
  }
  // dx = gamma * rstd * (g - mean(g) - xhat * mean(g * xhat)).
  mixnet::parallel_for(b.n * b.c, mixnet::grain(b.p), [&](int64_t lo, int64_t hi) {
    float *g = mixnet::grow(mixnet::thread_scratch().out, b.p);
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t ch = i % b.c;
      g_run(i, g);
      const float *xi = x + i * b.p;
      float *dxi = dx + i * b.p;
      const float scale = a[ch], m = mean[ch], r = rstd[ch], c1 = k1[ch], c2 = k2[ch];
      for (int64_t j = 0; j < b.p; ++j) dxi[j] = scale * (g[j] - c1 - (xi[j] - m) * r * c2);
    }
  });
  return 0;
}

}  // extern "C"
