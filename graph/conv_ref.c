/* Reference convolution: channels-last im2col + BLAS sgemm (none for 1x1
 * stride-1 kernels), depthwise by direct loops over contiguous channels, then
 * bias, fused residual and activation. Its arithmetic does not depend on the
 * CPU's vector ISA the way oneDNN's kernel choice does, so analysis that is
 * sensitive to the last bit (8-bit end-to-end runs, where one rounding flip
 * propagates) is reproducible across machines; it is also the independent
 * computation the oneDNN path is tested against. Selected by
 * qcal_graph_opts.reference_conv (or QCAL_CONV_REF=1). */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

typedef struct ref_exec {
  float *hwio;      /* weights [kh][kw][cin/group][cout] */
  const void *from; /* converted from this buffer ... */
  unsigned gen;     /* ... of this qcal_value.data_gen */
  float *nhwc_in, *nhwc_out, *cols;
  size_t in_len, out_len, cols_len;
} ref_exec;

static void ref_free(void *p) {
  ref_exec *e = p;
  if (!e)
    return;
  qcal_free(e->hwio);
  qcal_free(e->nhwc_in);
  qcal_free(e->nhwc_out);
  qcal_free(e->cols);
  free(e);
}

static qcal_status grow(float **buf, size_t *len, size_t need) {
  if (need <= *len)
    return QCAL_OK;
  qcal_free(*buf);
  *len = 0;
  if (!(*buf = qcal_alloc((need ? need : 1) * sizeof(float))))
    return qcal_error(QCAL_ENOMEM, "out of memory");
  *len = need;
  return QCAL_OK;
}

/* [rows][cols] -> [cols][rows] in 8 x 8 tiles: a tile touches 8 lines on
 * each side, within L1 associativity even when a stride is a multiple of
 * 4 KiB (128 x 128 feature maps), where wider tiles thrash one cache set.
 * Serial: this path runs beside OpenBLAS's own threads, and an OpenMP team
 * spinning next to them halves both. */
static void transpose(const float *src, float *dst, size_t rows, size_t cols) {
  enum { T = 8 };
  for (size_t r0 = 0; r0 < rows; r0 += T)
    for (size_t c0 = 0; c0 < cols; c0 += T) {
      size_t r1 = r0 + T < rows ? r0 + T : rows, c1 = c0 + T < cols ? c0 + T : cols;
      for (size_t c = c0; c < c1; c++)
        for (size_t r = r0; r < r1; r++)
          dst[c * rows + r] = src[r * cols + c];
    }
}

/* o += s * k over contiguous channels: the depthwise inner loop. AVX2 where
 * the CPU has it (GCC function multi-versioning picks at load time); the
 * products and sums round as in the scalar loop (no FMA: -ffp-contract=off
 * and no fma target), so the bits do not depend on the version. */
__attribute__((target_clones("avx2", "default"))) static void
madd(float *restrict o, const float *restrict s, const float *restrict k, size_t n) {
  for (size_t c = 0; c < n; c++)
    o[c] += s[c] * k[c];
}

/* The fused activation, serially (see transpose), one loop per kind. */
static void act_serial(qcal_act act, float a, float b, float *x, size_t n) {
#define LOOP(k)                                                                                    \
  case k:                                                                                          \
    for (size_t i = 0; i < n; i++)                                                                 \
      x[i] = qcal_act_one(k, a, b, x[i]);                                                          \
    break;
  switch (act) {
    LOOP(QCAL_ACT_RELU)
    LOOP(QCAL_ACT_CLIP)
    LOOP(QCAL_ACT_SIGMOID)
    LOOP(QCAL_ACT_HARDSWISH)
    LOOP(QCAL_ACT_SWISH)
  default:
    break;
  }
#undef LOOP
}

bool qcal_conv_ref_supported(qcal_graph *g, qcal_node *n) {
  if (n->op != QCAL_GOP_Conv)
    return false;
  const qcal_value *x = qcal_in(g, n, 0);
  return x->dtype == QCAL_DT_F32 && (x->ndim == 4 || x->ndim == 3) &&
         (qcal_attr_int(n, "group", 1) == 1 || qcal_conv_depthwise(g, n));
}

qcal_status qcal_conv_ref_fwd(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0), *w = qcal_in(g, n, 1), *b = qcal_in(g, n, 2);
  qcal_value *y = qcal_out(g, n, 0);
  qcal_geom ge;
  QCAL_TRY(qcal_geom_parse(g, n, x, w->shape + 2, false, false, &ge));
  if (!n->x.state) {
    if (!(n->x.state = calloc(1, sizeof(ref_exec))))
      return qcal_error(QCAL_ENOMEM, "out of memory");
    n->x.state_free = ref_free;
  }
  ref_exec *e = n->x.state;
  const int64_t N = x->shape[0], C = x->shape[1], O = y->shape[1];
  const int64_t H = ge.in[0], W = ge.in[1], OH = ge.out[0], OW = ge.out[1];
  const int64_t KH = ge.k[0], KW = ge.k[1];
  const bool depthwise = qcal_conv_depthwise(g, n);
  const int64_t cin = depthwise ? 1 : C, K = KH * KW * cin;
  /* OIHW -> HWIO once per weight buffer (fake-quantized weights come and go) */
  if (!e->hwio || e->from != w->data || e->gen != w->data_gen) {
    qcal_free(e->hwio);
    if (!(e->hwio = qcal_alloc((size_t)(K * O) * sizeof(float))))
      return qcal_error(QCAL_ENOMEM, "out of memory");
    const float *src = w->data;
    for (int64_t o = 0; o < O; o++)
      for (int64_t c = 0; c < cin; c++)
        for (int64_t i = 0; i < KH * KW; i++)
          e->hwio[(i * cin + c) * O + o] = src[(o * cin + c) * KH * KW + i];
    e->from = w->data;
    e->gen = w->data_gen;
  }
  const size_t P = (size_t)(H * W), OP = (size_t)(OH * OW);
  QCAL_TRY(grow(&e->nhwc_in, &e->in_len, P * (size_t)C));
  QCAL_TRY(grow(&e->nhwc_out, &e->out_len, OP * (size_t)O));
  const bool direct = KH == 1 && KW == 1 && ge.s[0] == 1 && ge.s[1] == 1 && ge.pb[0] == 0 &&
                      ge.pb[1] == 0 && OH == H && OW == W;
  if (!depthwise && !direct)
    QCAL_TRY(grow(&e->cols, &e->cols_len, OP * (size_t)K));
  const float *bias = b ? b->data : NULL;
  const float *sum = n->x.sum_in >= 0 ? g->values[n->x.sum_in].data : NULL;
  for (int64_t img = 0; img < N; img++) {
    const float *xin = (const float *)x->data + (size_t)img * (size_t)C * P;
    float *in = e->nhwc_in, *out = e->nhwc_out;
    transpose(xin, in, (size_t)C, P);
    if (depthwise) {
      for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
          float *o = out + (size_t)(oy * OW + ox) * (size_t)C;
          memset(o, 0, (size_t)C * sizeof(float));
          for (int64_t i = 0; i < KH; i++) {
            int64_t iy = oy * ge.s[0] + i * ge.d[0] - ge.pb[0];
            if (iy < 0 || iy >= H)
              continue;
            for (int64_t j = 0; j < KW; j++) {
              int64_t ix = ox * ge.s[1] + j * ge.d[1] - ge.pb[1];
              if (ix < 0 || ix >= W)
                continue;
              madd(o, in + (size_t)(iy * W + ix) * (size_t)C,
                   e->hwio + (size_t)(i * KW + j) * (size_t)C, (size_t)C);
            }
          }
        }
    } else {
      const float *A = in;
      if (!direct) {
        /* im2col rows: one output pixel, columns in HWIO filter order */
        for (int64_t oy = 0; oy < OH; oy++)
          for (int64_t ox = 0; ox < OW; ox++) {
            float *row = e->cols + (size_t)(oy * OW + ox) * (size_t)K;
            for (int64_t i = 0; i < KH; i++)
              for (int64_t j = 0; j < KW; j++) {
                int64_t iy = oy * ge.s[0] + i * ge.d[0] - ge.pb[0],
                        ix = ox * ge.s[1] + j * ge.d[1] - ge.pb[1];
                float *dst = row + (size_t)(i * KW + j) * (size_t)C;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                  memset(dst, 0, (size_t)C * sizeof(float));
                else
                  memcpy(dst, in + (size_t)(iy * W + ix) * (size_t)C, (size_t)C * sizeof(float));
              }
          }
        A = e->cols;
      }
      /* one sgemm over all output pixels, threaded by OpenBLAS as the
       * seed's forward pass called it: the same bits as its baseline */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)OP, (int)O, (int)K, 1.0f, A,
                  (int)K, e->hwio, (int)O, 0.0f, out, (int)O);
    }
    /* bias, residual, activation; then back to NCHW */
    float *yout = (float *)y->data + (size_t)img * (size_t)O * OP;
    const float *sres = sum ? sum + (size_t)img * (size_t)O * OP : NULL;
    for (size_t p = 0; p < OP; p++) {
      float *o = out + p * (size_t)O;
      for (int64_t c = 0; c < O; c++) {
        float v = o[c] + (bias ? bias[c] : 0.0f);
        if (sres)
          v += sres[(size_t)c * OP + p];
        o[c] = v;
      }
    }
    act_serial(n->x.act, n->x.act_alpha, n->x.act_beta, out, OP * (size_t)O);
    transpose(out, yout, OP, (size_t)O);
  }
  return QCAL_OK;
}
