/* QuantizeLinear / DequantizeLinear (per tensor and per axis, int8 and
 * uint8; DequantizeLinear also int32 with zero point 0), on the affine
 * kernels the conformance suite already checks against ONNX. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "graph/internal.h"
#include "qcal/kernels.h"
#include "qcal/quant.h"

static qcal_status qdq_layout(qcal_graph *g, qcal_node *n, qcal_layout *l) {
  const qcal_value *x = qcal_in(g, n, 0), *s = qcal_in(g, n, 1), *z = qcal_in(g, n, 2);
  if (s->dtype != QCAL_DT_F32)
    return qcal_node_error(g, n, QCAL_EDTYPE, "scale is %s, expected float32",
                           qcal_dtype_name(s->dtype));
  if (s->ndim > 1)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "blocked quantization (scale of rank %d)",
                           s->ndim);
  if (z && z->numel != s->numel)
    return qcal_node_error(g, n, QCAL_EFORMAT, "zero point has %zu elements, scale %zu", z->numel,
                           s->numel);
  int64_t axis = qcal_attr_int(n, "axis", 1);
  (void)qcal_attr_int(n, "saturate", 1);
  if (s->ndim == 0 || (s->numel == 1 && x->ndim == 0)) {
    *l = (qcal_layout){1, 1, x->numel};
    return QCAL_OK;
  }
  int a;
  QCAL_TRY(qcal_norm_axis(g, n, axis, x->ndim, &a));
  if (x->shape[a] != (int64_t)s->numel)
    return qcal_node_error(g, n, QCAL_EFORMAT, "scale has %zu elements for dim %d of size %lld",
                           s->numel, a, (long long)x->shape[a]);
  if (qcal_layout_make(x->ndim, x->shape, a, l))
    return qcal_node_error(g, n, QCAL_EFORMAT, "bad axis");
  return QCAL_OK;
}

qcal_status qcal_infer_qdq(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0), *z = qcal_in(g, n, 2);
  qcal_layout l;
  QCAL_TRY(qdq_layout(g, n, &l));
  if (n->op == QCAL_GOP_QuantizeLinear) {
    QCAL_TRY(qcal_want_f32(g, n, 0));
    qcal_dtype dt = z ? z->dtype : QCAL_DT_U8;
    if (dt != QCAL_DT_U8 && dt != QCAL_DT_I8)
      return qcal_node_error(g, n, QCAL_EDTYPE, "zero point is %s; int8 and uint8 supported",
                             qcal_dtype_name(dt));
    return qcal_set_out(g, n, 0, dt, x->ndim, x->shape);
  }
  if (x->dtype != QCAL_DT_U8 && x->dtype != QCAL_DT_I8 && x->dtype != QCAL_DT_I32)
    return qcal_node_error(g, n, QCAL_EDTYPE, "input is %s; int8, uint8 and int32 supported",
                           qcal_dtype_name(x->dtype));
  if (z && z->dtype != x->dtype)
    return qcal_node_error(g, n, QCAL_EDTYPE, "zero point is %s, input %s",
                           qcal_dtype_name(z->dtype), qcal_dtype_name(x->dtype));
  return qcal_set_out(g, n, 0, QCAL_DT_F32, x->ndim, x->shape);
}

/* Per-tensor QuantizeLinear fast path (the engines' hot Q nodes): the same
 * arithmetic as the affine kernel (x / scale, round half to even, NaN to the
 * zero point, saturate) 16 lanes at a time with AVX-512 where QCAL_ARCH
 * allows it (GCC does not vectorise the rounding and saturation), then the
 * scalar loop for the tail. The f32_q8_quantize kernels multiply by an
 * inverse scale instead, which is not ONNX's division. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static size_t
q8_avx512(const float *x, size_t n, float s, float zp, bool s8, void *y) {
  const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(zp);
  const __m512 lo = _mm512_set1_ps(s8 ? -128.0f : 0.0f), hi = _mm512_set1_ps(s8 ? 127.0f : 255.0f);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 r = _mm512_div_ps(_mm512_loadu_ps(x + i), vs);
    __mmask16 ok = _mm512_cmp_ps_mask(r, r, _CMP_ORD_Q);
    r = _mm512_add_ps(_mm512_roundscale_ps(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
    r = _mm512_mask_blend_ps(ok, vz, r);
    r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
    _mm_storeu_si128((__m128i *)((char *)y + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
  }
  return i;
}

static void q8_run(const float *x, size_t n, float s, float zp, bool s8, void *y) {
  size_t i = qcal_isa_enabled() & QCAL_ISA_AVX512 ? q8_avx512(x, n, s, zp, s8, y) : 0;
  const float lo = s8 ? -128.0f : 0.0f, hi = s8 ? 127.0f : 255.0f;
  for (; i < n; i++) {
    float r = x[i] / s;
    r = r == r ? rintf(r) + zp : zp;
    r = r < lo ? lo : r > hi ? hi : r;
    if (s8)
      ((int8_t *)y)[i] = (int8_t)r;
    else
      ((uint8_t *)y)[i] = (uint8_t)r;
  }
}

/* Per-tensor, zero point 0: y = q * scale, which is the dispatched
 * s8/u8_f32_dequantize kernels' arithmetic. */
static void qdq_fast(bool quant, const void *x, size_t n, float s, float zp, bool s8, void *y) {
  const qcal_kernel_table *kt = qcal_kernels();
  const size_t chunk = 16384;
  const long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (nchunks > 4)
  for (long c = 0; c < nchunks; c++) {
    size_t a = (size_t)c * chunk, m = n - a < chunk ? n - a : chunk;
    if (quant)
      q8_run((const float *)x + a, m, s, zp, s8, (char *)y + a);
    else if (s8)
      kt->s8_f32_dequantize(m, (const int8_t *)x + a, (float *)y + a, &s, false);
    else
      kt->u8_f32_dequantize(m, (const uint8_t *)x + a, (float *)y + a, &s, false);
  }
}

qcal_status qcal_fwd_qdq(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0), *s = qcal_in(g, n, 1), *z = qcal_in(g, n, 2);
  qcal_value *y = qcal_out(g, n, 0);
  qcal_layout l;
  QCAL_TRY(qdq_layout(g, n, &l));
  const float *sd = s->data;
  if (x->dtype == QCAL_DT_I32) { /* DequantizeLinear of int32 (bias) */
    const int32_t *xd = x->data, *zd = z ? z->data : NULL;
    float *yd = y->data;
    for (size_t o = 0; o < l.outer; o++)
      for (size_t c = 0; c < l.channels; c++)
        for (size_t i = 0; i < l.inner; i++) {
          size_t k = (o * l.channels + c) * l.inner + i;
          yd[k] = (float)(xd[k] - (zd ? zd[c] : 0)) * sd[c];
        }
    return QCAL_OK;
  }
  /* 8-bit: the affine kernels take one zero point per channel */
  bool q = n->op == QCAL_GOP_QuantizeLinear;
  qcal_int8_type t = (q ? y->dtype : x->dtype) == QCAL_DT_I8 ? QCAL_S8 : QCAL_U8;
  float zp0 = z && l.channels == 1 ? (float)qcal_value_get(z, 0) : 0.0f;
  if (l.channels == 1 && sd[0] > 0 && isfinite(sd[0]) && (q || zp0 == 0)) {
    qdq_fast(q, x->data, x->numel, sd[0], zp0, t == QCAL_S8, y->data);
    return QCAL_OK;
  }
  const void *zp = z ? z->data : NULL;
  uint8_t *zbuf = NULL;
  if (!zp) {
    zbuf = qcal_alloc(l.channels);
    if (!zbuf)
      return qcal_node_error(g, n, QCAL_ENOMEM, "out of memory");
    memset(zbuf, 0, l.channels);
    zp = zbuf;
  }
  qcal_status st = q ? qcal_affine_quantize(&l, x->data, sd, zp, t, y->data)
                     : qcal_affine_dequantize(&l, x->data, sd, zp, t, y->data);
  qcal_free(zbuf);
  return st ? qcal_node_error(g, n, st, "%s", qcal_last_error()) : QCAL_OK;
}
