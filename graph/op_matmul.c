/* Gemm and MatMul on OpenBLAS sgemm (numpy batching and broadcasting for
 * MatMul; a 2-D right operand folds the batch into M). */

#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

void openblas_set_num_threads(int);

/* oneDNN's sgemm (JIT kernels for the CPU it runs on; docs/graph.md):
 * 4x OpenBLAS on classifier heads (M = 1), and on the EPYC generation of
 * 2026-12 also 1.9x on ViT-B's and ConvNeXt-T's MatMuls as whole
 * networks, where an earlier generation had OpenBLAS 1.6x ahead on ViT's
 * MLP. QCAL_GEMM=openblas runs OpenBLAS's kernels instead, on qcal's own
 * OpenMP team, each thread a single-threaded sgemm on its slice of N
 * (OpenBLAS's own thread pool fought the OpenMP team for the two cores:
 * MobileNetV3's 1-MFLOP classifier took 9.7 ms instead of 0.5), for A/B
 * measurements on other machines. */
static void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  static int mode = -1; /* 1 oneDNN, 2 OpenBLAS */
  if (mode < 0) {
    const char *e = getenv("QCAL_GEMM");
    mode = e && !strcmp(e, "openblas") ? 2 : 1;
    openblas_set_num_threads(1);
  }
  /* oneDNN refuses only what it cannot run (a status, never a crash):
   * OpenBLAS then */
  if (mode == 1 && dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta,
                              c, ldc) == dnnl_success)
    return;
  int nth = omp_get_max_threads();
  if ((double)m * (double)n * (double)k < 1e6 || n < 32)
    nth = 1;
#pragma omp parallel num_threads(nth)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    int64_t per = ((n + T - 1) / T + 15) / 16 * 16;
    int64_t j0 = (int64_t)t * per, j1 = j0 + per < n ? j0 + per : n;
    if (j0 < j1)
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                  (int)m, (int)(j1 - j0), (int)k, alpha, a, (int)lda, tb ? b + j0 * ldb : b + j0,
                  (int)ldb, beta, c + j0, (int)ldc);
  }
}

qcal_status qcal_infer_gemm(qcal_graph *g, qcal_node *n) {
  for (int k = 0; k < 3; k++)
    QCAL_TRY(qcal_want_f32(g, n, k));
  const qcal_value *a = qcal_in(g, n, 0), *b = qcal_in(g, n, 1), *c = qcal_in(g, n, 2);
  if (a->ndim != 2 || b->ndim != 2)
    return qcal_node_error(g, n, QCAL_EFORMAT, "A and B must be 2-D (got rank %d and %d)", a->ndim,
                           b->ndim);
  bool ta = qcal_attr_int(n, "transA", 0), tb = qcal_attr_int(n, "transB", 0);
  (void)qcal_attr_float(n, "alpha", 1), (void)qcal_attr_float(n, "beta", 1);
  if (qcal_attr_int(n, "broadcast", 1) == 0)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'broadcast' = 0 (opset < 7)");
  int64_t m = ta ? a->shape[1] : a->shape[0], k = ta ? a->shape[0] : a->shape[1];
  int64_t kb = tb ? b->shape[1] : b->shape[0], nn = tb ? b->shape[0] : b->shape[1];
  if (k != kb)
    return qcal_node_error(g, n, QCAL_EFORMAT, "inner dims differ (%lld vs %lld)", (long long)k,
                           (long long)kb);
  if (c) {
    bool ok = c->ndim <= 2;
    for (int d = 0; ok && d < c->ndim; d++) {
      int64_t want = d == c->ndim - 1 ? nn : m;
      ok = c->shape[d] == 1 || c->shape[d] == want;
    }
    if (!ok)
      return qcal_node_error(g, n, QCAL_EFORMAT, "C does not broadcast to [%lld, %lld]",
                             (long long)m, (long long)nn);
  }
  int64_t shape[2] = {m, nn};
  return qcal_set_out(g, n, 0, QCAL_DT_F32, 2, shape);
}

/* Int8Gemm (graph/pass_int8_gemm.c): A int8/uint8 [M, K], B int8 [N, K]
 * (transB) or [K, N], int32 accumulation on oneDNN's integer GEMM, then
 * y = act(acc * scales[n] + C). */
static void i32_free(void *p) {
  free(p);
}

qcal_status qcal_fwd_gemm_int8(qcal_graph *g, qcal_node *n) {
  const qcal_value *a = qcal_in(g, n, 0), *b = qcal_in(g, n, 1), *c = qcal_in(g, n, 2);
  qcal_value *y = qcal_out(g, n, 0);
  const int64_t m = y->shape[0], nn = y->shape[1], k = a->shape[1];
  if (!n->x.state) {
    if (!(n->x.state = malloc((size_t)(m * nn > 0 ? m * nn : 1) * sizeof(int32_t))))
      return qcal_node_error(g, n, QCAL_ENOMEM, "out of memory");
    n->x.state_free = i32_free;
  }
  int32_t *acc = n->x.state, co = 0;
  const bool tb = qcal_attr_int(n, "transB", 0);
  const char tr = tb ? 'T' : 'N';
  const int64_t ldb = tb ? k : nn;
  dnnl_status_t rc = a->dtype == QCAL_DT_U8
                         ? dnnl_gemm_u8s8s32('N', tr, 'F', m, nn, k, 1.0f, a->data, k, 0, b->data,
                                             ldb, 0, 0.0f, acc, nn, &co)
                         : dnnl_gemm_s8s8s32('N', tr, 'F', m, nn, k, 1.0f, a->data, k, 0, b->data,
                                             ldb, 0, 0.0f, acc, nn, &co);
  if (rc != dnnl_success)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "oneDNN integer GEMM failed (status %d)",
                           (int)rc);
  qcal_int8_params q;
  qcal_int8_params_get(n, &q);
  if (q.nscales != nn)
    return qcal_node_error(g, n, QCAL_EFORMAT, "has %d scales for %lld outputs", q.nscales,
                           (long long)nn);
  float *yd = y->data;
  const float *cd = c ? c->data : NULL;
  int64_t cm = c && c->ndim == 2 ? c->shape[0] : 1,
          cn = c && c->ndim >= 1 ? c->shape[c->ndim - 1] : 1;
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < nn; j++) {
      float v = (float)acc[i * nn + j] * q.scales[j];
      if (cd)
        v += cd[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
      yd[i * nn + j] = qcal_act_one(n->x.act, n->x.act_alpha, n->x.act_beta, v);
    }
  return QCAL_OK;
}

qcal_status qcal_fwd_gemm(qcal_graph *g, qcal_node *n) {
  const qcal_value *a = qcal_in(g, n, 0), *b = qcal_in(g, n, 1), *c = qcal_in(g, n, 2);
  qcal_value *y = qcal_out(g, n, 0);
  bool ta = qcal_attr_int(n, "transA", 0), tb = qcal_attr_int(n, "transB", 0);
  float alpha = qcal_attr_float(n, "alpha", 1), beta = qcal_attr_float(n, "beta", 1);
  int m = (int)y->shape[0], nn = (int)y->shape[1], k = (int)(ta ? a->shape[0] : a->shape[1]);
  float *yd = y->data;
  float bb = 0;
  if (c && beta != 0) {
    const float *cd = c->data;
    int64_t cm = c->ndim == 2 ? c->shape[0] : 1, cn = c->ndim >= 1 ? c->shape[c->ndim - 1] : 1;
    for (int i = 0; i < m; i++)
      for (int j = 0; j < nn; j++)
        yd[(size_t)i * nn + j] = beta * cd[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
    bb = 1;
  }
  if (m && nn)
    sgemm(ta, tb, m, nn, k, alpha, a->data, a->shape[1], b->data, b->shape[1], bb, yd, nn);
  qcal_act_apply(n->x.act, n->x.act_alpha, n->x.act_beta, yd, y->numel);
  return QCAL_OK;
}

/* MatMul operands as [batch..., rows, cols] with 1-D promoted. */
typedef struct mm_shape {
  int nb;
  int64_t batch[QCAL_MAX_DIMS];
  int64_t m, k, n;
} mm_shape;

static qcal_status mm_plan(qcal_graph *g, qcal_node *n, mm_shape *s, int *ndim, int64_t *shape) {
  const qcal_value *a = qcal_in(g, n, 0), *b = qcal_in(g, n, 1);
  if (a->ndim < 1 || b->ndim < 1)
    return qcal_node_error(g, n, QCAL_EFORMAT, "operands must have rank >= 1");
  int64_t am = a->ndim >= 2 ? a->shape[a->ndim - 2] : 1, ak = a->shape[a->ndim - 1];
  int64_t bk = b->ndim >= 2 ? b->shape[b->ndim - 2] : b->shape[0];
  int64_t bn = b->ndim >= 2 ? b->shape[b->ndim - 1] : 1;
  if (ak != bk)
    return qcal_node_error(g, n, QCAL_EFORMAT, "inner dims differ (%lld vs %lld)", (long long)ak,
                           (long long)bk);
  int na = a->ndim > 2 ? a->ndim - 2 : 0, nbb = b->ndim > 2 ? b->ndim - 2 : 0;
  int nb = na > nbb ? na : nbb;
  for (int d = 0; d < nb; d++) {
    int da = d - (nb - na), db = d - (nb - nbb);
    int64_t ea = da < 0 ? 1 : a->shape[da], eb = db < 0 ? 1 : b->shape[db];
    if (ea != eb && ea != 1 && eb != 1)
      return qcal_node_error(g, n, QCAL_EFORMAT, "batch dims cannot be broadcast (%lld vs %lld)",
                             (long long)ea, (long long)eb);
    s->batch[d] = ea == 1 ? eb : ea;
  }
  s->nb = nb, s->m = am, s->k = ak, s->n = bn;
  int r = 0;
  for (int d = 0; d < nb; d++)
    shape[r++] = s->batch[d];
  if (a->ndim >= 2)
    shape[r++] = am;
  if (b->ndim >= 2)
    shape[r++] = bn;
  *ndim = r;
  return QCAL_OK;
}

qcal_status qcal_infer_matmul(qcal_graph *g, qcal_node *n) {
  QCAL_TRY(qcal_want_f32(g, n, 0));
  QCAL_TRY(qcal_want_f32(g, n, 1));
  mm_shape s;
  int nd;
  int64_t shape[QCAL_MAX_DIMS + 2];
  QCAL_TRY(mm_plan(g, n, &s, &nd, shape));
  return qcal_set_out(g, n, 0, QCAL_DT_F32, nd, shape);
}

qcal_status qcal_fwd_matmul(qcal_graph *g, qcal_node *n) {
  const qcal_value *a = qcal_in(g, n, 0), *b = qcal_in(g, n, 1);
  qcal_value *y = qcal_out(g, n, 0);
  mm_shape s;
  int nd;
  int64_t shape[QCAL_MAX_DIMS + 2];
  QCAL_TRY(mm_plan(g, n, &s, &nd, shape));
  const float *ad = a->data, *bd = b->data;
  float *yd = y->data;
  if (!y->numel)
    return QCAL_OK;
  if (!s.k) {
    memset(yd, 0, y->numel * 4);
    return QCAL_OK;
  }
  size_t nbatch = 1;
  for (int d = 0; d < s.nb; d++)
    nbatch *= (size_t)s.batch[d];
  if (b->ndim <= 2) {
    /* the batch of A folds into M */
    int64_t rows = (int64_t)(a->numel / (size_t)s.k);
    sgemm(false, false, rows, s.n, s.k, 1.0f, ad, s.k, bd, s.n, 0.0f, yd, s.n);
  } else {
    int na = a->ndim > 2 ? a->ndim - 2 : 0, nbb = b->ndim - 2;
    for (size_t bi = 0; bi < nbatch; bi++) {
      size_t rem = bi, oa = 0, ob = 0, sa = 1, sb = 1;
      for (int d = s.nb - 1; d >= 0; d--) {
        size_t i = rem % (size_t)s.batch[d];
        rem /= (size_t)s.batch[d];
        int da = d - (s.nb - na), db = d - (s.nb - nbb);
        if (da >= 0) {
          if (a->shape[da] != 1)
            oa += i * sa;
          sa *= (size_t)a->shape[da];
        }
        if (db >= 0) {
          if (b->shape[db] != 1)
            ob += i * sb;
          sb *= (size_t)b->shape[db];
        }
      }
      sgemm(false, false, s.m, s.n, s.k, 1.0f, ad + oa * (size_t)(s.m * s.k), s.k,
            bd + ob * (size_t)(s.k * s.n), s.n, 0.0f, yd + bi * (size_t)(s.m * s.n), s.n);
    }
  }
  qcal_act_apply(n->x.act, n->x.act_alpha, n->x.act_beta, yd, y->numel);
  return QCAL_OK;
}
