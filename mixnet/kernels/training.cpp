// Differentiable swish and squeeze-and-excitation for MindSpore Custom(func_type="aot") on the CPU:
// one pass over the data where MindSpore's composition of small ops makes several.
//
// Entry points (float32, NCHW; meta is a float32 tensor, read only by the SE kernels: [se_act]):
//   SwishForward(x) -> x * sigmoid(x)
//   SwishBackward(x, dy) -> dy * (s + x * s * (1 - s)),  s = sigmoid(x)
//   SqueezeExciteForward(meta, x, w_reduce, b_reduce, w_expand, b_expand) -> x * gate
//       gate[n, c] = sigmoid(W_e act(W_r mean_hw(x[n]) + b_r) + b_e)[c]
//   SqueezeExciteBackward(meta, x, w_reduce, b_reduce, w_expand, b_expand, dy)
//       -> dx, dw_reduce, db_reduce, dw_expand, db_expand
// The SE weights are the 1x1 conv tensors (R, C, 1, 1), (R), (C, R, 1, 1), (C). They return 1 for
// unsupported ranks or dtypes and 2 for inconsistent shapes.

#include "common.h"

namespace mixnet {
namespace {

constexpr int64_t kRun = 8192;  // floats per work item

// Planes of p floats per work item so that an item covers about kRun floats.
inline int64_t plane_grain(int64_t p) { return std::max<int64_t>(1, kRun / std::max<int64_t>(1, p)); }

// Derivative of the activation at its input z.
inline float activate_grad(int act, float z) {
  if (act == kRelu) return z > 0.f ? 1.f : 0.f;
  if (act == kSwish) {
    const float s = sigmoid(z);
    return s + z * s * (1.f - s);
  }
  return 1.f;
}

struct SqueezeExcite {
  int64_t n, c, p, r;  // batch, channels, positions (H * W), reduced channels
  int act;
  const float *wr, *br, *we, *be;
};

// From the inputs (meta, x, reduce weight, reduce bias, expand weight, expand bias, ...): sizes and weights.
bool make_se(void **params, int *ndims, int64_t **shapes, SqueezeExcite *se) {
  if (shapes[0][0] != 1 || ndims[1] != 4 || ndims[2] != 4 || ndims[3] != 1 || ndims[4] != 4 || ndims[5] != 1)
    return false;
  const int64_t *xs = shapes[1], *wr = shapes[2], *we = shapes[4];
  se->act = static_cast<int>(static_cast<const float *>(params[0])[0]);
  se->wr = static_cast<const float *>(params[2]);
  se->br = static_cast<const float *>(params[3]);
  se->we = static_cast<const float *>(params[4]);
  se->be = static_cast<const float *>(params[5]);
  se->n = xs[0];
  se->c = xs[1];
  se->p = xs[2] * xs[3];
  se->r = wr[0];
  return se->act >= kNone && se->act <= kSwish && wr[1] == se->c && wr[2] * wr[3] == 1 && shapes[3][0] == se->r &&
         we[0] == se->c && we[1] == se->r && we[2] * we[3] == 1 && shapes[5][0] == se->c;
}

// Per image: channel means m, hidden pre-activation h_pre, and gate s (N*C, N*R, N*C).
void se_gate(const SqueezeExcite &se, const float *x, float *m, float *h_pre, float *s) {
  parallel_for(se.n * se.c, plane_grain(se.p), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) m[i] = sum_n(x + i * se.p, se.p) / static_cast<float>(se.p);
  });
  for (int64_t img = 0; img < se.n; ++img) {
    const float *mi = m + img * se.c;
    float *hp = h_pre + img * se.r;
    std::vector<float> h(se.r);
    for (int64_t j = 0; j < se.r; ++j) {
      hp[j] = se.br[j] + dot_n(se.wr + j * se.c, mi, se.c);
      h[j] = activate(se.act, hp[j]);
    }
    for (int64_t ch = 0; ch < se.c; ++ch) s[img * se.c + ch] = sigmoid(se.be[ch] + dot_n(se.we + ch * se.r, h.data(), se.r));
  }
}

}  // namespace
}  // namespace mixnet

extern "C" {

int SwishForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                 void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 2 || !mixnet::all_float32(nparam, dtypes)) return 1;
  int64_t n = 1;
  for (int i = 0; i < ndims[0]; ++i) n *= shapes[0][i];
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  mixnet::parallel_for(n, mixnet::kRun, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = x[i] / (1.f + mixnet::fast_exp(-x[i]));
  });
  return 0;
}

int SwishBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                  void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 3 || !mixnet::all_float32(nparam, dtypes)) return 1;
  int64_t n = 1;
  for (int i = 0; i < ndims[0]; ++i) n *= shapes[0][i];
  const float *x = static_cast<const float *>(params[0]), *dy = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  mixnet::parallel_for(n, mixnet::kRun, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float s = 1.f / (1.f + mixnet::fast_exp(-x[i]));
      dx[i] = dy[i] * (s + x[i] * s * (1.f - s));
    }
  });
  return 0;
}

int SqueezeExciteForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                         void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 7 || ndims[0] != 1 || !mixnet::all_float32(nparam, dtypes)) return 1;
  mixnet::SqueezeExcite se;
  if (!mixnet::make_se(params, ndims, shapes, &se)) return 2;
  const float *x = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[6]);
  std::vector<float> m(se.n * se.c), h_pre(se.n * se.r), s(se.n * se.c);
  mixnet::se_gate(se, x, m.data(), h_pre.data(), s.data());
  mixnet::parallel_for(se.n * se.c, mixnet::plane_grain(se.p), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float g = s[i];
      const float *xi = x + i * se.p;
      float *yi = y + i * se.p;
      for (int64_t j = 0; j < se.p; ++j) yi[j] = xi[j] * g;
    }
  });
  return 0;
}

int SqueezeExciteBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                          void *stream, void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 12 || ndims[0] != 1 || !mixnet::all_float32(nparam, dtypes)) return 1;
  mixnet::SqueezeExcite se;
  if (!mixnet::make_se(params, ndims, shapes, &se)) return 2;
  const float *x = static_cast<const float *>(params[1]), *dy = static_cast<const float *>(params[6]);
  float *dx = static_cast<float *>(params[7]), *dwr = static_cast<float *>(params[8]);
  float *dbr = static_cast<float *>(params[9]), *dwe = static_cast<float *>(params[10]);
  float *dbe = static_cast<float *>(params[11]);
  const int64_t n = se.n, c = se.c, r = se.r;
  std::vector<float> m(n * c), h_pre(n * r), s(n * c), ds(n * c);
  mixnet::se_gate(se, x, m.data(), h_pre.data(), s.data());
  mixnet::parallel_for(n * c, mixnet::plane_grain(se.p), [&](int64_t b, int64_t e) {  // ds = sum_hw dy * x
    for (int64_t i = b; i < e; ++i) ds[i] = mixnet::dot_n(dy + i * se.p, x + i * se.p, se.p);
  });
  // Through the gate: dg = ds * s * (1 - s); expand layer; activation; reduce layer; mean.
  std::vector<float> dg(n * c), dh(n * r), dm(n * c, 0.f);
  for (int64_t i = 0; i < n * c; ++i) dg[i] = ds[i] * s[i] * (1.f - s[i]);
  std::fill(dwe, dwe + c * r, 0.f);
  std::fill(dbe, dbe + c, 0.f);
  std::fill(dwr, dwr + r * c, 0.f);
  std::fill(dbr, dbr + r, 0.f);
  std::vector<float> h(r);
  for (int64_t img = 0; img < n; ++img) {
    const float *g = dg.data() + img * c, *hp = h_pre.data() + img * r, *mi = m.data() + img * c;
    float *dhi = dh.data() + img * r, *dmi = dm.data() + img * c;
    for (int64_t j = 0; j < r; ++j) h[j] = mixnet::activate(se.act, hp[j]);
    for (int64_t ch = 0; ch < c; ++ch) {
      dbe[ch] += g[ch];
      for (int64_t j = 0; j < r; ++j) dwe[ch * r + j] += g[ch] * h[j];
    }
    for (int64_t j = 0; j < r; ++j) {
      float t = 0.f;
      for (int64_t ch = 0; ch < c; ++ch) t += se.we[ch * r + j] * g[ch];
      dhi[j] = t * mixnet::activate_grad(se.act, hp[j]);
      dbr[j] += dhi[j];
      for (int64_t ch = 0; ch < c; ++ch) {
        dwr[j * c + ch] += dhi[j] * mi[ch];
        dmi[ch] += se.wr[j * c + ch] * dhi[j];
      }
    }
  }
  const float inv_p = 1.f / static_cast<float>(se.p);
  mixnet::parallel_for(n * c, mixnet::plane_grain(se.p), [&](int64_t b, int64_t e) {  // dx = dy * s + dm / HW
    for (int64_t i = b; i < e; ++i) {
      const float g = s[i], add = dm[i] * inv_p;
      const float *dyi = dy + i * se.p;
      float *dxi = dx + i * se.p;
      for (int64_t j = 0; j < se.p; ++j) dxi[j] = dyi[j] * g + add;
    }
  });
  return 0;
}

}  // extern "C"
