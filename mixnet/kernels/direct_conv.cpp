// Direct grouped convolution for MindSpore Custom(func_type="aot") on the CPU: mixed depthwise
// convolution (one group per channel, a kernel size per group) and small dense convolutions (the stem).
//
// Groups are uniform (cpg input and opg output channels each); group g has an odd kernel size k_g and
// symmetric padding k_g / 2. Weights come as S segments, each a (Cout_s, cpg, K_s, K_s) tensor for
// consecutive output channels whose kernels sit in the centre of K_s x K_s (S = 1 with K = max k_g
// is the zero-padded form; S = number of kernel sizes with K_s = k is MindCV's per-group form).
// One output plane is computed directly: the zero-padded input planes are split into stride x stride
// phase planes, so every kernel tap reads a contiguous run of floats, and the output is accumulated
// over the flattened phase grid in register blocks of kChunk floats (the few columns past the right
// edge are computed and dropped). Output planes of at most kSmallPlane positions (the last stages of a
// small input) instead sum only the taps that meet data, each tap for all images at once.
//
// Tensors are float32, NCHW. The float32 "meta" input comes first: [stride, act, eps, G, k_0..k_{G-1}]
// (act: 0 none, 1 ReLU, 2 swish; eps is used by the fused inference kernel only).
// Entry points (MindSpore aot signature):
//   DirectConvForward(meta, x, w_0..w_{S-1}) -> y
//   DirectConvBnActForward(meta, x, w_0..w_{S-1}, gamma, beta, mean, variance) -> act(bn(conv(x)))
//   DirectConvBackwardInput(meta, dy, x, w) -> dx     (one zero-padded weight tensor; x for its shape)
//   DirectConvBackwardWeight(meta, dy, x, w) -> dw    (two calls, so an unused dx is never computed)
// They return 1 for unsupported ranks or dtypes and 2 for inconsistent shapes or meta.

#include "common.h"

namespace mixnet {
namespace {

constexpr int64_t kChunk = 4 * kLanes;
constexpr int64_t kMaxStride = 8;

// dst[j] = src[j * s] for j < cnt.
void strided_copy(const float *src, int64_t s, int64_t cnt, float *dst) {
  for (int64_t j = 0; j < cnt; ++j) dst[j] = src[j * s];
}

// even[j] = src[2j] and odd[j] = src[2j + 1] for the n floats of src, in one pass.
void deinterleave(const float *src, int64_t n, float *even, float *odd) {
  const i16 pick_even = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  const i16 pick_odd = pick_even + 1;
  int64_t j = 0;
  for (; 2 * j + 2 * kLanes <= n; j += kLanes) {
    const v16 a = load(src + 2 * j), b = load(src + 2 * j + kLanes);
    store(even + j, __builtin_shuffle(a, b, pick_even));
    store(odd + j, __builtin_shuffle(a, b, pick_odd));
  }
  for (; 2 * j < n; ++j) {
    even[j] = src[2 * j];
    if (2 * j + 1 < n) odd[j] = src[2 * j + 1];
  }
}

// out[i] = sum_t w[t] * src[t][i] for i < len (len a multiple of kChunk).
void correlate(const float *const *src, const float *w, int64_t taps, int64_t len, float *out) {
  for (int64_t i = 0; i < len; i += kChunk) {
    v16 a0 = {}, a1 = {}, a2 = {}, a3 = {};
    for (int64_t t = 0; t < taps; ++t) {
      const float *s = src[t] + i;
      const v16 wt = splat(w[t]);
      a0 += wt * load(s);
      a1 += wt * load(s + kLanes);
      a2 += wt * load(s + 2 * kLanes);
      a3 += wt * load(s + 3 * kLanes);
    }
    store(out + i, a0);
    store(out + i + kLanes, a1);
    store(out + i + 2 * kLanes, a2);
    store(out + i + 3 * kLanes, a3);
  }
}

// The problem: shapes, groups, per-group kernel sizes and where each output channel's weights are.
struct Conv {
  int64_t n, cin, cout, h, w, ho, wo, stride, groups, cpg, opg, kmax;
  int act;
  float eps;
  std::vector<int64_t> k;          // per group
  std::vector<const float *> wptr;  // per output channel: its (cpg, kw, kw) weights
  std::vector<int64_t> kw;          // per output channel: the weight tensor's kernel size
};

// Reads meta and the S weight segments and checks them against the shapes: stride 1..8, act 0..2,
// groups dividing both channel counts, odd kernels up to 31 fitting their segment, "same"-padded
// outputs.
bool make_conv(const float *meta, int64_t meta_len, const int64_t *xs, int64_t segments, void **wts,
               const int64_t *const *wshapes, const int *wdims, const int64_t *ys, Conv *c) {
  if (meta_len < 4 || segments < 1) return false;
  c->stride = static_cast<int64_t>(meta[0]);
  c->act = static_cast<int>(meta[1]);
  c->eps = meta[2];
  c->groups = static_cast<int64_t>(meta[3]);
  c->n = xs[0];
  c->cin = xs[1];
  c->h = xs[2];
  c->w = xs[3];
  c->cout = ys[1];
  c->ho = ys[2];
  c->wo = ys[3];
  if (c->stride < 1 || c->stride > kMaxStride || c->act < kNone || c->act > kSwish || c->groups < 1) return false;
  if (meta_len != 4 + c->groups || c->cin % c->groups || c->cout % c->groups || ys[0] != c->n) return false;
  if (c->ho != (c->h - 1) / c->stride + 1 || c->wo != (c->w - 1) / c->stride + 1) return false;
  c->cpg = c->cin / c->groups;
  c->opg = c->cout / c->groups;
  c->k.resize(c->groups);
  c->kmax = 0;
  for (int64_t g = 0; g < c->groups; ++g) {
    c->k[g] = static_cast<int64_t>(meta[4 + g]);
    if (c->k[g] < 1 || c->k[g] > 31 || c->k[g] % 2 == 0) return false;
    // Taps farther than the plane's extent from the centre only ever meet padding: on an h x w plane a
    // kernel computes as its centre (2 max(h, w) - 1)^2 taps, exactly (a 1 x 1 plane: the centre tap).
    c->k[g] = std::min(c->k[g], 2 * std::max(c->h, c->w) - 1);
    c->kmax = std::max(c->kmax, c->k[g]);
  }
  c->wptr.clear();
  c->kw.clear();
  for (int64_t s = 0; s < segments; ++s) {
    const int64_t *ws = wshapes[s];
    if (wdims[s] != 4 || ws[1] != c->cpg || ws[2] != ws[3]) return false;
    for (int64_t o = 0; o < ws[0]; ++o) {
      c->wptr.push_back(static_cast<const float *>(wts[s]) + o * c->cpg * ws[2] * ws[3]);
      c->kw.push_back(ws[2]);
    }
  }
  if (static_cast<int64_t>(c->wptr.size()) != c->cout) return false;
  for (int64_t o = 0; o < c->cout; ++o)
    if (c->kw[o] < c->k[o / c->opg]) return false;
  return true;
}

// Geometry of one plane: input h x w, output ho x wo, kernel k (odd), stride s, padding k / 2.
struct Plane {
  int64_t h, w, ho, wo, k, s, p;
  int64_t wq, hq;  // phase-plane width and height
  int64_t len;     // flattened output length over the phase grid, a multiple of kChunk
  int64_t phase;   // floats per phase plane (room for the register-block overrun)

  Plane(int64_t h_, int64_t w_, int64_t ho_, int64_t wo_, int64_t k_, int64_t s_)
      : h(h_), w(w_), ho(ho_), wo(wo_), k(k_), s(s_), p(k_ / 2) {
    wq = (w + 2 * p + s - 1) / s;
    hq = (h + 2 * p + s - 1) / s;
    len = round_up(ho * wq, kChunk);
    const int64_t reach = ((k - 1) / s) * wq + (k - 1) / s + len;
    phase = round_up(std::max(hq * wq, reach), kLanes);
  }
  int64_t floats() const { return s * s * phase; }
};

// Zero-padded input plane x (h x w) split into s*s phase planes inside buf (g.floats() floats).
void fill_phases(const Plane &g, const float *x, float *buf) {
  std::memset(buf, 0, sizeof(float) * g.floats());
  if (g.s == 1) {
    for (int64_t y = 0; y < g.h; ++y) copy_row(x + y * g.w, g.w, buf + (y + g.p) * g.wq + g.p);
    return;
  }
  int64_t x0[kMaxStride], cnt[kMaxStride], col[kMaxStride];  // per column phase: first column, count, target
  for (int64_t b = 0; b < g.s; ++b) {
    x0[b] = ((b - g.p) % g.s + g.s) % g.s;
    cnt[b] = x0[b] < g.w ? (g.w - x0[b] + g.s - 1) / g.s : 0;
    col[b] = (x0[b] + g.p) / g.s;
  }
  const int64_t b_even = g.p % g.s, b_odd = (1 + g.p) % g.s;  // column phases of x columns 0 and 1 (stride 2)
  for (int64_t y = 0; y < g.h; ++y) {
    const int64_t py = y + g.p;
    const float *row = x + y * g.w;
    float *base = buf + (py % g.s) * g.s * g.phase + (py / g.s) * g.wq;
    if (g.s == 2) {
      deinterleave(row, g.w, base + b_even * g.phase + col[b_even], base + b_odd * g.phase + col[b_odd]);
      continue;
    }
    for (int64_t b = 0; b < g.s; ++b) strided_copy(row + x0[b], g.s, cnt[b], base + b * g.phase + col[b]);
  }
}

// Pointers to where each tap (ky, kx) of the k x k kernel reads in one plane's phase planes:
// buf + ((ky % s) * s + kx % s) * phase + (ky / s) * wq + kx / s, without a division per tap.
void tap_sources(const Plane &g, const float *buf, const float **src) {
  int64_t col[32];  // per kx: offset of its column phase plane and column (k <= 31 here)
  for (int64_t kx = 0, b = 0, q = 0; kx < g.k; ++kx) {
    col[kx] = b * g.phase + q;
    if (++b == g.s) b = 0, ++q;
  }
  for (int64_t ky = 0, a = 0, r = 0; ky < g.k; ++ky) {
    const float *row = buf + a * g.s * g.phase + r * g.wq;
    for (int64_t kx = 0; kx < g.k; ++kx) *src++ = row + col[kx];
    if (++a == g.s) a = 0, ++r;
  }
}

// The k x k kernel from the centre of a kw x kw one, row-major; flipped in both axes if asked.
void tap_weights(const float *wk, int64_t kw, int64_t k, bool flip, float *wt) {
  const int64_t o = (kw - k) / 2;
  for (int64_t ky = 0; ky < k; ++ky)
    for (int64_t kx = 0; kx < k; ++kx)
      *wt++ = flip ? wk[(o + k - 1 - ky) * kw + o + k - 1 - kx] : wk[(o + ky) * kw + o + kx];
}

// Output channels per work item of a dense group: enough items to share, enough outputs per plane build.
int64_t block_of(int64_t per_group) { return per_group <= 4 ? per_group : 4; }

// What forward does with each output plane: y = act(conv * scale[o] + shift[o]) (no scale: y = act(conv)).
struct Epilogue {
  const float *scale = nullptr, *shift = nullptr;
  int act = kNone;
};

// Output planes of at most this many positions compute tap by tap (forward_small): the phase-plane path
// computes kChunk positions per tap and builds the phase planes per (image, group) whatever the plane's
// size, which on the last stages of a small input (1 x 1 to 4 x 4 planes) is nearly all overhead.
constexpr int64_t kSmallPlane = 16;
// Floats of output per work item of forward_small: enough work per item to outweigh claiming it.
constexpr int64_t kSmallWork = 16384;

// Output channel o for all images at once on small planes, from the input laid out image-minor
// (xt[(channel * h * w + position) * n + image]): acc[(oy * wo + ox) * n + image] = the sum over the
// taps that meet data, each tap one run over the images.
void small_channel(const Conv &c, const float *xt, int64_t o, float *acc) {
  const int64_t g = o / c.opg, k = c.k[g], p = k / 2, kw = c.kw[o], off = (kw - k) / 2, n = c.n;
  for (int64_t oy = 0; oy < c.ho; ++oy) {
    const int64_t iy = oy * c.stride - p, ky0 = std::max<int64_t>(0, -iy), ky1 = std::min(k, c.h - iy);
    for (int64_t ox = 0; ox < c.wo; ++ox) {
      const int64_t ix = ox * c.stride - p, kx0 = std::max<int64_t>(0, -ix), kx1 = std::min(k, c.w - ix);
      float *a = acc + (oy * c.wo + ox) * n;
      std::fill(a, a + n, 0.f);
      for (int64_t i = 0; i < c.cpg; ++i) {
        const float *wk = c.wptr[o] + i * kw * kw + off * kw + off;
        const float *xi = xt + (g * c.cpg + i) * c.h * c.w * n;
        for (int64_t ky = ky0; ky < ky1; ++ky)
          for (int64_t kx = kx0; kx < kx1; ++kx) {
            const float w = wk[ky * kw + kx], *src = xi + ((iy + ky) * c.w + ix + kx) * n;
            for (int64_t img = 0; img < n; ++img) a[img] += w * src[img];
          }
      }
    }
  }
}

// Forward on small output planes: the input laid out image-minor once, then item = a range of output
// channels, each computed for all images (runs over the images vectorize), epilogue, and put back NCHW.
void forward_small(const Conv &c, const float *x, float *y, const Epilogue &epi) {
  const int64_t hw = c.h * c.w, plane = c.ho * c.wo, n = c.n;
  std::vector<float> xt(c.cin * hw * n);
  parallel_for(c.cin, std::max<int64_t>(1, kSmallWork / (hw * n)), [&](int64_t lo, int64_t hi) {
    for (int64_t ci = lo; ci < hi; ++ci)
      for (int64_t img = 0; img < n; ++img)
        for (int64_t q = 0; q < hw; ++q) xt[(ci * hw + q) * n + img] = x[(img * c.cin + ci) * hw + q];
  });
  parallel_for(c.cout, std::max<int64_t>(1, kSmallWork / (plane * n)), [&](int64_t lo, int64_t hi) {
    float *acc = grow(thread_scratch().out, plane * n);
    for (int64_t o = lo; o < hi; ++o) {
      small_channel(c, xt.data(), o, acc);
      if (epi.scale) {
        const float a = epi.scale[o], b = epi.shift[o];
        for (int64_t j = 0; j < plane * n; ++j) acc[j] = acc[j] * a + b;
      }
      activate_run(epi.act, acc, plane * n);
      for (int64_t img = 0; img < n; ++img)
        for (int64_t q = 0; q < plane; ++q) y[(img * c.cout + o) * plane + q] = acc[q * n + img];
    }
  });
}

// Depthwise output planes of up to this many positions compute with vectors over channels
// (forward_depthwise_lanes): the phase-plane path computes whole padded rows in blocks of kChunk, which
// on 14 x 14 and 7 x 7 planes with large kernels is mostly padding and overrun.
constexpr int64_t kLanePlaneMax = 784;

// One round of transpose16: the off-diagonal B x B blocks of every 2B x 2B block swapped, a two-vector
// permute per row (unrolled, so the rows stay in registers).
template <int B>
inline void transpose_round(v16 *r, const i16 &lo, const i16 &hi) {
#pragma GCC unroll 16
  for (int i = 0; i < kLanes; ++i) {
    if (i & B) continue;
    const v16 a = r[i], c = r[i + B];
    r[i] = __builtin_shuffle(a, c, lo);
    r[i + B] = __builtin_shuffle(a, c, hi);
  }
}

// Transposes the 16 x 16 matrix whose rows are r[0..15]: four rounds (B = 8, 4, 2, 1).
inline void transpose16(v16 *r) {
  const i16 lo8 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const i16 hi8 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
  const i16 lo4 = {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27};
  const i16 hi4 = {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31};
  const i16 lo2 = {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29};
  const i16 hi2 = {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31};
  const i16 lo1 = {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30};
  const i16 hi1 = {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31};
  transpose_round<8>(r, lo8, hi8);
  transpose_round<4>(r, lo4, hi4);
  transpose_round<2>(r, lo2, hi2);
  transpose_round<1>(r, lo1, hi1);
}

// Lays the 16 planes planes[l] (hw positions each; null reads zeros) channel-minor: position q of
// the plane, at row q / w and column q % w, goes to the kLanes floats at out + (row * ld + column) * kLanes.
inline void interleave_planes(const float *const *planes, int64_t hw, int64_t w, int64_t ld, float *out) {
  v16 r[kLanes];
  int64_t q = 0, row = 0, col = 0;  // position q is at (row, col)
  const auto next = [&] {
    if (++col == w) col = 0, ++row;
  };
  for (; q + kLanes <= hw; q += kLanes) {
    for (int l = 0; l < kLanes; ++l) r[l] = planes[l] ? load(planes[l] + q) : (v16){};
    transpose16(r);
    for (int j = 0; j < kLanes; ++j, next()) store(out + (row * ld + col) * kLanes, r[j]);
  }
  for (; q < hw; ++q, next())
    for (int l = 0; l < kLanes; ++l) out[(row * ld + col) * kLanes + l] = planes[l] ? planes[l][q] : 0.f;
}

// acc[j] = sum over the kb x kb taps of w[tap] * x at output positions j < R of a row (R consecutive
// outputs, ``step`` = stride * kLanes floats apart), channel-interleaved.
template <int R>
inline void lane_taps(const float *x, int64_t row_floats, int64_t step, const float *w, int64_t kb, float *out) {
  v16 acc[R];
  for (int j = 0; j < R; ++j) acc[j] = (v16){};
  for (int64_t ky = 0; ky < kb; ++ky) {
    const float *xr = x + ky * row_floats;
    for (int64_t kx = 0; kx < kb; ++kx) {
      const v16 wv = load(w + (ky * kb + kx) * kLanes);
      for (int j = 0; j < R; ++j) acc[j] += wv * load(xr + kx * kLanes + j * step);
    }
  }
  for (int j = 0; j < R; ++j) store(out + j * kLanes, acc[j]);
}

// Outputs per lane_taps call: a tap's weights are loaded once for this many positions.
constexpr int64_t kLaneRun = 8;

// lane_taps for a run-time number of positions (1..kLaneRun).
template <int R = kLaneRun>
inline void lane_run(int64_t count, const float *x, int64_t row_floats, int64_t step, const float *w, int64_t kb,
                     float *out) {
  if constexpr (R > 1) {
    if (count < R) return lane_run<R - 1>(count, x, row_floats, step, w, kb, out);
  }
  lane_taps<R>(x, row_floats, step, w, kb, out);
}

// Depthwise forward (one input channel per output channel) with vectors over kLanes channels, for
// inference: item = (image, block of kLanes channels). The block's input planes are laid out
// channel-minor and zero-padded by kb / 2 (kb = the block's largest kernel; smaller kernels sit in its
// centre with zeros around), each output position sums its kb x kb taps as one vector per tap, the
// epilogue runs on the vectors, and the planes are put back channel-major.
void forward_depthwise_lanes(const Conv &c, const float *x, float *y, const Epilogue &epi) {
  const int64_t hw = c.h * c.w, plane = c.ho * c.wo, blocks = (c.cout + kLanes - 1) / kLanes;
  Pool::instance().run(c.n * blocks, [&](int64_t item, int64_t) {
    const int64_t img = item / blocks, c0 = (item % blocks) * kLanes, lanes = std::min(kLanes, c.cout - c0);
    int64_t kb = 1;
    for (int64_t l = 0; l < lanes; ++l) kb = std::max(kb, c.k[c0 + l]);
    const int64_t p = kb / 2, wp = c.w + 2 * p, hp = c.h + 2 * p;
    Scratch &sc = thread_scratch();
    float *xb = grow(sc.planes, (hp * wp + kb * kb + plane) * kLanes + 2 * kLanes);
    float *wb = xb + hp * wp * kLanes, *yb = wb + kb * kb * kLanes, *scale = yb + plane * kLanes;
    float *shift = scale + kLanes;
    sc.key_call = 0;  // the planes are overwritten here
    // Weights: tap (ky, kx) of the block's kb x kb kernel for every lane.
    std::fill(wb, wb + kb * kb * kLanes, 0.f);
    for (int64_t l = 0; l < lanes; ++l) {
      const int64_t o = c0 + l, k = c.k[o], kw = c.kw[o], off = (kw - k) / 2, at = (kb - k) / 2;
      for (int64_t ky = 0; ky < k; ++ky)
        for (int64_t kx = 0; kx < k; ++kx) wb[((at + ky) * kb + at + kx) * kLanes + l] = c.wptr[o][(off + ky) * kw + off + kx];
      scale[l] = epi.scale[o];
      shift[l] = epi.shift[o];
    }
    std::fill(scale + lanes, scale + kLanes, 0.f);
    std::fill(shift + lanes, shift + kLanes, 0.f);
    // Input: zero borders, then the planes interleaved 16 channels at a time.
    std::fill(xb, xb + p * wp * kLanes, 0.f);
    std::fill(xb + (p + c.h) * wp * kLanes, xb + hp * wp * kLanes, 0.f);
    for (int64_t iy = 0; iy < c.h; ++iy) {
      float *row = xb + (iy + p) * wp * kLanes;
      std::fill(row, row + p * kLanes, 0.f);
      std::fill(row + (p + c.w) * kLanes, row + wp * kLanes, 0.f);
    }
    const float *planes[kLanes];
    for (int64_t l = 0; l < kLanes; ++l) planes[l] = l < lanes ? x + (img * c.cin + c0 + l) * hw : nullptr;
    interleave_planes(planes, hw, c.w, wp, xb + (p * wp + p) * kLanes);
    // Taps, runs of up to kLaneRun outputs of a row at a time, then the epilogue on the vectors.
    const int64_t step = c.stride * kLanes;
    for (int64_t oy = 0; oy < c.ho; ++oy) {
      const float *xr = xb + oy * c.stride * wp * kLanes;
      float *yr = yb + oy * c.wo * kLanes;
      for (int64_t ox = 0; ox < c.wo; ox += kLaneRun)
        lane_run(std::min(kLaneRun, c.wo - ox), xr + ox * step, wp * kLanes, step, wb, kb, yr + ox * kLanes);
    }
    const v16 sv = load(scale), bv = load(shift);
    for (int64_t q = 0; q < plane; ++q) store(yb + q * kLanes, load(yb + q * kLanes) * sv + bv);
    activate_run(epi.act, yb, plane * kLanes);
    // Output: back to one plane per channel.
    v16 r[kLanes];
    float *out = y + (img * c.cout + c0) * plane;
    int64_t q = 0;
    for (; q + kLanes <= plane; q += kLanes) {
      for (int j = 0; j < kLanes; ++j) r[j] = load(yb + (q + j) * kLanes);
      transpose16(r);
      for (int64_t l = 0; l < lanes; ++l) store(out + l * plane + q, r[l]);
    }
    for (; q < plane; ++q)
      for (int64_t l = 0; l < lanes; ++l) out[l * plane + q] = yb[q * kLanes + l];
  });
}

// Forward: item = (image, group, block of output channels). The group's input planes are split into
// phases once per thread and (image, group).
void forward(const Conv &c, const float *x, float *y, const Epilogue &epi) {
  if (c.ho * c.wo <= kSmallPlane) return forward_small(c, x, y, epi);
  if (epi.scale && c.cpg == 1 && c.opg == 1 && c.ho * c.wo <= kLanePlaneMax)
    return forward_depthwise_lanes(c, x, y, epi);
  const uint64_t call = next_call_id();
  const int64_t ob = block_of(c.opg), blocks = (c.opg + ob - 1) / ob;
  Pool::instance().run(c.n * c.groups * blocks, [&](int64_t item, int64_t) {
    const int64_t ng = item / blocks, img = ng / c.groups, g = ng % c.groups;
    const int64_t k = c.k[g], taps = c.cpg * k * k;
    const Plane pl(c.h, c.w, c.ho, c.wo, k, c.stride);
    Scratch &sc = thread_scratch();
    float *planes = grow(sc.planes, c.cpg * pl.floats());
    if (sc.key_call != call || sc.key_item != ng) {
      for (int64_t i = 0; i < c.cpg; ++i)
        fill_phases(pl, x + ((img * c.cin) + g * c.cpg + i) * c.h * c.w, planes + i * pl.floats());
      sc.key_call = call;
      sc.key_item = ng;
    }
    if (static_cast<int64_t>(sc.src.size()) < taps) sc.src.resize(taps);
    for (int64_t i = 0; i < c.cpg; ++i) tap_sources(pl, planes + i * pl.floats(), sc.src.data() + i * k * k);
    float *wt = grow(sc.wt, taps);
    float *out = grow(sc.out, pl.len);
    const int64_t o_end = std::min(c.opg, (item % blocks + 1) * ob);
    for (int64_t ol = (item % blocks) * ob; ol < o_end; ++ol) {
      const int64_t o = g * c.opg + ol, kw = c.kw[o];
      for (int64_t i = 0; i < c.cpg; ++i) tap_weights(c.wptr[o] + i * kw * kw, kw, k, false, wt + i * k * k);
      correlate(sc.src.data(), wt, taps, pl.len, out);
      float *yp = y + (img * c.cout + o) * c.ho * c.wo;
      if (epi.scale) {
        const float a = epi.scale[o], b = epi.shift[o];
        for (int64_t oy = 0; oy < c.ho; ++oy) {
          const float *orow = out + oy * pl.wq;
          float *yrow = yp + oy * c.wo;
          for (int64_t ox = 0; ox < c.wo; ++ox) yrow[ox] = orow[ox] * a + b;
        }
      } else {
        for (int64_t oy = 0; oy < c.ho; ++oy) copy_row(out + oy * pl.wq, c.wo, yp + oy * c.wo);
      }
      activate_run(epi.act, yp, c.ho * c.wo);
    }
  });
}

// Input gradient: item = (image, group, block of input channels).
// dx[i][j] = sum_o sum_t flip(w[o])[t] * V_o[i + ty][j + tx], where V_o is dy_o upsampled by the
// stride (zeros between) and padded by p, so V_o[s*oy + p][s*ox + p] = dy_o[oy][ox].
void backward_input(const Conv &c, const float *dy, float *dx) {
  const uint64_t call = next_call_id();
  const int64_t ib = block_of(c.cpg), blocks = (c.cpg + ib - 1) / ib;
  Pool::instance().run(c.n * c.groups * blocks, [&](int64_t item, int64_t) {
    const int64_t ng = item / blocks, img = ng / c.groups, g = ng % c.groups;
    const int64_t k = c.k[g], p = k / 2, taps = c.opg * k * k;
    const int64_t wv = c.w + 2 * p, hv = c.h + 2 * p, len = round_up(c.h * wv, kChunk);
    const int64_t size = round_up(std::max(hv * wv, (k - 1) * wv + (k - 1) + len), kLanes);
    Scratch &sc = thread_scratch();
    float *planes = grow(sc.planes, c.opg * size);
    if (sc.key_call != call || sc.key_item != ng) {
      std::memset(planes, 0, sizeof(float) * c.opg * size);
      for (int64_t ol = 0; ol < c.opg; ++ol) {
        const float *d = dy + (img * c.cout + g * c.opg + ol) * c.ho * c.wo;
        float *v = planes + ol * size;
        for (int64_t oy = 0; oy < c.ho; ++oy) {
          float *row = v + (c.stride * oy + p) * wv + p;
          if (c.stride == 1) {
            copy_row(d + oy * c.wo, c.wo, row);
          } else {
            for (int64_t ox = 0; ox < c.wo; ++ox) row[c.stride * ox] = d[oy * c.wo + ox];
          }
        }
      }
      sc.key_call = call;
      sc.key_item = ng;
    }
    if (static_cast<int64_t>(sc.src.size()) < taps) sc.src.resize(taps);
    const float **src = sc.src.data();
    for (int64_t ol = 0; ol < c.opg; ++ol)
      for (int64_t ty = 0; ty < k; ++ty)
        for (int64_t tx = 0; tx < k; ++tx) *src++ = planes + ol * size + ty * wv + tx;
    float *wt = grow(sc.wt, taps);
    float *out = grow(sc.out, len);
    const int64_t i_end = std::min(c.cpg, (item % blocks + 1) * ib);
    for (int64_t il = (item % blocks) * ib; il < i_end; ++il) {
      for (int64_t ol = 0; ol < c.opg; ++ol) {
        const int64_t o = g * c.opg + ol, kw = c.kw[o];
        tap_weights(c.wptr[o] + il * kw * kw, kw, k, true, wt + ol * k * k);
      }
      correlate(sc.src.data(), wt, taps, len, out);
      float *d = dx + (img * c.cin + g * c.cpg + il) * c.h * c.w;
      for (int64_t y = 0; y < c.h; ++y) copy_row(out + y * wv, c.w, d + y * c.w);
    }
  });
}

// acc += the 16-lane partial sums of a[i] * b[i] for i < len (len a multiple of kChunk).
inline void dot_accumulate(const float *a, const float *b, int64_t len, v16 &acc) {
  v16 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  for (int64_t i = 0; i < len; i += kChunk) {
    a0 += load(a + i) * load(b + i);
    a1 += load(a + i + kLanes) * load(b + i + kLanes);
    a2 += load(a + i + 2 * kLanes) * load(b + i + 2 * kLanes);
    a3 += load(a + i + 3 * kLanes) * load(b + i + 3 * kLanes);
  }
  acc += (a0 + a1) + (a2 + a3);
}

// Weight gradient into a zero-padded (Cout, cpg, K, K) tensor, K = the weight's size (at least kmax:
// a supernet's weight may be larger than every kernel in use; the taps outside get zeros).
// dw[o][i][t] = sum over images and output positions of dy_o * (tap t of the phases of x_i).
// Item = (group, range of images): partial sums stay in vector registers across the images. With
// enough groups one item covers all images and writes dw directly; otherwise each range sums into
// its own copy of dw and the copies are added in range order at the end, so the result does not
// depend on which thread took which item.
void backward_weight(const Conv &c, const float *x, const float *dy, float *dw) {
  Pool &pool = Pool::instance();
  const int64_t kp = c.kw[0], kk = kp * kp, total = c.cout * c.cpg * kk;
  const int64_t chunks = c.groups >= kGradItems ? 1 : std::min(c.n, (kGradItems + c.groups - 1) / c.groups);
  const int64_t per_chunk = (c.n + chunks - 1) / chunks;
  std::vector<float> acc(chunks > 1 ? chunks * total : 0, 0.f);
  std::memset(dw, 0, sizeof(float) * total);
  pool.run(c.groups * chunks, [&](int64_t item, int64_t) {
    const int64_t g = item / chunks, img0 = (item % chunks) * per_chunk, img1 = std::min(c.n, img0 + per_chunk);
    const int64_t k = c.k[g], o0 = (kp - k) / 2, taps = c.cpg * k * k;
    const Plane pl(c.h, c.w, c.ho, c.wo, k, c.stride);
    Scratch &sc = thread_scratch();
    float *planes = grow(sc.planes, c.cpg * pl.floats());
    float *q = grow(sc.out, pl.len);
    sc.key_call = 0;  // the planes are overwritten here
    if (static_cast<int64_t>(sc.src.size()) < taps) sc.src.resize(taps);
    for (int64_t i = 0; i < c.cpg; ++i) tap_sources(pl, planes + i * pl.floats(), sc.src.data() + i * k * k);
    std::vector<v16> sums(c.opg * taps, (v16){});
    std::memset(q, 0, sizeof(float) * pl.len);
    for (int64_t img = img0; img < img1; ++img) {
      for (int64_t i = 0; i < c.cpg; ++i)
        fill_phases(pl, x + ((img * c.cin) + g * c.cpg + i) * c.h * c.w, planes + i * pl.floats());
      for (int64_t ol = 0; ol < c.opg; ++ol) {
        const float *d = dy + (img * c.cout + g * c.opg + ol) * c.ho * c.wo;
        for (int64_t oy = 0; oy < c.ho; ++oy) copy_row(d + oy * c.wo, c.wo, q + oy * pl.wq);
        for (int64_t t = 0; t < taps; ++t) dot_accumulate(q, sc.src[t], pl.len, sums[ol * taps + t]);
      }
    }
    float *out = chunks > 1 ? acc.data() + (item % chunks) * total : dw;
    for (int64_t ol = 0; ol < c.opg; ++ol) {
      const int64_t o = g * c.opg + ol;
      for (int64_t i = 0; i < c.cpg; ++i)
        for (int64_t ky = 0; ky < k; ++ky)
          for (int64_t kx = 0; kx < k; ++kx) {
            const v16 &v = sums[ol * taps + (i * k + ky) * k + kx];
            float s = 0.f;
            for (int64_t l = 0; l < kLanes; ++l) s += v[l];
            out[(o * c.cpg + i) * kk + (o0 + ky) * kp + o0 + kx] += s;
          }
    }
  });
  if (chunks > 1) {
    for (int64_t j = 0; j < total; ++j) {
      float s = 0.f;
      for (int64_t t = 0; t < chunks; ++t) s += acc[t * total + j];
      dw[j] = s;
    }
  }
}

// Shared argument handling of the two backward entry points, (meta, dy, x, w) -> one gradient:
// 0 when fine, else the entry point's error code.
int backward_conv(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, Conv *c) {
  if (nparam != 5 || ndims[0] != 1 || ndims[1] != 4 || ndims[2] != 4 || ndims[4] != 4 || !all_float32(nparam, dtypes))
    return 1;
  if (!make_conv(static_cast<const float *>(params[0]), shapes[0][0], shapes[2], 1, params + 3, shapes + 3, ndims + 3,
                 shapes[1], c))  // the weight gradient is written in the weight's zero-padded layout
    return 2;
  return 0;
}

// Shared argument handling of the forward entry points, (meta, x, w_1..w_G, ``extra`` more inputs, y):
// 0 when fine, else the entry point's error code.
int forward_conv(int nparam, int extra, void **params, int *ndims, int64_t **shapes, const char **dtypes, Conv *c) {
  const int64_t segments = nparam - 3 - extra;
  if (segments < 1 || ndims[0] != 1 || ndims[1] != 4 || ndims[nparam - 1] != 4 || !all_float32(nparam, dtypes))
    return 1;
  if (!make_conv(static_cast<const float *>(params[0]), shapes[0][0], shapes[1], segments, params + 2, shapes + 2,
                 ndims + 2, shapes[nparam - 1], c))
    return 2;
  return 0;
}

}  // namespace
}  // namespace mixnet

using mixnet::Conv;

extern "C" {

int DirectConvForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                      void *extra) {
  (void)stream;
  (void)extra;
  Conv c;
  if (const int error = mixnet::forward_conv(nparam, 0, params, ndims, shapes, dtypes, &c)) return error;
  mixnet::forward(c, static_cast<const float *>(params[1]), static_cast<float *>(params[nparam - 1]),
                  mixnet::Epilogue{});
  return 0;
}

int DirectConvBnActForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                           void *stream, void *extra) {
  (void)stream;
  (void)extra;
  const mixnet::InferenceCall inference;
  Conv c;
  if (const int error = mixnet::forward_conv(nparam, 4, params, ndims, shapes, dtypes, &c)) return error;
  for (int i = nparam - 5; i < nparam - 1; ++i)
    if (ndims[i] != 1 || shapes[i][0] != c.cout) return 2;
  std::vector<float> scale(c.cout), shift(c.cout);
  mixnet::fold_batch_norm(static_cast<const float *>(params[nparam - 5]), static_cast<const float *>(params[nparam - 4]),
                          static_cast<const float *>(params[nparam - 3]), static_cast<const float *>(params[nparam - 2]),
                          c.eps, c.cout, scale.data(), shift.data());
  mixnet::forward(c, static_cast<const float *>(params[1]), static_cast<float *>(params[nparam - 1]),
                  mixnet::Epilogue{scale.data(), shift.data(), c.act});
  return 0;
}

int DirectConvBackwardInput(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                            void *stream, void *extra) {
  (void)stream;
  (void)extra;
  Conv c;
  if (const int rc = mixnet::backward_conv(nparam, params, ndims, shapes, dtypes, &c)) return rc;
  mixnet::backward_input(c, static_cast<const float *>(params[1]), static_cast<float *>(params[4]));
  return 0;
}

int DirectConvBackwardWeight(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  (void)stream;
  (void)extra;
  Conv c;
  if (const int rc = mixnet::backward_conv(nparam, params, ndims, shapes, dtypes, &c)) return rc;
  mixnet::backward_weight(c, static_cast<const float *>(params[2]), static_cast<const float *>(params[1]),
                          static_cast<float *>(params[4]));
  return 0;
}

}  // extern "C"
