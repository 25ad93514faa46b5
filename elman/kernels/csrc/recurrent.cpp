// One direction of one recurrent layer: the time loop forward, and its hand-written
// backpropagation through time. Everything that does not depend on h_{t-1} lives outside:
// the input projection xp = x W_ih^T + b_ih of all steps is one GEMM before the call (and its
// gradients dx, dW_ih, db_ih one GEMM each after it, by autograd); after the backward loop,
// dW_hh and db_hh are one GEMM / one sum over all steps. Inside the loops: one GEMM with W_hh
// per step and the gate math fused into one pass over (B, H).
//
// Layout: xp (T, B, G*H) contiguous, states (B, H), mask (T, B) of 0/1 (empty: no padding).
// A masked row keeps its state and outputs zeros, so the reverse direction starts at each
// sequence's true end. Steps are visited in reverse when `reverse`.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

// BLAS from the library torch itself links (MKL here): called with raw pointers, a step's
// GEMM costs no tensor or dispatcher overhead, which dominates at small sizes. Weak, so a
// torch built without these symbols still loads this module and takes the ATen fallback.
extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*,
            const float*, const int*, const float*, const int*, const float*, float*,
            const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*,
            const double*, const int*, const double*, const int*, const double*, double*,
            const int*) __attribute__((weak));
}

namespace {

using at::Tensor;

// exp, sigmoid and tanh. In float, a branch-free exp (Cephes' expf: range reduction by
// ln 2, a degree-6 polynomial, 2^n from the exponent bits; ~1 ulp) that the compiler turns
// into SIMD code (with -fno-trapping-math, as torch itself is built), where std::exp stays
// one scalar call per element; in double, std::.
template <typename T>
inline T exp_(T x) {
  return std::exp(x);
}

template <>
inline float exp_(float x) {
  x = x < -87.3f ? -87.3f : x;  // ternaries, not std::min/max: those stay scalar calls
  x = x > 88.3f ? 88.3f : x;
  const float n = std::floor(x * 1.44269504089f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return e * __builtin_bit_cast(float, bits);
}

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + exp_(-x));
}

template <typename T>
inline T tanh_(T x) {
  return std::tanh(x);
}

template <>
inline float tanh_(float x) {
  return 2.0f * sigmoid(2.0f * x) - 1.0f;
}

// BLAS on the columns [c0, c1) of row-major C (rows, cols) = A (rows, inner) op(W) + beta C,
// with op(W) = W^T for W (cols, inner) when `w_transposed`, else W (inner, cols). BLAS is
// column-major, so it computes C^T = op(W)^T A^T.
template <typename T>
void gemm_columns(int64_t rows, int64_t cols, int64_t inner, const T* a, const T* w,
                  bool w_transposed, T beta, T* c, int64_t c0, int64_t c1) {
  const int m = static_cast<int>(c1 - c0), n = static_cast<int>(rows);
  const int k = static_cast<int>(inner), ldc = static_cast<int>(cols);
  const int lda = w_transposed ? k : static_cast<int>(cols), ldb = k;
  const T* wc = w_transposed ? w + c0 * inner : w + c0;
  const char ta = w_transposed ? 'T' : 'N', tb = 'N';
  const T one = 1;
  if constexpr (std::is_same_v<T, float>) {
    if (sgemm_) return sgemm_(&ta, &tb, &m, &n, &k, &one, wc, &lda, a, &ldb, &beta, c + c0, &ldc);
  } else {
    if (dgemm_) return dgemm_(&ta, &tb, &m, &n, &k, &one, wc, &lda, a, &ldb, &beta, c + c0, &ldc);
  }
  auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  Tensor at_ = at::from_blob(const_cast<T*>(a), {rows, inner}, options);
  Tensor wt = w_transposed
                  ? at::from_blob(const_cast<T*>(w), {cols, inner}, options).t()
                  : at::from_blob(const_cast<T*>(w), {inner, cols}, options);
  Tensor ct = at::from_blob(c, {rows, cols}, options).narrow(1, c0, c1 - c0);
  ct.mul_(beta).addmm_(at_, wt.narrow(1, c0, c1 - c0));
}

// C = A op(W) + beta C. A product with a few rows (B <= 4: matrix-vector work, bound by
// reading W) is split by columns over torch's threads, so each core reads its share of W;
// one BLAS call would leave a core idle (MKL does not split products this small).
constexpr int64_t kSplitRows = 4, kSplitWork = 1 << 16;

template <typename T>
void gemm(int64_t rows, int64_t cols, int64_t inner, const T* a, const T* w, bool w_transposed,
          T beta, T* c) {
  const int64_t threads = at::get_num_threads();
  if (threads > 1 && rows <= kSplitRows && cols * inner >= kSplitWork) {
    const int64_t grain = ((cols + threads - 1) / threads + 15) / 16 * 16;
    at::parallel_for(0, cols, grain, [&](int64_t lo, int64_t hi) {
      gemm_columns(rows, cols, inner, a, w, w_transposed, beta, c, lo, hi);
    });
    return;
  }
  gemm_columns(rows, cols, inner, a, w, w_transposed, beta, c, 0, cols);
}

// Runs f(b) for every row b of a step: on torch's threads when the step's rows carry enough
// work to pay for waking them, else in this thread.
constexpr int64_t kParallelWork = 16384;

template <typename F>
inline void for_rows(int64_t batch, int64_t per_row, const F& f) {
  if (batch > 1 && batch * per_row >= kParallelWork) {
    at::parallel_for(0, batch, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) f(b);
    });
  } else {
    for (int64_t b = 0; b < batch; ++b) f(b);
  }
}

inline int64_t time_of(int64_t k, int64_t steps, bool reverse) {
  return reverse ? steps - 1 - k : k;
}

// Whether row b takes part in step t (no mask: always).
template <typename T>
inline bool active(const T* mask, int64_t batch, int64_t t, int64_t b) {
  return mask == nullptr || mask[t * batch + b] != T(0);
}

template <typename T>
const T* mask_ptr(const Tensor& mask) {
  return mask.numel() ? mask.data_ptr<T>() : nullptr;
}

template <typename T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// Copy a row of a step's new state into the carried state (and the output).
template <typename T>
inline void commit(const T* src, T* state, T* out, int64_t n) {
  std::copy(src, src + n, state);
  if (out) std::copy(src, src + n, out);
}

Tensor empty_if(bool keep, at::IntArrayRef shape, const Tensor& like) {
  return keep ? at::empty(shape, like.options()) : Tensor();
}

// The outputs (T, B, H): zeros only where padding leaves rows unwritten. Zero-filling a
// buffer of T*B*H that every step overwrites costs a full extra pass over it.
Tensor outputs(int64_t steps, int64_t batch, int64_t hidden, const Tensor& mask,
               const Tensor& like) {
  return mask.numel() ? at::zeros({steps, batch, hidden}, like.options())
                      : at::empty({steps, batch, hidden}, like.options());
}

template <typename T>
const T* bias_ptr(const Tensor& bias) {
  return bias.numel() ? bias.data_ptr<T>() : nullptr;
}

// C (rows, cols) = bias + A W^T, bias broadcast over rows (none: zero). Folding b_hh into each
// step's product spares a (T, B, G) copy of xp + b_hh, as large as the saved activations.
template <typename T>
void gemm_bias(int64_t rows, int64_t cols, int64_t inner, const T* a, const T* w,
               const T* bias, T* c) {
  if (bias == nullptr) return gemm<T>(rows, cols, inner, a, w, true, 0, c);
  for (int64_t b = 0; b < rows; ++b) std::copy(bias, bias + cols, c + b * cols);
  gemm<T>(rows, cols, inner, a, w, true, 1, c);
}

// ---- the fused gate math of one row (one sequence of the batch) ----------------------------
// Small functions over __restrict__ pointers, so the compiler vectorizes each loop.

// LSTM cell: a = (σ(i), σ(f), tanh(g), σ(o)) of gates + x; c' = f c + i g.
template <typename T>
void lstm_cell_row(const T* __restrict__ gates, const T* __restrict__ x, const T* __restrict__ c,
                   T* __restrict__ a, T* __restrict__ c_new, int64_t H) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigmoid(gates[j] + x[j]);
  for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] = tanh_(gates[j] + x[j]);
  for (int64_t j = 3 * H; j < 4 * H; ++j) a[j] = sigmoid(gates[j] + x[j]);
  for (int64_t j = 0; j < H; ++j) c_new[j] = a[H + j] * c[j] + a[j] * a[2 * H + j];
}

// LSTM: the cell above, then h' = o tanh(c').
template <typename T>
void lstm_row(const T* __restrict__ gates, const T* __restrict__ x, const T* __restrict__ c,
              T* __restrict__ a, T* __restrict__ c_new, T* __restrict__ h_new, int64_t H) {
  lstm_cell_row(gates, x, c, a, c_new, H);
  for (int64_t j = 0; j < H; ++j) h_new[j] = a[3 * H + j] * tanh_(c_new[j]);
}

// LSTM backward: dgates from dh (+ the output's gradient) and dc; dc becomes dc_{t-1}, dh
// zero (the recurrent GEMM adds dgates W_hh to it).
template <typename T>
void lstm_grad_row(const T* __restrict__ a, const T* __restrict__ c_prev,
                   const T* __restrict__ c_new, const T* __restrict__ gout, T* __restrict__ dh,
                   T* __restrict__ dc, T* __restrict__ d, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const T i_ = a[j], f_ = a[H + j], g_ = a[2 * H + j], o_ = a[3 * H + j];
    const T tc = tanh_(c_new[j]);
    const T dht = dh[j] + gout[j];
    const T dct = dc[j] + dht * o_ * (T(1) - tc * tc);
    d[j] = dct * g_ * i_ * (T(1) - i_);
    d[H + j] = dct * c_prev[j] * f_ * (T(1) - f_);
    d[2 * H + j] = dct * i_ * (T(1) - g_ * g_);
    d[3 * H + j] = dht * tc * o_ * (T(1) - o_);
    dc[j] = dct * f_;
    dh[j] = T(0);
  }
}

// GRU: r, z = σ(x + hp + b); hn = hp_n + b_n; n = tanh(x_n + r hn); h' = (1 - z) n + z h.
template <typename T>
void gru_row(const T* __restrict__ x, const T* __restrict__ hp, const T* __restrict__ bias,
             const T* __restrict__ h, T* __restrict__ a, T* __restrict__ hn,
             T* __restrict__ h_new, int64_t H) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigmoid(x[j] + hp[j] + bias[j]);
  for (int64_t j = 0; j < H; ++j) {
    hn[j] = hp[2 * H + j] + bias[2 * H + j];
    a[2 * H + j] = tanh_(x[2 * H + j] + a[j] * hn[j]);
    h_new[j] = (T(1) - a[H + j]) * a[2 * H + j] + a[H + j] * h[j];
  }
}

// GRU backward: dxp and dhp (the recurrent pre-activations' gradient, n part scaled by r);
// dh becomes its direct path dh z (the GEMM adds dhp W_hh).
template <typename T>
void gru_grad_row(const T* __restrict__ a, const T* __restrict__ hn, const T* __restrict__ h,
                  const T* __restrict__ gout, T* __restrict__ dh, T* __restrict__ dx,
                  T* __restrict__ dr, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const T r = a[j], z = a[H + j], n = a[2 * H + j];
    const T dht = dh[j] + gout[j];
    const T dn = dht * (T(1) - z) * (T(1) - n * n);
    const T dz = dht * (h[j] - n) * z * (T(1) - z);
    const T drr = dn * hn[j] * r * (T(1) - r);
    dx[j] = drr;
    dx[H + j] = dz;
    dx[2 * H + j] = dn;
    dr[j] = drr;
    dr[H + j] = dz;
    dr[2 * H + j] = dn * r;
    dh[j] = dht * z;
  }
}

// Elman RNN: v = tanh(pre + x) or max(pre + x, 0) over n values.
template <typename T>
void rnn_act(const T* __restrict__ pre, const T* __restrict__ x, T* __restrict__ v, int64_t n,
             bool relu) {
  if (relu) {
    for (int64_t j = 0; j < n; ++j) v[j] = std::max(pre[j] + x[j], T(0));
  } else {
    for (int64_t j = 0; j < n; ++j) v[j] = tanh_(pre[j] + x[j]);
  }
}

template <typename T>
void rnn_grad_row(const T* __restrict__ v, const T* __restrict__ gout, T* __restrict__ dh,
                  T* __restrict__ dp, int64_t H, bool relu) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) {
      dp[j] = v[j] > T(0) ? dh[j] + gout[j] : T(0);
      dh[j] = T(0);
    }
  } else {
    for (int64_t j = 0; j < H; ++j) {
      dp[j] = (dh[j] + gout[j]) * (T(1) - v[j] * v[j]);
      dh[j] = T(0);
    }
  }
}

// ---- LSTM ---------------------------------------------------------------------------------
// Saved for backward, in time order: acts (T, B, 4H) = i, f, g, o after their nonlinearity;
// h_prev, c_prev (T, B, H) = the state each step read; c_new (T, B, H) = its new cell state.
std::vector<Tensor> lstm_forward(const Tensor& xp, const Tensor& h0, const Tensor& c0,
                                 const Tensor& w_hh, const Tensor& b_hh, const Tensor& mask,
                                 bool reverse, bool train) {
  const int64_t steps = xp.size(0), batch = xp.size(1), hidden = h0.size(1), G = 4 * hidden;
  Tensor xpb = xp.contiguous(), bias = b_hh.contiguous();
  Tensor w = w_hh.contiguous(), h = h0.clone(), c = c0.clone();
  Tensor out = outputs(steps, batch, hidden, mask, xp);
  Tensor acts = empty_if(train, {steps, batch, G}, xp);
  Tensor h_prev = empty_if(train, {steps, batch, hidden}, xp);
  Tensor c_prev = empty_if(train, {steps, batch, hidden}, xp);
  Tensor c_new = empty_if(train, {steps, batch, hidden}, xp);
  Tensor scratch = at::empty({batch, G + 2 * hidden + G}, xp.options());
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "lstm_forward", [&] {
    const scalar_t* m = mask_ptr<scalar_t>(mask);
    const scalar_t* x = xpb.data_ptr<scalar_t>();
    const scalar_t *wp = w.data_ptr<scalar_t>(), *bh = bias_ptr<scalar_t>(bias);
    scalar_t *hs = h.data_ptr<scalar_t>(), *cs = c.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    scalar_t *A = ptr_or_null<scalar_t>(acts), *HP = ptr_or_null<scalar_t>(h_prev);
    scalar_t *CP = ptr_or_null<scalar_t>(c_prev), *CN = ptr_or_null<scalar_t>(c_new);
    scalar_t* gates = scratch.data_ptr<scalar_t>();  // (B, G), then a, c, h of a step
    scalar_t* tmp_a = gates + batch * G;
    scalar_t* tmp_c = tmp_a + batch * G;
    scalar_t* tmp_h = tmp_c + batch * hidden;
    const int64_t BH = batch * hidden, BG = batch * G;
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = time_of(k, steps, reverse);
      if (train) {
        std::copy(hs, hs + BH, HP + t * BH);
        std::copy(cs, cs + BH, CP + t * BH);
      }
      gemm_bias<scalar_t>(batch, G, hidden, hs, wp, bh, gates);  // b_hh + h_{t-1} W_hh^T
      const scalar_t* xt = x + t * BG;
      scalar_t* act = train ? A + t * BG : tmp_a;
      scalar_t* cn = train ? CN + t * BH : tmp_c;
      for_rows(batch, G, [&](int64_t b) {
        const int64_t s = b * hidden;
        lstm_row(gates + b * G, xt + b * G, cs + s, act + b * G, cn + s, tmp_h + s, hidden);
        if (active(m, batch, t, b)) {
          commit(cn + s, cs + s, static_cast<scalar_t*>(nullptr), hidden);
          commit(tmp_h + s, hs + s, op + t * BH + s, hidden);
        }
      });
    }
  });
  return {out, h, c, acts, h_prev, c_prev, c_new};
}

// Gradients of xp, h0, c0, w_hh, b_hh from those of the outputs and the final state.
std::vector<Tensor> lstm_backward(const Tensor& grad_out, const Tensor& grad_h,
                                  const Tensor& grad_c, const Tensor& acts, const Tensor& h_prev,
                                  const Tensor& c_prev, const Tensor& c_new, const Tensor& w_hh,
                                  const Tensor& b_hh, const Tensor& mask, bool reverse) {
  const bool has_bias = b_hh.numel() > 0;
  const int64_t steps = acts.size(0), batch = acts.size(1), hidden = h_prev.size(2);
  const int64_t G = 4 * hidden, BH = batch * hidden, BG = batch * G;
  Tensor dgates = at::empty_like(acts);
  Tensor dh = grad_h.clone(), dc = grad_c.clone();
  Tensor go = grad_out.contiguous(), w = w_hh.contiguous();
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "lstm_backward", [&] {
    const scalar_t* m = mask_ptr<scalar_t>(mask);
    const scalar_t *A = acts.data_ptr<scalar_t>(), *CP = c_prev.data_ptr<scalar_t>();
    const scalar_t *CN = c_new.data_ptr<scalar_t>(), *GO = go.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* DG = dgates.data_ptr<scalar_t>();
    scalar_t *dhs = dh.data_ptr<scalar_t>(), *dcs = dc.data_ptr<scalar_t>();
    for (int64_t k = steps - 1; k >= 0; --k) {
      const int64_t t = time_of(k, steps, reverse);
      const scalar_t *act = A + t * BG, *cprev = CP + t * BH, *cnew = CN + t * BH;
      const scalar_t* gout = GO + t * BH;
      scalar_t* dg = DG + t * BG;
      for_rows(batch, G, [&](int64_t b) {
        scalar_t* d = dg + b * G;
        if (!active(m, batch, t, b)) {  // the state passed through untouched
          std::fill(d, d + G, scalar_t(0));
          return;
        }
        const int64_t s = b * hidden;
        lstm_grad_row(act + b * G, cprev + s, cnew + s, gout + s, dhs + s, dcs + s, d, hidden);
      });
      // dh_{t-1} = dgates_t W_hh (+ the kept dh of masked rows, whose dgates are zero)
      gemm<scalar_t>(batch, hidden, G, dg, wp, false, 1, dhs);
    }
  });
  Tensor flat = dgates.view({steps * batch, G});
  Tensor dw = at::mm(flat.t(), h_prev.reshape({steps * batch, hidden}));
  Tensor dbias = has_bias ? flat.sum(0) : Tensor();
  return {dgates, dh, dc, dw, dbias};
}

// ---- GRU ----------------------------------------------------------------------------------
// Saved: acts (T, B, 3H) = r, z, n; hn (T, B, H) = W_hn h_{t-1} + b_hn; h_prev (T, B, H).
std::vector<Tensor> gru_forward(const Tensor& xp, const Tensor& h0, const Tensor& w_hh,
                                const Tensor& b_hh, const Tensor& mask, bool reverse,
                                bool train) {
  const int64_t steps = xp.size(0), batch = xp.size(1), hidden = h0.size(1), G = 3 * hidden;
  const int64_t BH = batch * hidden, BG = batch * G;
  Tensor xpc = xp.contiguous(), w = w_hh.contiguous(), h = h0.clone();
  Tensor bias = b_hh.numel() ? b_hh.contiguous() : at::zeros({G}, xp.options());
  Tensor out = outputs(steps, batch, hidden, mask, xp);
  Tensor acts = empty_if(train, {steps, batch, G}, xp);
  Tensor hn_all = empty_if(train, {steps, batch, hidden}, xp);
  Tensor h_prev = empty_if(train, {steps, batch, hidden}, xp);
  Tensor scratch = at::empty({2 * BG + 2 * BH}, xp.options());
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "gru_forward", [&] {
    const scalar_t* m = mask_ptr<scalar_t>(mask);
    const scalar_t *x = xpc.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>();
    const scalar_t* bh = bias.data_ptr<scalar_t>();
    scalar_t *hs = h.data_ptr<scalar_t>(), *op = out.data_ptr<scalar_t>();
    scalar_t *A = ptr_or_null<scalar_t>(acts), *HN = ptr_or_null<scalar_t>(hn_all);
    scalar_t* HP = ptr_or_null<scalar_t>(h_prev);
    scalar_t* hp = scratch.data_ptr<scalar_t>();  // (B, G) = h_{t-1} W_hh^T
    scalar_t *tmp_a = hp + BG, *hnew = tmp_a + BG, *tmp_hn = hnew + BH;
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = time_of(k, steps, reverse);
      if (train) std::copy(hs, hs + BH, HP + t * BH);
      gemm<scalar_t>(batch, G, hidden, hs, wp, true, 0, hp);
      const scalar_t* xt = x + t * BG;
      scalar_t* act = train ? A + t * BG : tmp_a;
      scalar_t* hn = train ? HN + t * BH : tmp_hn;
      for_rows(batch, G, [&](int64_t b) {
        const int64_t s = b * hidden;
        gru_row(xt + b * G, hp + b * G, bh, hs + s, act + b * G, hn + s, hnew + s, hidden);
        if (active(m, batch, t, b)) commit(hnew + s, hs + s, op + t * BH + s, hidden);
      });
    }
  });
  return {out, h, acts, hn_all, h_prev};
}

std::vector<Tensor> gru_backward(const Tensor& grad_out, const Tensor& grad_h, const Tensor& acts,
                                 const Tensor& hn_all, const Tensor& h_prev, const Tensor& w_hh,
                                 const Tensor& b_hh, const Tensor& mask, bool reverse) {
  const bool has_bias = b_hh.numel() > 0;
  const int64_t steps = acts.size(0), batch = acts.size(1), hidden = h_prev.size(2);
  const int64_t G = 3 * hidden, BH = batch * hidden, BG = batch * G;
  Tensor dxp = at::empty_like(acts);  // d loss / d xp
  Tensor dhp = at::empty_like(acts);  // d loss / d (W_hh h + b_hh): the n part scaled by r
  Tensor dh = grad_h.clone();
  Tensor go = grad_out.contiguous(), w = w_hh.contiguous();
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "gru_backward", [&] {
    const scalar_t* m = mask_ptr<scalar_t>(mask);
    const scalar_t *A = acts.data_ptr<scalar_t>(), *HN = hn_all.data_ptr<scalar_t>();
    const scalar_t *HP = h_prev.data_ptr<scalar_t>(), *GO = go.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t *DX = dxp.data_ptr<scalar_t>(), *DR = dhp.data_ptr<scalar_t>();
    scalar_t* dhs = dh.data_ptr<scalar_t>();
    for (int64_t k = steps - 1; k >= 0; --k) {
      const int64_t t = time_of(k, steps, reverse);
      const scalar_t *act = A + t * BG, *hn = HN + t * BH, *hprev = HP + t * BH;
      const scalar_t* gout = GO + t * BH;
      scalar_t *dx = DX + t * BG, *dr = DR + t * BG;
      for_rows(batch, G, [&](int64_t b) {
        scalar_t *xb = dx + b * G, *rb = dr + b * G;
        if (!active(m, batch, t, b)) {
          std::fill(xb, xb + G, scalar_t(0));
          std::fill(rb, rb + G, scalar_t(0));
          return;
        }
        const int64_t s = b * hidden;
        gru_grad_row(act + b * G, hn + s, hprev + s, gout + s, dhs + s, xb, rb, hidden);
      });
      gemm<scalar_t>(batch, hidden, G, dr, wp, false, 1, dhs);
    }
  });
  Tensor flat = dhp.view({steps * batch, G});
  Tensor dw = at::mm(flat.t(), h_prev.reshape({steps * batch, hidden}));
  Tensor dbias = has_bias ? flat.sum(0) : Tensor();
  return {dxp, dh, dw, dbias};
}

// ---- Elman RNN ----------------------------------------------------------------------------
// Saved: h_new (T, B, H) = each step's new state (before masking); h_prev (T, B, H).
std::vector<Tensor> rnn_forward(const Tensor& xp, const Tensor& h0, const Tensor& w_hh,
                                const Tensor& b_hh, const Tensor& mask, bool reverse, bool relu,
                                bool train) {
  const int64_t steps = xp.size(0), batch = xp.size(1), hidden = h0.size(1), BH = batch * hidden;
  Tensor xpb = xp.contiguous(), bias = b_hh.contiguous();
  Tensor w = w_hh.contiguous(), h = h0.clone();
  Tensor out = outputs(steps, batch, hidden, mask, xp);
  Tensor h_new = empty_if(train, {steps, batch, hidden}, xp);
  Tensor h_prev = empty_if(train, {steps, batch, hidden}, xp);
  Tensor scratch = at::empty({2 * BH}, xp.options());
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "rnn_forward", [&] {
    const scalar_t* m = mask_ptr<scalar_t>(mask);
    const scalar_t *x = xpb.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>();
    const scalar_t* bh = bias_ptr<scalar_t>(bias);
    scalar_t *hs = h.data_ptr<scalar_t>(), *op = out.data_ptr<scalar_t>();
    scalar_t *HN = ptr_or_null<scalar_t>(h_new), *HP = ptr_or_null<scalar_t>(h_prev);
    scalar_t *pre = scratch.data_ptr<scalar_t>(), *tmp = pre + BH;
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = time_of(k, steps, reverse);
      if (train) std::copy(hs, hs + BH, HP + t * BH);
      gemm_bias<scalar_t>(batch, hidden, hidden, hs, wp, bh, pre);
      const scalar_t* xt = x + t * BH;
      scalar_t* v = train ? HN + t * BH : tmp;
      rnn_act(pre, xt, v, BH, relu);
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t s = b * hidden;
        if (active(m, batch, t, b)) commit(v + s, hs + s, op + t * BH + s, hidden);
      }
    }
  });
  return {out, h, h_new, h_prev};
}

std::vector<Tensor> rnn_backward(const Tensor& grad_out, const Tensor& grad_h, const Tensor& h_new,
                                 const Tensor& h_prev, const Tensor& w_hh, const Tensor& b_hh,
                                 const Tensor& mask, bool reverse, bool relu) {
  const bool has_bias = b_hh.numel() > 0;
  const int64_t steps = h_new.size(0), batch = h_new.size(1), hidden = h_new.size(2);
  const int64_t BH = batch * hidden;
  Tensor dpre = at::empty_like(h_new);
  Tensor dh = grad_h.clone();
  Tensor go = grad_out.contiguous(), w = w_hh.contiguous();
  AT_DISPATCH_FLOATING_TYPES(h_new.scalar_type(), "rnn_backward", [&] {
    const scalar_t* m = mask_ptr<scalar_t>(mask);
    const scalar_t *V = h_new.data_ptr<scalar_t>(), *GO = go.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t *DP = dpre.data_ptr<scalar_t>(), *dhs = dh.data_ptr<scalar_t>();
    for (int64_t k = steps - 1; k >= 0; --k) {
      const int64_t t = time_of(k, steps, reverse);
      const scalar_t *v = V + t * BH, *gout = GO + t * BH;
      scalar_t* dp = DP + t * BH;
      for_rows(batch, hidden, [&](int64_t b) {
        const int64_t s = b * hidden;
        if (!active(m, batch, t, b)) {
          std::fill(dp + s, dp + s + hidden, scalar_t(0));
          return;
        }
        rnn_grad_row(v + s, gout + s, dhs + s, dp + s, hidden, relu);
      });
      gemm<scalar_t>(batch, hidden, hidden, dp, wp, false, 1, dhs);
    }
  });
  Tensor flat = dpre.view({steps * batch, hidden});
  Tensor dw = at::mm(flat.t(), h_prev.reshape({steps * batch, hidden}));
  Tensor dbias = has_bias ? flat.sum(0) : Tensor();
  return {dpre, dh, dw, dbias};
}


// ---- layer norm ------------------------------------------------------------------------------
// Ba, Kiros & Hinton (2016): the recurrent pre-activations a = h W_hh^T are normalized over
// all gates, LN(a) = γ ⊙ (a - μ) / sqrt(σ² + ε); the LSTM also normalizes c_t before its
// tanh, with a shift β_c. Saved per row: â = (a - μ) r and r = 1 / sqrt(σ² + ε).
constexpr double kEps = 1e-5;

// â (n) and r of one row of a, the mean and variance by two passes (SIMD reductions:
// -fopenmp-simd lets the compiler split these sums into lanes, which also keeps float's
// rounding small for rows of a few thousand).
template <typename T>
T normalize_row(const T* __restrict__ a, T* __restrict__ ahat, int64_t n) {
  T sum = 0, sq = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += a[j];
  const T mu = sum / static_cast<T>(n);
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < n; ++j) sq += (a[j] - mu) * (a[j] - mu);
  const T r = static_cast<T>(1.0 / std::sqrt(static_cast<double>(sq) / n + kEps));
  for (int64_t j = 0; j < n; ++j) ahat[j] = (a[j] - mu) * r;
  return r;
}

// da = r (dâ - mean(dâ) - â mean(dâ ⊙ â)), from dy (the gradient of γ ⊙ â + β) and γ.
template <typename T>
void normalize_grad_row(const T* __restrict__ dy, const T* __restrict__ gamma,
                        const T* __restrict__ ahat, T r, T* __restrict__ da, int64_t n) {
  T m1 = 0, m2 = 0;
#pragma omp simd reduction(+ : m1, m2)
  for (int64_t j = 0; j < n; ++j) {
    const T g = dy[j] * gamma[j];
    m1 += g;
    m2 += g * ahat[j];
  }
  const T a1 = m1 / static_cast<T>(n), a2 = m2 / static_cast<T>(n);
  for (int64_t j = 0; j < n; ++j) da[j] = r * (dy[j] * gamma[j] - a1 - ahat[j] * a2);
}

// y = γ ⊙ â (+ β) over n values.
template <typename T>
void scale_row(const T* __restrict__ gamma, const T* __restrict__ ahat,
               const T* __restrict__ beta, T* __restrict__ y, int64_t n) {
  if (beta == nullptr) {
    for (int64_t j = 0; j < n; ++j) y[j] = gamma[j] * ahat[j];
  } else {
    for (int64_t j = 0; j < n; ++j) y[j] = gamma[j] * ahat[j] + beta[j];
  }
}

// h = o ⊙ tanh(γ_c ĉ + β_c).
template <typename T>
void ln_output_row(const T* __restrict__ o, const T* __restrict__ gamma,
                   const T* __restrict__ chat, const T* __restrict__ beta, T* __restrict__ h,
                   int64_t H) {
  for (int64_t j = 0; j < H; ++j) h[j] = o[j] * tanh_(gamma[j] * chat[j] + beta[j]);
}

// Backward of h = o tanh(y): the o gate's gradient and dy (dh plus the output's gradient).
template <typename T>
void ln_output_grad_row(const T* __restrict__ o, const T* __restrict__ gamma,
                        const T* __restrict__ chat, const T* __restrict__ beta,
                        const T* __restrict__ dh, const T* __restrict__ gout, T* __restrict__ d_o,
                        T* __restrict__ dy, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const T ty = tanh_(gamma[j] * chat[j] + beta[j]);
    const T dht = dh[j] + gout[j];
    d_o[j] = dht * ty * o[j] * (T(1) - o[j]);
    dy[j] = dht * o[j] * (T(1) - ty * ty);
  }
}

// Backward of c = f c_prev + i g from dc (carried) + dc_ln (through LN(c)): the i, f, g gate
// gradients; dc becomes dc_{t-1} and dh zero (the GEMM adds da W_hh).
template <typename T>
void ln_cell_grad_row(const T* __restrict__ a, const T* __restrict__ c_prev,
                      const T* __restrict__ dc_ln, T* __restrict__ dc, T* __restrict__ dh,
                      T* __restrict__ d, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const T i_ = a[j], f_ = a[H + j], g_ = a[2 * H + j];
    const T dct = dc[j] + dc_ln[j];
    d[j] = dct * g_ * i_ * (T(1) - i_);
    d[H + j] = dct * c_prev[j] * f_ * (T(1) - f_);
    d[2 * H + j] = dct * i_ * (T(1) - g_ * g_);
    dc[j] = dct * f_;
    dh[j] = T(0);
  }
}

// Layer-norm LSTM. Saved: acts (T, B, 4H); ahat (T, B, 4H) and r_h (T, B) of the recurrent
// LN; h_prev, c_prev (T, B, H); chat (T, B, H) and r_c (T, B) of the cell LN.
std::vector<Tensor> lnlstm_forward(const Tensor& xp, const Tensor& h0, const Tensor& c0,
                                   const Tensor& w_hh, const Tensor& b_hh, const Tensor& g_hh,
                                   const Tensor& g_c, const Tensor& b_c, const Tensor& mask,
                                   bool reverse, bool train) {
  const int64_t steps = xp.size(0), batch = xp.size(1), hidden = h0.size(1), G = 4 * hidden;
  const int64_t BH = batch * hidden, BG = batch * G;
  Tensor xpb = xp.contiguous(), bias = b_hh.contiguous();
  Tensor w = w_hh.contiguous(), h = h0.clone(), c = c0.clone();
  Tensor shift = b_c.numel() ? b_c.contiguous() : at::zeros({hidden}, xp.options());
  Tensor out = outputs(steps, batch, hidden, mask, xp);
  Tensor acts = at::empty({train ? steps : 1, batch, G}, xp.options());
  Tensor ahat = at::empty({train ? steps : 1, batch, G}, xp.options());
  Tensor chat = at::empty({train ? steps : 1, batch, hidden}, xp.options());
  Tensor r_h = at::empty({train ? steps : 1, batch}, xp.options());
  Tensor r_c = at::empty({train ? steps : 1, batch}, xp.options());
  Tensor h_prev = empty_if(train, {steps, batch, hidden}, xp);
  Tensor c_prev = empty_if(train, {steps, batch, hidden}, xp);
  Tensor scratch = at::empty({BG + 2 * BH}, xp.options());
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "lnlstm_forward", [&] {
    const scalar_t* m = mask_ptr<scalar_t>(mask);
    const scalar_t *x = xpb.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>();
    const scalar_t *gh = g_hh.data_ptr<scalar_t>(), *gc = g_c.data_ptr<scalar_t>();
    const scalar_t *bc = shift.data_ptr<scalar_t>(), *bh = bias_ptr<scalar_t>(bias);
    scalar_t *hs = h.data_ptr<scalar_t>(), *cs = c.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    scalar_t *A = acts.data_ptr<scalar_t>(), *AH = ahat.data_ptr<scalar_t>();
    scalar_t *CH = chat.data_ptr<scalar_t>(), *RH = r_h.data_ptr<scalar_t>();
    scalar_t* RC = r_c.data_ptr<scalar_t>();
    scalar_t *HP = ptr_or_null<scalar_t>(h_prev), *CP = ptr_or_null<scalar_t>(c_prev);
    scalar_t* a_h = scratch.data_ptr<scalar_t>();  // (B, G) = h W_hh^T
    scalar_t *cn = a_h + BG, *hn = cn + BH;
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = time_of(k, steps, reverse), u = train ? t : 0;
      if (train) {
        std::copy(hs, hs + BH, HP + t * BH);
        std::copy(cs, cs + BH, CP + t * BH);
      }
      gemm<scalar_t>(batch, G, hidden, hs, wp, true, 0, a_h);
      for_rows(batch, G, [&](int64_t b) {
        const int64_t s = b * hidden, q = b * G;
        scalar_t *ah = AH + u * BG + q, *act = A + u * BG + q, *xc = CH + u * BH + s;
        RH[u * batch + b] = normalize_row(a_h + q, ah, G);
        scale_row(gh, ah, bh, a_h + q, G);  // γ_hh ⊙ â + b_hh
        lstm_cell_row(a_h + q, x + t * BG + q, cs + s, act, cn + s, hidden);
        RC[u * batch + b] = normalize_row(cn + s, xc, hidden);  // h reads LN(c), below
        ln_output_row(act + 3 * hidden, gc, xc, bc, hn + s, hidden);
        if (active(m, batch, t, b)) {
          commit(cn + s, cs + s, static_cast<scalar_t*>(nullptr), hidden);
          commit(hn + s, hs + s, op + t * BH + s, hidden);
        }
      });
    }
  });
  return {out, h, c, acts, ahat, r_h, h_prev, c_prev, chat, r_c};
}

std::vector<Tensor> lnlstm_backward(const Tensor& grad_out, const Tensor& grad_h,
                                    const Tensor& grad_c, const Tensor& acts, const Tensor& ahat,
                                    const Tensor& r_h, const Tensor& h_prev, const Tensor& c_prev,
                                    const Tensor& chat, const Tensor& r_c, const Tensor& w_hh,
                                    const Tensor& b_hh, const Tensor& g_hh, const Tensor& g_c,
                                    const Tensor& b_c, const Tensor& mask, bool reverse) {
  const int64_t steps = acts.size(0), batch = acts.size(1), hidden = h_prev.size(2);
  const int64_t G = 4 * hidden, BH = batch * hidden, BG = batch * G;
  Tensor dgates = at::empty_like(acts), da = at::empty_like(acts);
  Tensor dh = grad_h.clone(), dc = grad_c.clone();
  Tensor go = grad_out.contiguous(), w = w_hh.contiguous();
  Tensor shift = b_c.numel() ? b_c.contiguous() : at::zeros({hidden}, acts.options());
  Tensor dys = at::zeros({steps, batch, hidden}, acts.options());  // d(γ_c ĉ + β_c), per row
  Tensor scratch = at::empty({batch, hidden}, acts.options());
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "lnlstm_backward", [&] {
    const scalar_t* m = mask_ptr<scalar_t>(mask);
    const scalar_t *A = acts.data_ptr<scalar_t>(), *AH = ahat.data_ptr<scalar_t>();
    const scalar_t *RH = r_h.data_ptr<scalar_t>(), *CP = c_prev.data_ptr<scalar_t>();
    const scalar_t *CH = chat.data_ptr<scalar_t>(), *RC = r_c.data_ptr<scalar_t>();
    const scalar_t *GO = go.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>();
    const scalar_t *gh = g_hh.data_ptr<scalar_t>(), *gc = g_c.data_ptr<scalar_t>();
    const scalar_t* bc = shift.data_ptr<scalar_t>();
    scalar_t *DG = dgates.data_ptr<scalar_t>(), *DA = da.data_ptr<scalar_t>();
    scalar_t *dhs = dh.data_ptr<scalar_t>(), *dcs = dc.data_ptr<scalar_t>();
    scalar_t *DY = dys.data_ptr<scalar_t>(), *DCL = scratch.data_ptr<scalar_t>();
    for (int64_t k = steps - 1; k >= 0; --k) {
      const int64_t t = time_of(k, steps, reverse);
      for_rows(batch, G, [&](int64_t b) {
        const int64_t s = t * BH + b * hidden, q = t * BG + b * G;
        scalar_t *d = DG + q, *dab = DA + q;
        if (!active(m, batch, t, b)) {
          std::fill(d, d + G, scalar_t(0));
          std::fill(dab, dab + G, scalar_t(0));
          return;
        }
        const scalar_t *a = A + q, *xc = CH + s, *gout = GO + s;
        scalar_t *dhb = dhs + b * hidden, *dcb = dcs + b * hidden;
        scalar_t *dy = DY + s, *dcl = DCL + b * hidden;
        ln_output_grad_row(a + 3 * hidden, gc, xc, bc, dhb, gout, d + 3 * hidden, dy, hidden);
        normalize_grad_row(dy, gc, xc, RC[t * batch + b], dcl, hidden);
        ln_cell_grad_row(a, CP + s, dcl, dcb, dhb, d, hidden);
        normalize_grad_row(d, gh, AH + q, RH[t * batch + b], dab, G);
      });
      gemm<scalar_t>(batch, hidden, G, DA + t * BG, wp, false, 1, dhs);
    }
  });
  Tensor flat = dgates.view({steps * batch, G});
  Tensor dw = at::mm(da.view({steps * batch, G}).t(), h_prev.reshape({steps * batch, hidden}));
  Tensor dbias = b_hh.numel() ? flat.sum(0) : Tensor();
  Tensor d_gh = (flat * ahat.view({steps * batch, G})).sum(0);
  Tensor dy_flat = dys.view({steps * batch, hidden});
  Tensor d_gc = (dy_flat * chat.view({steps * batch, hidden})).sum(0);
  return {dgates, dh, dc, dw, dbias, d_gh, d_gc, b_c.numel() ? dy_flat.sum(0) : Tensor()};
}

// Layer-norm GRU. Saved: acts (T, B, 3H); ahat (T, B, 3H), r_h (T, B); hn (T, B, H) = the
// normalized n part plus b_hn; h_prev (T, B, H).
std::vector<Tensor> lngru_forward(const Tensor& xp, const Tensor& h0, const Tensor& w_hh,
                                  const Tensor& b_hh, const Tensor& g_hh, const Tensor& mask,
                                  bool reverse, bool train) {
  const int64_t steps = xp.size(0), batch = xp.size(1), hidden = h0.size(1), G = 3 * hidden;
  const int64_t BH = batch * hidden, BG = batch * G;
  Tensor xpc = xp.contiguous(), w = w_hh.contiguous(), h = h0.clone();
  Tensor bias = b_hh.numel() ? b_hh.contiguous() : at::zeros({G}, xp.options());
  Tensor out = outputs(steps, batch, hidden, mask, xp);
  Tensor acts = at::empty({train ? steps : 1, batch, G}, xp.options());
  Tensor ahat = at::empty({train ? steps : 1, batch, G}, xp.options());
  Tensor hn_all = at::empty({train ? steps : 1, batch, hidden}, xp.options());
  Tensor r_h = at::empty({train ? steps : 1, batch}, xp.options());
  Tensor h_prev = empty_if(train, {steps, batch, hidden}, xp);
  Tensor scratch = at::empty({BG + BH}, xp.options());
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "lngru_forward", [&] {
    const scalar_t* m = mask_ptr<scalar_t>(mask);
    const scalar_t *x = xpc.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>();
    const scalar_t *bh = bias.data_ptr<scalar_t>(), *gh = g_hh.data_ptr<scalar_t>();
    scalar_t *hs = h.data_ptr<scalar_t>(), *op = out.data_ptr<scalar_t>();
    scalar_t *A = acts.data_ptr<scalar_t>(), *AH = ahat.data_ptr<scalar_t>();
    scalar_t *HN = hn_all.data_ptr<scalar_t>(), *RH = r_h.data_ptr<scalar_t>();
    scalar_t* HP = ptr_or_null<scalar_t>(h_prev);
    scalar_t *a_h = scratch.data_ptr<scalar_t>(), *hnew = a_h + BG;
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = time_of(k, steps, reverse), u = train ? t : 0;
      if (train) std::copy(hs, hs + BH, HP + t * BH);
      gemm<scalar_t>(batch, G, hidden, hs, wp, true, 0, a_h);
      for_rows(batch, G, [&](int64_t b) {
        const int64_t s = b * hidden, q = b * G;
        scalar_t* ah = AH + u * BG + q;
        RH[u * batch + b] = normalize_row(a_h + q, ah, G);
        scale_row(gh, ah, static_cast<const scalar_t*>(nullptr), a_h + q, G);  // γ_hh ⊙ â
        gru_row(x + t * BG + q, a_h + q, bh, hs + s, A + u * BG + q, HN + u * BH + s, hnew + s,
                hidden);
        if (active(m, batch, t, b)) commit(hnew + s, hs + s, op + t * BH + s, hidden);
      });
    }
  });
  return {out, h, acts, ahat, r_h, hn_all, h_prev};
}

std::vector<Tensor> lngru_backward(const Tensor& grad_out, const Tensor& grad_h,
                                   const Tensor& acts, const Tensor& ahat, const Tensor& r_h,
                                   const Tensor& hn_all, const Tensor& h_prev, const Tensor& w_hh,
                                   const Tensor& b_hh, const Tensor& g_hh, const Tensor& mask,
                                   bool reverse) {
  const int64_t steps = acts.size(0), batch = acts.size(1), hidden = h_prev.size(2);
  const int64_t G = 3 * hidden, BH = batch * hidden, BG = batch * G;
  Tensor dxp = at::empty_like(acts), dhp = at::empty_like(acts), da = at::empty_like(acts);
  Tensor dh = grad_h.clone();
  Tensor go = grad_out.contiguous(), w = w_hh.contiguous();
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "lngru_backward", [&] {
    const scalar_t* m = mask_ptr<scalar_t>(mask);
    const scalar_t *A = acts.data_ptr<scalar_t>(), *AH = ahat.data_ptr<scalar_t>();
    const scalar_t *RH = r_h.data_ptr<scalar_t>(), *HN = hn_all.data_ptr<scalar_t>();
    const scalar_t *HP = h_prev.data_ptr<scalar_t>(), *GO = go.data_ptr<scalar_t>();
    const scalar_t *wp = w.data_ptr<scalar_t>(), *gh = g_hh.data_ptr<scalar_t>();
    scalar_t *DX = dxp.data_ptr<scalar_t>(), *DR = dhp.data_ptr<scalar_t>();
    scalar_t *DA = da.data_ptr<scalar_t>(), *dhs = dh.data_ptr<scalar_t>();
    for (int64_t k = steps - 1; k >= 0; --k) {
      const int64_t t = time_of(k, steps, reverse);
      for_rows(batch, G, [&](int64_t b) {
        const int64_t s = t * BH + b * hidden, q = t * BG + b * G;
        if (!active(m, batch, t, b)) {
          std::fill(DX + q, DX + q + G, scalar_t(0));
          std::fill(DR + q, DR + q + G, scalar_t(0));
          std::fill(DA + q, DA + q + G, scalar_t(0));
          return;
        }
        gru_grad_row(A + q, HN + s, HP + s, GO + s, dhs + b * hidden, DX + q, DR + q, hidden);
        normalize_grad_row(DR + q, gh, AH + q, RH[t * batch + b], DA + q, G);
      });
      gemm<scalar_t>(batch, hidden, G, DA + t * BG, wp, false, 1, dhs);
    }
  });
  Tensor flat = dhp.view({steps * batch, G});
  Tensor dw = at::mm(da.view({steps * batch, G}).t(), h_prev.reshape({steps * batch, hidden}));
  Tensor dbias = b_hh.numel() ? flat.sum(0) : Tensor();
  Tensor d_gh = (flat * ahat.view({steps * batch, G})).sum(0);
  return {dxp, dh, dw, dbias, d_gh};
}


// ---- one step from the raw input, for streaming at small batches ----------------------------
// No autograd: both products straight into one gates buffer, then the row math above; a
// step costs two BLAS calls and one pass, where torch's cell ops launch several kernels.
std::vector<Tensor> cell_step(const std::string& mode, const Tensor& x, const Tensor& h,
                              const Tensor& c, const Tensor& w_ih, const Tensor& w_hh,
                              const Tensor& b_ih, const Tensor& b_hh) {
  const int64_t batch = x.size(0), inputs = x.size(1), hidden = h.size(1);
  const int64_t G = w_ih.size(0);
  Tensor xc = x.contiguous(), hc = h.contiguous(), wi = w_ih.contiguous(), wh = w_hh.contiguous();
  Tensor cc = mode == "LSTM" ? c.contiguous() : c;  // a state may come as a strided view
  Tensor zeros = at::zeros({G}, x.options());
  Tensor bi = b_ih.numel() ? b_ih.contiguous() : zeros, bh = b_hh.numel() ? b_hh.contiguous() : zeros;
  Tensor gx = at::empty({batch, G}, x.options()), gh = at::empty({batch, G}, x.options());
  Tensor h_new = at::empty({batch, hidden}, x.options());
  Tensor c_new = mode == "LSTM" ? at::empty({batch, hidden}, x.options()) : Tensor();
  Tensor scratch = at::empty({G + hidden}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cell_step", [&] {
    const scalar_t *xp = xc.data_ptr<scalar_t>(), *hp = hc.data_ptr<scalar_t>();
    const scalar_t *bip = bi.data_ptr<scalar_t>(), *bhp = bh.data_ptr<scalar_t>();
    scalar_t *gxp = gx.data_ptr<scalar_t>(), *ghp = gh.data_ptr<scalar_t>();
    scalar_t *hn = h_new.data_ptr<scalar_t>(), *a = scratch.data_ptr<scalar_t>();
    for (int64_t b = 0; b < batch; ++b) std::copy(bip, bip + G, gxp + b * G);  // b_ih
    gemm<scalar_t>(batch, G, inputs, xp, wi.data_ptr<scalar_t>(), true, 1, gxp);
    if (mode == "GRU") {  // r gates the recurrent n part, so the products stay apart
      gemm<scalar_t>(batch, G, hidden, hp, wh.data_ptr<scalar_t>(), true, 0, ghp);
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t s = b * hidden;
        gru_row(gxp + b * G, ghp + b * G, bhp, hp + s, a, a + G, hn + s, hidden);
      }
      return;
    }
    gemm<scalar_t>(batch, G, hidden, hp, wh.data_ptr<scalar_t>(), true, 1, gxp);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t s = b * hidden;
      if (mode == "LSTM") {
        lstm_row(gxp + b * G, bhp, cc.data_ptr<scalar_t>() + s, a, c_new.data_ptr<scalar_t>() + s,
                 hn + s, hidden);
      } else {
        rnn_act(gxp + b * G, bhp, hn + s, hidden, mode == "RNN_RELU");
      }
    }
  });
  return {h_new, c_new};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstm_forward);
  m.def("lstm_backward", &lstm_backward);
  m.def("gru_forward", &gru_forward);
  m.def("gru_backward", &gru_backward);
  m.def("rnn_forward", &rnn_forward);
  m.def("rnn_backward", &rnn_backward);
  m.def("lnlstm_forward", &lnlstm_forward);
  m.def("lnlstm_backward", &lnlstm_backward);
  m.def("lngru_forward", &lngru_forward);
  m.def("lngru_backward", &lngru_backward);
  m.def("cell_step", &cell_step);
}
