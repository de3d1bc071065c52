// Pointwise (1x1) convolution on the CPU for MindSpore Custom(func_type="aot"). For inference, one call:
// grouped 1x1 conv (any channel split) -> folded BatchNorm -> activation, optionally with
// squeeze-and-excitation applied to the input first, a residual added last, or a global average pool
// of the result.
//
// Entry point: PointwiseForward(meta, x, w_0..w_{S-1}, gamma, beta, mean, variance,
//                               [se_w_reduce, se_b_reduce, se_w_expand, se_b_expand], [residual]) -> y
// meta (float32) = [act, eps, has_se, se_act, has_residual, pooled]; act/se_act: 0 none, 1 ReLU, 2 swish.
// Segment w_s is (cout_s, cin_s, 1, 1) and maps the next cin_s input channels to the next cout_s
// output channels (MindCV's grouped 1x1 conv). y is (N, Cout, H, W), or (N, Cout) when pooled.
// SE: s = sigmoid(W_e act_se(W_r mean_hw(x) + b_r) + b_e) scales the input channels; it is folded
// into the weights per image, as is the BatchNorm scale. Returns 1 for unsupported ranks or dtypes
// and 2 for inconsistent shapes or meta.
//
// For training, PointwiseConvForward / BackwardInput / BackwardWeight (below) compute a grouped 1x1
// conv with equal groups and its two gradients.
//
// The product is register-blocked: kRows output channels x kChunk positions accumulate in 24 vector
// registers while the input channels stream through; a partial last block of positions is copied
// into a zero-padded buffer first.

#include "common.h"

namespace mixnet {
namespace {

constexpr int64_t kChunk = 4 * kLanes;
constexpr int64_t kRows = 6;
constexpr int64_t kRowBlock = 4 * kRows;   // output channels per work item
constexpr int64_t kPosBlock = 4 * kChunk;  // positions per work item

struct Segment {
  int64_t cin0, cin, cout0, cout;
  const float *w;
};

struct Pointwise {
  int64_t n, cin, cout, p;  // p = H * W
  int act, se_act;
  float eps;
  bool se, residual, pooled;
  std::vector<Segment> segs;
};

// acc[r] (kRows x V vectors) = sum_i wt[r * ldw + i] * x[i * ldx + 0..V * kLanes) for r < R; then the
// epilogue stores row r as out(o0 + r, values).
template <int R, int V, typename Store>
inline void micro_tile(const float *x, int64_t ldx, const float *wt, int64_t ldw, int64_t cin, const Store &store_row) {
  v16 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < V; ++j) acc[r][j] = (v16){};
  for (int64_t i = 0; i < cin; ++i) {
    const float *xi = x + i * ldx;
    v16 xv[V];
    for (int j = 0; j < V; ++j) xv[j] = load(xi + j * kLanes);
    for (int r = 0; r < R; ++r) {
      const v16 wv = splat(wt[r * ldw + i]);
      for (int j = 0; j < V; ++j) acc[r][j] += wv * xv[j];
    }
  }
  alignas(64) float row[kChunk];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < V; ++j) store(row + j * kLanes, acc[r][j]);
    store_row(r, row);
  }
}

// micro_tile for a run-time number of rows (1..kRows).
template <int V, typename Store>
void tile_rows(int64_t rows, const float *x, int64_t ldx, const float *wt, int64_t ldw, int64_t cin, const Store &s) {
  switch (rows) {
    case 1: micro_tile<1, V>(x, ldx, wt, ldw, cin, s); break;
    case 2: micro_tile<2, V>(x, ldx, wt, ldw, cin, s); break;
    case 3: micro_tile<3, V>(x, ldx, wt, ldw, cin, s); break;
    case 4: micro_tile<4, V>(x, ldx, wt, ldw, cin, s); break;
    case 5: micro_tile<5, V>(x, ldx, wt, ldw, cin, s); break;
    default: micro_tile<6, V>(x, ldx, wt, ldw, cin, s); break;
  }
}

// A tile of ``valid`` positions (1..kChunk): only the vectors that hold them are computed, so a plane's
// last partial block (4 of 196 positions, say) costs one vector, not four.
template <typename Store>
void tile(int64_t rows, int64_t valid, const float *x, int64_t ldx, const float *wt, int64_t ldw, int64_t cin,
          const Store &s) {
  switch ((valid + kLanes - 1) / kLanes) {
    case 1: tile_rows<1>(rows, x, ldx, wt, ldw, cin, s); break;
    case 2: tile_rows<2>(rows, x, ldx, wt, ldw, cin, s); break;
    case 3: tile_rows<3>(rows, x, ldx, wt, ldw, cin, s); break;
    default: tile_rows<4>(rows, x, ldx, wt, ldw, cin, s); break;
  }
}

// Per image: the SE gate s[c] from the channel means of x.
void squeeze_excite(const Pointwise &pw, const float *x, const float *wr, const float *br, const float *we,
                    const float *be, int64_t reduced, float *gate) {
  Pool::instance().run(pw.n, [&](int64_t img, int64_t) {
    std::vector<float> mean(pw.cin), hidden(reduced);
    for (int64_t c = 0; c < pw.cin; ++c) mean[c] = sum_n(x + (img * pw.cin + c) * pw.p, pw.p) / static_cast<float>(pw.p);
    for (int64_t r = 0; r < reduced; ++r) hidden[r] = activate(pw.se_act, br[r] + dot_n(wr + r * pw.cin, mean.data(), pw.cin));
    float *g = gate + img * pw.cin;
    for (int64_t c = 0; c < pw.cin; ++c) g[c] = sigmoid(be[c] + dot_n(we + c * reduced, hidden.data(), reduced));
  });
}

// y = act(scale * (W (gate * x)) + shift) [+ residual], or its mean over positions when pooled, image by image.
void pointwise_planes(const Pointwise &pw, const float *x, const float *scale, const float *shift, const float *gate,
                      const float *res, float *y) {
  std::vector<int64_t> seg_rows;  // row blocks per segment
  int64_t per_image = 0;
  const int64_t pos_block = pw.pooled ? pw.p : kPosBlock;
  const int64_t pos_blocks = (pw.p + pos_block - 1) / pos_block;
  for (const Segment &s : pw.segs) {
    seg_rows.push_back((s.cout + kRowBlock - 1) / kRowBlock);
    per_image += seg_rows.back() * pos_blocks;
  }
  // The last, partial block of positions of every input channel, zero-padded to kChunk, built once.
  const int64_t tail_at = pw.p / kChunk * kChunk, tail_len = pw.p - tail_at;
  // (In the calling thread's buffer, which only grows: no allocation or zeroing per call.)
  thread_local std::vector<float> tail_buffer;
  float *tails = grow(tail_buffer, tail_len ? pw.n * pw.cin * kChunk : 0);
  if (tail_len) {
    parallel_for(pw.n * pw.cin, 256, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        copy_row(x + i * pw.p + tail_at, tail_len, tails + i * kChunk);
        std::fill(tails + i * kChunk + tail_len, tails + (i + 1) * kChunk, 0.f);
      }
    });
  }
  Pool::instance().run(pw.n * per_image, [&](int64_t item, int64_t) {
    const int64_t img = item / per_image;
    int64_t rest = item % per_image, si = 0;
    while (rest >= seg_rows[si] * pos_blocks) rest -= seg_rows[si++] * pos_blocks;
    const Segment &s = pw.segs[si];
    const int64_t o_begin = (rest / pos_blocks) * kRowBlock, o_end = std::min(s.cout, o_begin + kRowBlock);
    const int64_t p_begin = (rest % pos_blocks) * pos_block, p_end = std::min(pw.p, p_begin + pos_block);
    Scratch &sc = thread_scratch();
    // Weights of this row block, scaled by the BatchNorm scale (rows) and the SE gate (columns).
    float *wt = grow(sc.wt, kRowBlock * s.cin);
    for (int64_t o = o_begin; o < o_end; ++o) {
      const float *wo = s.w + o * s.cin;
      float *dst = wt + (o - o_begin) * s.cin;
      const float sc_o = scale[s.cout0 + o];
      if (gate) {
        const float *g = gate + img * pw.cin + s.cin0;
        for (int64_t i = 0; i < s.cin; ++i) dst[i] = wo[i] * g[i] * sc_o;
      } else {
        for (int64_t i = 0; i < s.cin; ++i) dst[i] = wo[i] * sc_o;
      }
    }
    const float *xs = x + (img * pw.cin + s.cin0) * pw.p;
    float *pooled_sum = nullptr;
    if (pw.pooled) {
      pooled_sum = grow(sc.out, kRowBlock);
      std::fill(pooled_sum, pooled_sum + kRowBlock, 0.f);
    }
    for (int64_t p0 = p_begin; p0 < p_end; p0 += kChunk) {
      const int64_t valid = std::min(kChunk, p_end - p0);
      const float *xp = xs + p0;
      int64_t ldx = pw.p;
      if (p0 == tail_at && tail_len) {  // the partial block: its zero-padded copy
        xp = tails + (img * pw.cin + s.cin0) * kChunk;
        ldx = kChunk;
      }
      for (int64_t r0 = o_begin; r0 < o_end; r0 += kRows) {
        const int64_t rows = std::min(kRows, o_end - r0);
        tile(rows, valid, xp, ldx, wt + (r0 - o_begin) * s.cin, s.cin, s.cin, [&](int r, float *v) {
          const int64_t o = s.cout0 + r0 + r;
          const float sh = shift[o];
          for (int64_t j = 0; j < valid; ++j) v[j] += sh;
          activate_run(pw.act, v, valid);
          if (pw.pooled) {
            pooled_sum[r0 + r - o_begin] += sum_n(v, valid);
            return;
          }
          float *yo = y + (img * pw.cout + o) * pw.p + p0;
          if (res) {
            const float *ro = res + (img * pw.cout + o) * pw.p + p0;
            for (int64_t j = 0; j < valid; ++j) yo[j] = v[j] + ro[j];
          } else {
            copy_row(v, valid, yo);
          }
        });
      }
    }
    if (pw.pooled) {
      for (int64_t o = o_begin; o < o_end; ++o)
        y[img * pw.cout + s.cout0 + o] = pooled_sum[o - o_begin] / static_cast<float>(pw.p);
    }
  });
}

// pointwise_planes on images of fewer than kChunk positions, where its blocks of positions would be mostly
// padding: the images side by side as one plane of n * p positions (the SE gate applied as the input is
// laid out), computed as one image, then put back image by image (residual added, or pooled).
void pointwise_side_by_side(const Pointwise &pw, const float *x, const float *scale, const float *shift,
                            const float *gate, const float *res, float *y) {
  const int64_t np = pw.n * pw.p;
  std::vector<float> xt(pw.cin * np), yt(pw.cout * np);
  parallel_for(pw.n * pw.cin, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) {
      const float g = gate ? gate[j] : 1.f, *src = x + j * pw.p;
      float *dst = xt.data() + (j % pw.cin) * np + (j / pw.cin) * pw.p;
      for (int64_t q = 0; q < pw.p; ++q) dst[q] = src[q] * g;
    }
  });
  Pointwise flat = pw;
  flat.n = 1;
  flat.p = np;
  flat.se = flat.residual = flat.pooled = false;
  pointwise_planes(flat, xt.data(), scale, shift, nullptr, nullptr, yt.data());
  parallel_for(pw.n * pw.cout, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) {
      const float *src = yt.data() + (j % pw.cout) * np + (j / pw.cout) * pw.p;
      if (pw.pooled) {
        y[j] = sum_n(src, pw.p) / static_cast<float>(pw.p);
      } else if (res) {
        for (int64_t q = 0; q < pw.p; ++q) y[j * pw.p + q] = src[q] + res[j * pw.p + q];
      } else {
        copy_row(src, pw.p, y + j * pw.p);
      }
    }
  });
}

// y = act(scale * (W (gate * x)) + shift) [+ residual], or its mean over positions when pooled.
void pointwise(const Pointwise &pw, const float *x, const float *scale, const float *shift, const float *gate,
               const float *res, float *y) {
  if (pw.p < kChunk && pw.n > 1) return pointwise_side_by_side(pw, x, scale, shift, gate, res, y);
  pointwise_planes(pw, x, scale, shift, gate, res, y);
}

// Training 1x1 conv with G equal groups: the groups' weights concatenated, (Cout, Cin / G, 1, 1).
struct Grouped {
  int64_t n, cin, cout, p, groups, cpg, opg;
};

bool make_grouped(const float *meta, int64_t meta_len, const int64_t *xs, const int64_t *ws, int wdims, Grouped *g) {
  if (meta_len != 1 || wdims != 4 || ws[2] * ws[3] != 1) return false;
  g->groups = static_cast<int64_t>(meta[0]);
  g->n = xs[0];
  g->cin = xs[1];
  g->p = xs[2] * xs[3];
  g->cout = ws[0];
  if (g->groups < 1 || g->cin % g->groups || g->cout % g->groups) return false;
  g->cpg = g->cin / g->groups;
  g->opg = g->cout / g->groups;
  return ws[1] == g->cpg;
}

// The plain product y = W x for the grouped weights w (rows of cin_per_row), as a Pointwise problem.
void grouped_product(const Grouped &g, int64_t cin, int64_t cout, const float *w, const float *x, float *y) {
  Pointwise pw;
  pw.n = g.n;
  pw.cin = cin;
  pw.cout = cout;
  pw.p = g.p;
  pw.act = kNone;
  pw.se_act = kNone;
  pw.eps = 0.f;
  pw.se = pw.residual = pw.pooled = false;
  const int64_t in_g = cin / g.groups, out_g = cout / g.groups;
  for (int64_t k = 0; k < g.groups; ++k) pw.segs.push_back({k * in_g, in_g, k * out_g, out_g, w + k * out_g * in_g});
  std::vector<float> ones(cout, 1.f), zeros(cout, 0.f);
  pointwise(pw, x, ones.data(), zeros.data(), nullptr, nullptr, y);
}

// out[r][c] += sum over images and the n positions of a_r * b_c, for R rows of a and C rows of b
// (row strides lda, ldb; image strides sa, sb): vector partial sums across all images, one
// horizontal reduction per pair at the end.
template <int R, int C>
void outer_tile(const float *a, int64_t lda, int64_t sa, const float *b, int64_t ldb, int64_t sb, int64_t n,
                int64_t images, float *out, int64_t ldo) {
  v16 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = (v16){};
  float tail[R][C] = {};
  for (int64_t img = 0; img < images; ++img, a += sa, b += sb) {
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes) {
      v16 bv[C];
      for (int c = 0; c < C; ++c) bv[c] = load(b + c * ldb + j);
      for (int r = 0; r < R; ++r) {
        const v16 av = load(a + r * lda + j);
        for (int c = 0; c < C; ++c) acc[r][c] += av * bv[c];
      }
    }
    for (; j < n; ++j)
      for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) tail[r][c] += a[r * lda + j] * b[c * ldb + j];
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float t = tail[r][c];
      for (int64_t l = 0; l < kLanes; ++l) t += acc[r][c][l];
      out[r * ldo + c] += t;
    }
}

// Edge tiles (fewer than 4 rows or columns) one pair at a time.
void outer_edge(int64_t rows, int64_t cols, const float *a, int64_t lda, int64_t sa, const float *b, int64_t ldb,
                int64_t sb, int64_t n, int64_t images, float *out, int64_t ldo) {
  for (int64_t img = 0; img < images; ++img, a += sa, b += sb)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) out[r * ldo + c] += dot_n(a + r * lda, b + c * ldb, n);
}

// dw[o][i] = sum over images and positions of dy[o] * x[i] within each group. Item = (group, 4 output
// rows, 4 input columns, range of images); with several image ranges each range sums into its own
// copy of dw, and the copies are added up in range order at the end, so the result does not depend
// on which thread took which item.
void grouped_weight_grad(const Grouped &g, const float *x, const float *dy, float *dw) {
  Pool &pool = Pool::instance();
  const int64_t ob = (g.opg + 3) / 4, ib = (g.cpg + 3) / 4, tiles = g.groups * ob * ib;
  const int64_t chunks = tiles >= kGradItems ? 1 : std::min(g.n, (kGradItems + tiles - 1) / tiles);
  const int64_t per_chunk = (g.n + chunks - 1) / chunks, total = g.cout * g.cpg;
  std::vector<float> acc(chunks > 1 ? chunks * total : 0, 0.f);
  std::memset(dw, 0, sizeof(float) * total);
  pool.run(tiles * chunks, [&](int64_t item, int64_t) {
    const int64_t tile = item / chunks, chunk = item % chunks;
    const int64_t k = tile / (ob * ib), o0 = ((tile / ib) % ob) * 4, i0 = (tile % ib) * 4;
    const int64_t rows = std::min<int64_t>(4, g.opg - o0), cols = std::min<int64_t>(4, g.cpg - i0);
    float *out = (chunks > 1 ? acc.data() + chunk * total : dw) + (k * g.opg + o0) * g.cpg + i0;
    const int64_t img0 = chunk * per_chunk, images = std::min(g.n, img0 + per_chunk) - img0;
    if (images <= 0) return;
    const float *a = dy + (img0 * g.cout + k * g.opg + o0) * g.p;
    const float *b = x + (img0 * g.cin + k * g.cpg + i0) * g.p;
    if (rows == 4 && cols == 4) {
      outer_tile<4, 4>(a, g.p, g.cout * g.p, b, g.p, g.cin * g.p, g.p, images, out, g.cpg);
    } else {
      outer_edge(rows, cols, a, g.p, g.cout * g.p, b, g.p, g.cin * g.p, g.p, images, out, g.cpg);
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
int backward_grouped(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, Grouped *g) {
  if (nparam != 5 || ndims[0] != 1 || ndims[1] != 4 || ndims[2] != 4 || !all_float32(nparam, dtypes)) return 1;
  if (!make_grouped(static_cast<const float *>(params[0]), shapes[0][0], shapes[2], shapes[3], ndims[3], g)) return 2;
  return 0;
}

}  // namespace
}  // namespace mixnet

extern "C" int PointwiseForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  (void)stream;
  (void)extra;
  const mixnet::InferenceCall inference;
  using mixnet::Pointwise;
  if (nparam < 8 || ndims[0] != 1 || shapes[0][0] != 6 || ndims[1] != 4 || !mixnet::all_float32(nparam, dtypes)) return 1;
  const float *meta = static_cast<const float *>(params[0]);
  Pointwise pw;
  pw.act = static_cast<int>(meta[0]);
  pw.eps = meta[1];
  pw.se = meta[2] != 0.f;
  pw.se_act = static_cast<int>(meta[3]);
  pw.residual = meta[4] != 0.f;
  pw.pooled = meta[5] != 0.f;
  const int64_t segments = nparam - 7 - (pw.se ? 4 : 0) - (pw.residual ? 1 : 0);
  if (segments < 1 || pw.act < mixnet::kNone || pw.act > mixnet::kSwish || pw.se_act < mixnet::kNone ||
      pw.se_act > mixnet::kSwish || (pw.pooled && pw.residual))
    return 2;
  const int64_t *xs = shapes[1];
  pw.n = xs[0];
  pw.cin = xs[1];
  pw.p = xs[2] * xs[3];
  int64_t cin0 = 0, cout0 = 0;
  for (int64_t s = 0; s < segments; ++s) {
    const int64_t *ws = shapes[2 + s];
    if (ndims[2 + s] != 4 || ws[2] != 1 || ws[3] != 1) return 2;
    pw.segs.push_back({cin0, ws[1], cout0, ws[0], static_cast<const float *>(params[2 + s])});
    cin0 += ws[1];
    cout0 += ws[0];
  }
  pw.cout = cout0;
  if (cin0 != pw.cin) return 2;
  int idx = 2 + static_cast<int>(segments);
  for (int i = idx; i < idx + 4; ++i)
    if (ndims[i] != 1 || shapes[i][0] != pw.cout) return 2;
  std::vector<float> scale(pw.cout), shift(pw.cout), gate;
  mixnet::fold_batch_norm(static_cast<const float *>(params[idx]), static_cast<const float *>(params[idx + 1]),
                          static_cast<const float *>(params[idx + 2]), static_cast<const float *>(params[idx + 3]),
                          pw.eps, pw.cout, scale.data(), shift.data());
  idx += 4;
  if (pw.se) {
    const int64_t *wr = shapes[idx], *br = shapes[idx + 1], *we = shapes[idx + 2], *be = shapes[idx + 3];
    const int64_t reduced = wr[0];
    if (ndims[idx] != 4 || wr[1] != pw.cin || wr[2] * wr[3] != 1 || br[0] != reduced || ndims[idx + 2] != 4 ||
        we[0] != pw.cin || we[1] != reduced || we[2] * we[3] != 1 || be[0] != pw.cin)
      return 2;
    gate.resize(pw.n * pw.cin);
    mixnet::squeeze_excite(pw, static_cast<const float *>(params[1]), static_cast<const float *>(params[idx]),
                           static_cast<const float *>(params[idx + 1]), static_cast<const float *>(params[idx + 2]),
                           static_cast<const float *>(params[idx + 3]), reduced, gate.data());
    idx += 4;
  }
  const float *res = nullptr;
  if (pw.residual) {
    if (ndims[idx] != 4 || shapes[idx][0] != pw.n || shapes[idx][1] != pw.cout || shapes[idx][2] * shapes[idx][3] != pw.p)
      return 2;
    res = static_cast<const float *>(params[idx++]);
  }
  const int64_t *ys = shapes[idx];
  if (pw.pooled ? (ndims[idx] != 2 || ys[0] != pw.n || ys[1] != pw.cout)
                : (ndims[idx] != 4 || ys[0] != pw.n || ys[1] != pw.cout || ys[2] * ys[3] != pw.p))
    return 2;
  mixnet::pointwise(pw, static_cast<const float *>(params[1]), scale.data(), shift.data(),
                    pw.se ? gate.data() : nullptr, res, static_cast<float *>(params[idx]));
  return 0;
}

// Training grouped 1x1 convolution, meta = [G]:
//   PointwiseConvForward(meta, x, w) -> y = W x
//   PointwiseConvBackwardInput(meta, dy, x, w) -> dx = W^T dy   (x for its shape)
//   PointwiseConvBackwardWeight(meta, dy, x, w) -> dw = dy x^T
extern "C" int PointwiseConvForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                    void *stream, void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 4 || ndims[0] != 1 || ndims[1] != 4 || ndims[3] != 4 || !mixnet::all_float32(nparam, dtypes)) return 1;
  mixnet::Grouped g;
  if (!mixnet::make_grouped(static_cast<const float *>(params[0]), shapes[0][0], shapes[1], shapes[2], ndims[2], &g))
    return 2;
  mixnet::grouped_product(g, g.cin, g.cout, static_cast<const float *>(params[2]),
                          static_cast<const float *>(params[1]), static_cast<float *>(params[3]));
  return 0;
}

extern "C" int PointwiseConvBackwardInput(int nparam, void **params, int *ndims, int64_t **shapes,
                                          const char **dtypes, void *stream, void *extra) {
  (void)stream;
  (void)extra;
  mixnet::Grouped g;
  if (const int error = mixnet::backward_grouped(nparam, params, ndims, shapes, dtypes, &g)) return error;
  const float *w = static_cast<const float *>(params[3]);
  std::vector<float> wt(g.cout * g.cpg);  // per group the transpose: (cpg rows of opg)
  for (int64_t k = 0; k < g.groups; ++k)
    for (int64_t o = 0; o < g.opg; ++o)
      for (int64_t i = 0; i < g.cpg; ++i) wt[(k * g.cpg + i) * g.opg + o] = w[(k * g.opg + o) * g.cpg + i];
  mixnet::grouped_product(g, g.cout, g.cin, wt.data(), static_cast<const float *>(params[1]),
                          static_cast<float *>(params[4]));
  return 0;
}

extern "C" int PointwiseConvBackwardWeight(int nparam, void **params, int *ndims, int64_t **shapes,
                                           const char **dtypes, void *stream, void *extra) {
  (void)stream;
  (void)extra;
  mixnet::Grouped g;
  if (const int error = mixnet::backward_grouped(nparam, params, ndims, shapes, dtypes, &g)) return error;
  mixnet::grouped_weight_grad(g, static_cast<const float *>(params[2]), static_cast<const float *>(params[1]),
                              static_cast<float *>(params[4]));
  return 0;
}
