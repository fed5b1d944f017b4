/* oneDNN (Debian libdnnl) matmul: the CPU GEMM engine. Weights use the
 * layout oneDNN prefers and are reordered once, as an inference engine
 * would; only the matmul itself is timed. */
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/gemm.h"
#include "qcal/datasets.h"
#include "qcal/kernels.h"
#include "qcal/quant.h"

const char *const qcal_gemm_type_names[] = {"f32", "bf16", "u8s8s32", "s8s8s32"};

struct cpu_gemm {
  gemm_type type;
  gemm_shape s;
  dnnl_engine_t eng;
  dnnl_stream_t strm;
  dnnl_primitive_t mm;
  dnnl_memory_t a, b, c;
  void *ha, *hb, *hc; /* host data: a [batch, m, k], b [batch, k, n] (plain), c [batch, m, n] */
  void *hb_packed;
};

#define DN(call)                                                                                   \
  do {                                                                                             \
    dnnl_status_t e_ = (call);                                                                     \
    if (e_ != dnnl_success) {                                                                      \
      st = qcal_error(e_ == dnnl_unimplemented ? QCAL_EUNSUPPORTED : QCAL_EDEVICE,                 \
                      "%s:%d: %s failed (oneDNN status %d)", __FILE__, __LINE__, #call, (int)e_);  \
      goto done;                                                                                   \
    }                                                                                              \
  } while (0)

static size_t esize(dnnl_data_type_t t) {
  return t == dnnl_f32 || t == dnnl_s32 ? 4 : t == dnnl_bf16 ? 2 : 1;
}

double qcal_gemm_bytes(gemm_type t, const gemm_shape *s) {
  double in = t == GEMM_F32 ? 4 : t == GEMM_BF16 ? 2 : 1;
  double b = (double)s->batch;
  return b * ((double)s->m * s->k * in + 2.0 * s->k * s->n * in + (double)s->m * s->n * 4);
}

static uint16_t f2bf(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return (uint16_t)(u >> 16); /* values are bf16-exact by construction */
}

qcal_status qcal_cpu_gemm_create(cpu_gemm **out, gemm_type t, const gemm_shape *s, int threads) {
  (void)threads; /* oneDNN uses the OpenMP team the caller sized and pinned */
  qcal_status st = QCAL_OK;
  cpu_gemm *g = calloc(1, sizeof *g);
  if (!g)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  *out = g;
  g->type = t;
  g->s = *s;
  dnnl_data_type_t ta = t == GEMM_F32       ? dnnl_f32
                        : t == GEMM_BF16    ? dnnl_bf16
                        : t == GEMM_U8S8S32 ? dnnl_u8
                                            : dnnl_s8;
  dnnl_data_type_t tb = t == GEMM_F32 ? dnnl_f32 : t == GEMM_BF16 ? dnnl_bf16 : dnnl_s8;
  dnnl_data_type_t tc = t == GEMM_F32 || t == GEMM_BF16 ? dnnl_f32 : dnnl_s32;
  const int nd = s->batch > 1 ? 3 : 2;
  dnnl_dims_t da = {s->batch, s->m, s->k}, db = {s->batch, s->k, s->n}, dc = {s->batch, s->m, s->n};
  dnnl_dims_t da2 = {s->m, s->k}, db2 = {s->k, s->n}, dc2 = {s->m, s->n};
  dnnl_memory_desc_t amd, bmd, bmd_any, cmd, bmd_pref;
  dnnl_format_tag_t plain = nd == 3 ? dnnl_abc : dnnl_ab;
  DN(dnnl_memory_desc_init_by_tag(&amd, nd, nd == 3 ? da : da2, ta, plain));
  DN(dnnl_memory_desc_init_by_tag(&bmd, nd, nd == 3 ? db : db2, tb, plain));
  DN(dnnl_memory_desc_init_by_tag(&bmd_any, nd, nd == 3 ? db : db2, tb, dnnl_format_tag_any));
  DN(dnnl_memory_desc_init_by_tag(&cmd, nd, nd == 3 ? dc : dc2, tc, plain));
  DN(dnnl_engine_create(&g->eng, dnnl_cpu, 0));
  DN(dnnl_stream_create(&g->strm, g->eng, dnnl_stream_default_flags));
  dnnl_matmul_desc_t md;
  DN(dnnl_matmul_desc_init(&md, &amd, &bmd_any, NULL, &cmd));
  dnnl_primitive_desc_t pd = NULL;
  DN(dnnl_primitive_desc_create(&pd, &md, NULL, g->eng, NULL));
  bmd_pref = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  dnnl_status_t e = dnnl_primitive_create(&g->mm, pd);
  dnnl_primitive_desc_destroy(pd);
  DN(e);

  const size_t na = (size_t)(s->batch * s->m * s->k), nb = (size_t)(s->batch * s->k * s->n),
               nc = (size_t)(s->batch * s->m * s->n);
  g->ha = malloc(na * esize(ta));
  g->hb = malloc(nb * esize(tb));
  g->hc = malloc(nc * esize(tc));
  g->hb_packed = malloc(dnnl_memory_desc_get_size(&bmd_pref));
  if (!g->ha || !g->hb || !g->hc || !g->hb_packed) {
    st = qcal_error(QCAL_ENOMEM, "cannot allocate the GEMM buffers");
    goto done;
  }
  qcal_rng r;
  qcal_rng_seed(&r, 7);
  /* small integers: exact in bf16 and f32, no int32 overflow. Without VNNI,
   * oneDNN's int8 path (vpmaddubsw; s8 activations are shifted to u8) saturates
   * pairs of products in int16, so the s8 weights keep to 7 bits there, as
   * ONNX Runtime's reduce_range does. */
  const int wspan =
      (tb != dnnl_s8 || (qcal_cpu_features() & (QCAL_ISA_VNNI | QCAL_ISA_AVXVNNI))) ? 256 : 128;
  for (size_t i = 0; i < na; i++) {
    int v = (int)(qcal_rng_next(&r) % 256) - (ta == dnnl_u8 ? 0 : 128);
    if (ta == dnnl_f32)
      ((float *)g->ha)[i] = (float)(v / 16) / 8.0f;
    else if (ta == dnnl_bf16)
      ((uint16_t *)g->ha)[i] = f2bf((float)(v / 16) / 8.0f);
    else
      ((uint8_t *)g->ha)[i] = (uint8_t)v;
  }
  for (size_t i = 0; i < nb; i++) {
    int v = (int)(qcal_rng_next(&r) % (unsigned)wspan) - wspan / 2;
    if (tb == dnnl_f32)
      ((float *)g->hb)[i] = (float)(v / 16) / 8.0f;
    else if (tb == dnnl_bf16)
      ((uint16_t *)g->hb)[i] = f2bf((float)(v / 16) / 8.0f);
    else
      ((int8_t *)g->hb)[i] = (int8_t)v;
  }
  dnnl_memory_t b_plain = NULL;
  DN(dnnl_memory_create(&g->a, &amd, g->eng, g->ha));
  DN(dnnl_memory_create(&b_plain, &bmd, g->eng, g->hb));
  DN(dnnl_memory_create(&g->b, &bmd_pref, g->eng, g->hb_packed));
  DN(dnnl_memory_create(&g->c, &cmd, g->eng, g->hc));
  /* pack the weights once */
  dnnl_primitive_desc_t rpd = NULL;
  dnnl_primitive_t reorder = NULL;
  e = dnnl_reorder_primitive_desc_create(&rpd, &bmd, g->eng, &bmd_pref, g->eng, NULL);
  if (e == dnnl_success)
    e = dnnl_primitive_create(&reorder, rpd);
  if (rpd)
    dnnl_primitive_desc_destroy(rpd);
  if (e == dnnl_success) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, b_plain}, {DNNL_ARG_TO, g->b}};
    e = dnnl_primitive_execute(reorder, g->strm, 2, args);
    if (e == dnnl_success)
      e = dnnl_stream_wait(g->strm);
  }
  if (reorder)
    dnnl_primitive_destroy(reorder);
  dnnl_memory_destroy(b_plain);
  DN(e);
done:
  if (st != QCAL_OK) {
    qcal_cpu_gemm_destroy(g);
    *out = NULL;
  }
  return st;
}

qcal_status qcal_cpu_gemm_run(cpu_gemm *g) {
  qcal_status st = QCAL_OK;
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, g->a}, {DNNL_ARG_WEIGHTS, g->b}, {DNNL_ARG_DST, g->c}};
  DN(dnnl_primitive_execute(g->mm, g->strm, 3, args));
  DN(dnnl_stream_wait(g->strm));
done:
  return st;
}

static double bf2f(uint16_t v) {
  uint32_t u = (uint32_t)v << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

qcal_status qcal_cpu_gemm_check(cpu_gemm *g, int samples, double *max_err, char *why, size_t cap) {
  const gemm_shape *s = &g->s;
  qcal_rng r;
  qcal_rng_seed(&r, 11);
  *max_err = 0;
  for (int t = 0; t < samples; t++) {
    int64_t bi = (int64_t)(qcal_rng_next(&r) % (uint64_t)s->batch);
    int64_t i = (int64_t)(qcal_rng_next(&r) % (uint64_t)s->m);
    int64_t j = (int64_t)(qcal_rng_next(&r) % (uint64_t)s->n);
    size_t ao = (size_t)((bi * s->m + i) * s->k), bo = (size_t)(bi * s->k * s->n + j);
    size_t co = (size_t)((bi * s->m + i) * s->n + j);
    if (g->type == GEMM_U8S8S32 || g->type == GEMM_S8S8S32) {
      int32_t want;
      qcal_gemm_q8_s32__ref(1, 1, (size_t)s->k, (const int8_t *)g->ha + ao,
                            g->type == GEMM_U8S8S32 ? QCAL_U8 : QCAL_S8, (size_t)s->k, 0,
                            (const int8_t *)g->hb + bo, QCAL_S8, (size_t)s->n, 0, &want, 1);
      int32_t got = ((const int32_t *)g->hc)[co];
      if (got != want) {
        snprintf(why, cap, "C[%lld,%lld,%lld] = %d, reference %d", (long long)bi, (long long)i,
                 (long long)j, got, want);
        *max_err = INFINITY;
        return QCAL_EDATA;
      }
    } else {
      double want = 0, mag = 0;
      for (int64_t p = 0; p < s->k; p++) {
        double a = g->type == GEMM_F32 ? ((const float *)g->ha)[ao + (size_t)p]
                                       : bf2f(((const uint16_t *)g->ha)[ao + (size_t)p]);
        double b = g->type == GEMM_F32 ? ((const float *)g->hb)[bo + (size_t)(p * s->n)]
                                       : bf2f(((const uint16_t *)g->hb)[bo + (size_t)(p * s->n)]);
        want += a * b;
        mag += fabs(a * b);
      }
      double got = ((const float *)g->hc)[co];
      /* float32 accumulation of exact products: |err| <= k * 2^-23 * sum|ab| */
      double bound = (double)s->k * 0x1p-23 * mag + 1e-30;
      double err = fabs(got - want);
      double rel = err / (mag > 0 ? mag : 1);
      *max_err = rel > *max_err ? rel : *max_err;
      if (err > bound) {
        snprintf(why, cap, "C[%lld,%lld,%lld] = %.9g, reference %.9g (bound %.3g)", (long long)bi,
                 (long long)i, (long long)j, got, want, bound);
        return QCAL_EDATA;
      }
    }
  }
  return QCAL_OK;
}

void qcal_cpu_gemm_destroy(cpu_gemm *g) {
  if (!g)
    return;
  if (g->mm)
    dnnl_primitive_destroy(g->mm);
  if (g->a)
    dnnl_memory_destroy(g->a);
  if (g->b)
    dnnl_memory_destroy(g->b);
  if (g->c)
    dnnl_memory_destroy(g->c);
  if (g->strm)
    dnnl_stream_destroy(g->strm);
  if (g->eng)
    dnnl_engine_destroy(g->eng);
  free(g->ha);
  free(g->hb);
  free(g->hc);
  free(g->hb_packed);
  free(g);
}

void *qcal_cpu_gemm_output(cpu_gemm *g) {
  return g->hc;
}
