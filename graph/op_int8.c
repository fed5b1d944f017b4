/* Ops on int8 tensors (engine int8).
 * A residual Add whose two inputs were dequantized and whose result (after
 * an optional Relu) is quantized again runs as one pass over the int8 bytes:
 *   y = saturate(round(act(a * sa + b * sb) / sy) + zy)
 * the same float arithmetic as DQ, Add, Relu and Q one after the other.
 * GlobalAveragePool of a dequantized tensor sums the codes as integers
 * (exact) and scales once: y = sum(q) * s / (H * W). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "graph/internal.h"
#include "qcal/kernels.h"

__attribute__((target("avx512f,avx512bw,avx512vl"))) static size_t
add8_avx512(const int8_t *a, const int8_t *b, size_t n, float sa, float sb, float sy, float zy,
            bool relu, int8_t *y) {
  const __m512 va = _mm512_set1_ps(sa), vb = _mm512_set1_ps(sb), vy = _mm512_set1_ps(sy);
  const __m512 vz = _mm512_set1_ps(zy), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
  const __m512 zero = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 fa = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(a + i))));
    __m512 fb = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + i))));
    /* as the scalar loop: a * sa rounded, then + b * sb (no fused multiply-add) */
    __m512 v = _mm512_add_ps(_mm512_mul_ps(fa, va), _mm512_mul_ps(fb, vb));
    if (relu)
      v = _mm512_max_ps(v, zero);
    __m512 r =
        _mm512_roundscale_ps(_mm512_div_ps(v, vy), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, vz), lo), hi);
    _mm_storeu_si128((__m128i *)(y + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
  }
  return i;
}

static void add8_run(const int8_t *a, const int8_t *b, size_t n, float sa, float sb, float sy,
                     float zy, bool relu, int8_t *y) {
  size_t i =
      qcal_isa_enabled() & QCAL_ISA_AVX512 ? add8_avx512(a, b, n, sa, sb, sy, zy, relu, y) : 0;
  for (; i < n; i++) {
    float pa = (float)a[i] * sa, pb = (float)b[i] * sb;
    float v = pa + pb;
    v = relu && v < 0 ? 0 : v;
    float r = rintf(v / sy) + zy;
    r = r < -128.0f ? -128.0f : r > 127.0f ? 127.0f : r;
    y[i] = (int8_t)r;
  }
}

qcal_status qcal_fwd_add_int8(qcal_graph *g, qcal_node *n) {
  const qcal_value *a = qcal_in(g, n, 0), *b = qcal_in(g, n, 1);
  qcal_value *y = qcal_out(g, n, 0);
  const size_t chunk = 16384, total = y->numel;
  const long nchunks = (long)((total + chunk - 1) / chunk);
  const bool relu = n->act == QCAL_ACT_RELU;
#pragma omp parallel for schedule(static) if (nchunks > 4)
  for (long c = 0; c < nchunks; c++) {
    size_t o = (size_t)c * chunk, m = total - o < chunk ? total - o : chunk;
    add8_run((const int8_t *)a->data + o, (const int8_t *)b->data + o, m, n->qscale[0],
             n->qscale[1], n->qyscale, n->qyzero, relu, (int8_t *)y->data + o);
  }
  return QCAL_OK;
}

/* Sum of n codes at stride `step` (u8 when u, else s8). */
static int64_t sum_codes(const uint8_t *p, size_t n, size_t step, bool u) {
  int64_t s = 0;
  for (size_t i = 0; i < n; i++)
    s += u ? (int64_t)p[i * step] : (int64_t)(int8_t)p[i * step];
  return s;
}

qcal_status qcal_fwd_gap_int8(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  float *y = qcal_out(g, n, 0)->data;
  const int64_t N = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
  const uint8_t *xd = x->data;
  const bool u = x->dtype == QCAL_DT_U8;
  const float s = n->qscale[0], hw = (float)HW;
  if (x->fmt) { /* [N][H][W][C]: whole pixels, channels in int32 lanes */
#pragma omp parallel for if (x->numel > 65536)
    for (int64_t nn = 0; nn < N; nn++) {
      int32_t acc[4096];
      for (int64_t c0 = 0; c0 < C; c0 += 4096) {
        int64_t cn = C - c0 < 4096 ? C - c0 : 4096;
        memset(acc, 0, (size_t)cn * sizeof *acc);
        for (int64_t p = 0; p < HW; p++) {
          const uint8_t *row = xd + (nn * HW + p) * C + c0;
          if (u)
            for (int64_t c = 0; c < cn; c++)
              acc[c] += row[c];
          else
            for (int64_t c = 0; c < cn; c++)
              acc[c] += (int8_t)row[c];
        }
        for (int64_t c = 0; c < cn; c++)
          y[nn * C + c0 + c] = (float)acc[c] * s / hw;
      }
    }
    return QCAL_OK;
  }
#pragma omp parallel for if (x->numel > 65536)
  for (int64_t p = 0; p < N * C; p++)
    y[p] = (float)sum_codes(xd + p * HW, (size_t)HW, 1, u) * s / hw;
  return QCAL_OK;
}

/* DQ then Q of one max code: (q * sa) / sy, round half to even, saturate. */
static inline int8_t requant_code(int32_t q, float sa, float sy) {
  float r = rintf(((float)q * sa) / sy);
  return (int8_t)(r < -128.0f ? -128.0f : r > 127.0f ? 127.0f : r);
}

/* One output row, channels last on both sides: 64 channels at a time (the
 * tail masked), the window's max by byte compares, then the requantization
 * 16 lanes at a time. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
maxpool8_row_avx512(const uint8_t *x, int8_t *y, int64_t C, int64_t H, int64_t W, int64_t OW,
                    const qcal_geom *ge, int64_t oy, bool u, float sa, float sy) {
  const __m512 va = _mm512_set1_ps(sa), vy = _mm512_set1_ps(sy);
  const __m512 lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
  for (int64_t ox = 0; ox < OW; ox++)
    for (int64_t c = 0; c < C; c += 64) {
      __mmask64 m = C - c >= 64 ? ~0ull : ((1ull << (C - c)) - 1ull);
      __m512i mx = _mm512_set1_epi8(u ? 0 : (char)-128);
      for (int64_t ky = 0; ky < ge->k[0]; ky++) {
        int64_t yy = oy * ge->s[0] - ge->pb[0] + ky * ge->d[0];
        if (yy < 0 || yy >= H)
          continue;
        for (int64_t kx = 0; kx < ge->k[1]; kx++) {
          int64_t xx = ox * ge->s[1] - ge->pb[1] + kx * ge->d[1];
          if (xx < 0 || xx >= W)
            continue;
          __m512i v = _mm512_maskz_loadu_epi8(m, x + (yy * W + xx) * C + c);
          mx = u ? _mm512_max_epu8(mx, v) : _mm512_max_epi8(mx, v);
        }
      }
      uint8_t codes[64];
      _mm512_storeu_si512(codes, mx);
      for (int k = 0; k < 4 && c + 16 * k < C; k++) {
        __m128i b = _mm_loadu_si128((const __m128i *)(codes + 16 * k));
        __m512i q = u ? _mm512_cvtepu8_epi32(b) : _mm512_cvtepi8_epi32(b);
        __m512 r = _mm512_div_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q), va), vy);
        r = _mm512_roundscale_ps(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
        int64_t left = C - c - 16 * k;
        _mm_mask_storeu_epi8(y + ox * C + c + 16 * k,
                             left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u),
                             _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
      }
    }
}

qcal_status qcal_fwd_maxpool_int8(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  qcal_geom ge;
  QCAL_TRY(qcal_geom_parse(g, n, x, NULL, false, true, &ge));
  const int64_t N = x->shape[0], C = x->shape[1], H = ge.in[0], W = ge.in[1];
  const int64_t OH = ge.out[0], OW = ge.out[1];
  const bool u = x->dtype == QCAL_DT_U8, xl = x->fmt != NULL, yl = y->fmt != NULL;
  const float sa = n->qscale[0], sy = n->qyscale;
  const uint8_t *xd = x->data;
  int8_t *yd = y->data;
  const bool simd = xl && yl && (qcal_isa_enabled() & QCAL_ISA_AVX512);
#pragma omp parallel for collapse(2) if (y->numel > 65536)
  for (int64_t nn = 0; nn < N; nn++)
    for (int64_t oy = 0; oy < OH; oy++) {
      if (simd) {
        maxpool8_row_avx512(xd + nn * H * W * C, yd + (nn * OH + oy) * OW * C, C, H, W, OW, &ge, oy,
                            u, sa, sy);
        continue;
      }
      for (int64_t ox = 0; ox < OW; ox++)
        for (int64_t c = 0; c < C; c++) {
          int32_t m = u ? 0 : -128;
          for (int64_t ky = 0; ky < ge.k[0]; ky++) {
            int64_t yy = oy * ge.s[0] - ge.pb[0] + ky * ge.d[0];
            for (int64_t kx = 0; kx < ge.k[1] && yy >= 0 && yy < H; kx++) {
              int64_t xx = ox * ge.s[1] - ge.pb[1] + kx * ge.d[1];
              if (xx < 0 || xx >= W)
                continue;
              uint8_t b =
                  xd[xl ? ((nn * H + yy) * W + xx) * C + c : ((nn * C + c) * H + yy) * W + xx];
              int32_t v = u ? (int32_t)b : (int32_t)(int8_t)b;
              m = v > m ? v : m;
            }
          }
          yd[yl ? ((nn * OH + oy) * OW + ox) * C + c : ((nn * C + c) * OH + oy) * OW + ox] =
              requant_code(m, sa, sy);
        }
    }
  return QCAL_OK;
}
