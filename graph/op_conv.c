/* Conv and ConvTranspose on oneDNN primitives. Activations stay NCHW at the
 * graph level; the primitive picks its own weight layout (reordered once
 * for constant weights) and, where QCAL_CONV_PLAIN is unset, its own
 * activation layout with reorders around it. Fused activation and residual
 * Add run as oneDNN post-ops. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/dnnl_util.h"
#include "graph/internal.h"

typedef struct conv_exec {
  dnnl_primitive_t prim, r_src, r_wei, r_dst, r_sum;
  dnnl_memory_desc_t u_src, u_wei, u_dst, p_src, p_wei, p_dst, md_bias;
  dnnl_memory_t m_src, m_wei, m_dst, m_bias, m_usrc, m_uwei, m_udst;
  void *b_src, *b_wei, *b_dst; /* primitive-layout buffers where they differ */
  bool wei_ready;              /* constant weights reordered ... */
  const void *wei_from;        /* ... from this buffer */
  unsigned wei_gen;            /* ... of this qcal_value.data_gen */
  float *bias_q;               /* int8: the bias in accumulator units (bias / scales) */
  float *oscale;               /* int8, requantization folded: scales / y_scale */
} conv_exec;

static void conv_free(void *p) {
  conv_exec *e = p;
  if (!e)
    return;
  dnnl_primitive_t prims[] = {e->prim, e->r_src, e->r_wei, e->r_dst, e->r_sum};
  for (size_t i = 0; i < 5; i++)
    if (prims[i])
      dnnl_primitive_destroy(prims[i]);
  dnnl_memory_t mems[] = {e->m_src, e->m_wei, e->m_dst, e->m_bias, e->m_usrc, e->m_uwei, e->m_udst};
  for (size_t i = 0; i < 7; i++)
    if (mems[i])
      dnnl_memory_destroy(mems[i]);
  qcal_free(e->b_src);
  qcal_free(e->b_wei);
  qcal_free(e->b_dst);
  free(e->bias_q);
  free(e->oscale);
  free(e);
}

qcal_status qcal_infer_conv(qcal_graph *g, qcal_node *n) {
  bool tr = n->op == QCAL_GOP_ConvTranspose;
  QCAL_TRY(qcal_want_f32(g, n, 0));
  QCAL_TRY(qcal_want_f32(g, n, 1));
  QCAL_TRY(qcal_want_f32(g, n, 2));
  const qcal_value *x = qcal_in(g, n, 0), *w = qcal_in(g, n, 1), *b = qcal_in(g, n, 2);
  if (w->ndim != x->ndim)
    return qcal_node_error(g, n, QCAL_EFORMAT, "weight has rank %d, input rank %d", w->ndim,
                           x->ndim);
  int64_t group = qcal_attr_int(n, "group", 1);
  if (group < 1 || x->shape[1] % group)
    return qcal_node_error(g, n, QCAL_EFORMAT,
                           "attribute 'group' = %lld does not divide %lld "
                           "input channels",
                           (long long)group, (long long)x->shape[1]);
  int64_t cout;
  if (!tr) {
    if (w->shape[1] * group != x->shape[1] || w->shape[0] % group)
      return qcal_node_error(g, n, QCAL_EFORMAT,
                             "weight [%lld, %lld, ...] does not fit %lld input channels in %lld "
                             "groups",
                             (long long)w->shape[0], (long long)w->shape[1], (long long)x->shape[1],
                             (long long)group);
    cout = w->shape[0];
  } else {
    if (w->shape[0] != x->shape[1])
      return qcal_node_error(g, n, QCAL_EFORMAT,
                             "weight dim 0 (%lld) must equal the %lld input "
                             "channels",
                             (long long)w->shape[0], (long long)x->shape[1]);
    cout = w->shape[1] * group;
  }
  if (b && (b->ndim != 1 || b->shape[0] != cout))
    return qcal_node_error(g, n, QCAL_EFORMAT, "bias must have %lld elements", (long long)cout);
  qcal_geom ge;
  QCAL_TRY(qcal_geom_parse(g, n, x, w->shape + 2, tr, false, &ge));
  int64_t shape[4] = {x->shape[0], cout, ge.out[0], ge.out[1]};
  if (x->ndim == 3)
    shape[2] = ge.out[1];
  return qcal_set_out(g, n, 0, QCAL_DT_F32, x->ndim, shape);
}

static dnnl_alg_kind_t act_alg(qcal_act a) {
  switch (a) {
  case QCAL_ACT_RELU:
    return dnnl_eltwise_relu;
  case QCAL_ACT_CLIP:
    return dnnl_eltwise_clip_v2;
  case QCAL_ACT_SIGMOID:
    return dnnl_eltwise_logistic;
  case QCAL_ACT_HARDSWISH:
    return dnnl_eltwise_hardswish;
  case QCAL_ACT_SWISH:
    return dnnl_eltwise_swish;
  default:
    return dnnl_alg_kind_undef;
  }
}

#define CK(x)                                                                                      \
  do {                                                                                             \
    if ((st = (x)) != QCAL_OK)                                                                     \
      goto done;                                                                                   \
  } while (0)

static dnnl_data_type_t dnnl_dt(qcal_dtype t) {
  return t == QCAL_DT_I8 ? dnnl_s8 : t == QCAL_DT_U8 ? dnnl_u8 : dnnl_f32;
}

static qcal_status conv_create(qcal_graph *g, qcal_node *n, conv_exec **out) {
  qcal_status st = QCAL_OK;
  bool tr = n->op == QCAL_GOP_ConvTranspose;
  const qcal_value *x = qcal_in(g, n, 0), *w = qcal_in(g, n, 1), *b = qcal_in(g, n, 2);
  const qcal_value *y = qcal_out(g, n, 0);
  qcal_geom ge;
  QCAL_TRY(qcal_geom_parse(g, n, x, w->shape + 2, tr, false, &ge));
  int64_t group = qcal_attr_int(n, "group", 1);
  conv_exec *e = calloc(1, sizeof *e);
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  if (!e)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  dnnl_engine_t eng;
  CK(qcal_dnnl_get(&eng, NULL));
  int64_t cin = x->shape[1], cout = y->shape[1];
  dnnl_dims_t sd = {x->shape[0], cin, ge.in[0], ge.in[1]};
  dnnl_dims_t dd = {y->shape[0], cout, ge.out[0], ge.out[1]};
  dnnl_dims_t wd, strides = {ge.s[0], ge.s[1]}, dil = {ge.d[0] - 1, ge.d[1] - 1};
  dnnl_dims_t pl = {ge.pb[0], ge.pb[1]}, pr = {ge.pe[0], ge.pe[1]};
  int wnd;
  dnnl_format_tag_t wtag;
  if (group == 1) {
    wnd = 4;
    wd[0] = cout, wd[1] = cin, wd[2] = ge.k[0], wd[3] = ge.k[1];
    wtag = tr ? dnnl_bacd : dnnl_abcd;
  } else {
    wnd = 5;
    wd[0] = group, wd[1] = cout / group, wd[2] = cin / group, wd[3] = ge.k[0], wd[4] = ge.k[1];
    wtag = tr ? dnnl_acbde : dnnl_abcde;
  }
  bool plain = getenv("QCAL_CONV_PLAIN") != NULL;
  /* Requantization with no activation, ReLU or Clip folds into the output
   * scales (scales / y_scale) and one clip on the output grid: one post-op
   * instead of three per element. */
  qcal_int8_params q;
  qcal_int8_params_get(n, &q);
  const bool u8 = q.y_max == 127;
  if (n->op == QCAL_GOP_Int8Conv && q.nscales != cout)
    CK(qcal_node_error(g, n, QCAL_EFORMAT, "has %d scales for %lld output channels", q.nscales,
                       (long long)cout));
  bool fold = q.scales && q.y_scale > 0 && n->x.sum_in < 0 &&
              (n->x.act == QCAL_ACT_NONE || (n->x.act == QCAL_ACT_RELU && n->x.act_alpha == 0) ||
               n->x.act == QCAL_ACT_CLIP);
  /* int8 (engine int8): s8/u8 input, s8 weights, f32 or s8/u8 output */
  const dnnl_data_type_t xt = dnnl_dt(x->dtype), yt = dnnl_dt(y->dtype), wt = dnnl_dt(w->dtype);
  dnnl_memory_desc_t s_any, w_any, d_any, bias_md;
  QCAL_DNNL(dnnl_memory_desc_init_by_tag(&e->u_src, 4, sd, xt, dnnl_nchw));
  QCAL_DNNL(dnnl_memory_desc_init_by_tag(&e->u_dst, 4, dd, yt, dnnl_nchw));
  QCAL_DNNL(dnnl_memory_desc_init_by_tag(&e->u_wei, wnd, wd, wt, wtag));
  QCAL_DNNL(
      dnnl_memory_desc_init_by_tag(&s_any, 4, sd, xt, plain ? dnnl_nchw : dnnl_format_tag_any));
  QCAL_DNNL(
      dnnl_memory_desc_init_by_tag(&d_any, 4, dd, yt, plain ? dnnl_nchw : dnnl_format_tag_any));
  QCAL_DNNL(dnnl_memory_desc_init_by_tag(&w_any, wnd, wd, wt, dnnl_format_tag_any));
  dnnl_dims_t bd = {cout};
  QCAL_DNNL(dnnl_memory_desc_init_by_tag(&bias_md, 1, bd, dnnl_f32, dnnl_a));
  e->md_bias = bias_md;
  union {
    dnnl_convolution_desc_t c;
    dnnl_deconvolution_desc_t d;
  } desc;
  if (!tr)
    QCAL_DNNL(dnnl_dilated_convolution_forward_desc_init(
        &desc.c, dnnl_forward_inference, dnnl_convolution_direct, &s_any, &w_any,
        b ? &bias_md : NULL, &d_any, strides, dil, pl, pr));
  else
    QCAL_DNNL(dnnl_dilated_deconvolution_forward_desc_init(
        &desc.d, dnnl_forward_inference, dnnl_deconvolution_direct, &s_any, &w_any,
        b ? &bias_md : NULL, &d_any, strides, dil, pl, pr));
  /* fused activation and residual Add run inside the primitive; the sum
   * operand is put into dst (in dst's layout) before each execution */
  QCAL_DNNL(dnnl_primitive_attr_create(&attr));
  QCAL_DNNL(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_library));
  /* int8: the accumulator times src scale x weight scale of its channel is
   * the float result; requantization is a last linear post-op */
  if (fold) {
    if (!(e->oscale = malloc((size_t)cout * sizeof *e->oscale)))
      CK(qcal_error(QCAL_ENOMEM, "out of memory"));
    for (int64_t c = 0; c < cout; c++)
      e->oscale[c] = q.scales[c] / q.y_scale;
    float lo = n->x.act == QCAL_ACT_NONE   ? -INFINITY
               : n->x.act == QCAL_ACT_RELU ? 0
                                           : n->x.act_alpha;
    float hi = n->x.act == QCAL_ACT_CLIP ? n->x.act_beta : INFINITY;
    lo = u8 && lo < 0 ? 0 : lo / q.y_scale;
    hi = u8 && hi / q.y_scale > 127 ? 127 : hi / q.y_scale;
    QCAL_DNNL(dnnl_primitive_attr_set_output_scales(attr, cout, 1 << 1, e->oscale));
    if (lo > -INFINITY || hi < INFINITY) {
      QCAL_DNNL(dnnl_post_ops_create(&po));
      QCAL_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip_v2,
                                             lo > -FLT_MAX ? lo : -FLT_MAX,
                                             hi < FLT_MAX ? hi : FLT_MAX));
      QCAL_DNNL(dnnl_primitive_attr_set_post_ops(attr, po));
    }
  } else if (q.scales)
    QCAL_DNNL(dnnl_primitive_attr_set_output_scales(attr, cout, 1 << 1, q.scales));
  if (!fold && (n->x.act != QCAL_ACT_NONE || n->x.sum_in >= 0 || q.y_scale > 0)) {
    QCAL_DNNL(dnnl_post_ops_create(&po));
    if (n->x.sum_in >= 0)
      QCAL_DNNL(dnnl_post_ops_append_sum(po, 1.0f));
    if (n->x.act != QCAL_ACT_NONE)
      QCAL_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, act_alg(n->x.act),
                                             n->x.act == QCAL_ACT_SWISH ? 1.0f : n->x.act_alpha,
                                             n->x.act_beta));
    if (q.y_scale > 0)
      QCAL_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, 1.0f / q.y_scale, 0));
    if (u8)
      QCAL_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, 0.0f, 127.0f));
    QCAL_DNNL(dnnl_primitive_attr_set_post_ops(attr, po));
  }
  QCAL_DNNL(dnnl_primitive_desc_create(&pd, &desc, attr, eng, NULL));
  e->p_dst = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  e->p_src = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
  e->p_wei = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  QCAL_DNNL(dnnl_primitive_create(&e->prim, pd));
  CK(qcal_dnnl_reorder(&e->u_src, &e->p_src, &e->r_src));
  CK(qcal_dnnl_reorder(&e->u_wei, &e->p_wei, &e->r_wei));
  CK(qcal_dnnl_reorder(&e->p_dst, &e->u_dst, &e->r_dst));
  if (n->x.sum_in >= 0)
    CK(qcal_dnnl_reorder(&e->u_dst, &e->p_dst, &e->r_sum));
  if (e->r_src && !(e->b_src = qcal_alloc(dnnl_memory_desc_get_size(&e->p_src))))
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  if (e->r_wei && !(e->b_wei = qcal_alloc(dnnl_memory_desc_get_size(&e->p_wei))))
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  if (e->r_dst && !(e->b_dst = qcal_alloc(dnnl_memory_desc_get_size(&e->p_dst))))
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  if (st)
    goto done;
  CK(qcal_dnnl_mem(&e->p_src, e->b_src, &e->m_src));
  CK(qcal_dnnl_mem(&e->p_wei, e->b_wei, &e->m_wei));
  CK(qcal_dnnl_mem(&e->p_dst, e->b_dst, &e->m_dst));
  CK(qcal_dnnl_mem(&e->u_src, NULL, &e->m_usrc));
  CK(qcal_dnnl_mem(&e->u_wei, NULL, &e->m_uwei));
  CK(qcal_dnnl_mem(&e->u_dst, NULL, &e->m_udst));
  CK(qcal_dnnl_mem(&bias_md, NULL, &e->m_bias));
done:
  if (pd)
    dnnl_primitive_desc_destroy(pd);
  if (attr)
    dnnl_primitive_attr_destroy(attr);
  if (po)
    dnnl_post_ops_destroy(po);
  if (st) {
    conv_free(e);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", qcal_last_error());
    return qcal_node_error(g, n, st, "%s", msg);
  }
  *out = e;
  return QCAL_OK;
}

#undef CK

static qcal_status run_reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
  dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  return qcal_dnnl_exec(r, 2, a);
}

static qcal_status conv_ready(qcal_graph *g, qcal_node *n) {
  if (!n->x.state) {
    conv_exec *e;
    QCAL_TRY(conv_create(g, n, &e));
    n->x.state = e;
    n->x.state_free = conv_free;
  }
  return QCAL_OK;
}

qcal_status qcal_conv_plan(qcal_graph *g, qcal_node *n, const void **src_fmt, const void **dst_fmt,
                           size_t *dst_bytes) {
  QCAL_TRY(conv_ready(g, n));
  conv_exec *e = n->x.state;
  *src_fmt = &e->p_src;
  *dst_fmt = &e->p_dst;
  *dst_bytes = dnnl_memory_desc_get_size(&e->p_dst);
  return QCAL_OK;
}

int qcal_fmt_cblock(const void *fmt) {
  const dnnl_memory_desc_t *md = fmt;
  if (!md || md->ndims != 4 || md->format_kind != dnnl_blocked)
    return 0;
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  /* aBcd<B>b: [N][C/B][H][W][B], dense */
  if (b->inner_nblks != 1 || b->inner_idxs[0] != 1)
    return 0;
  int64_t B = b->inner_blks[0], H = md->padded_dims[2], W = md->padded_dims[3];
  if (b->strides[3] != B || b->strides[2] != W * B || b->strides[1] != H * W * B ||
      b->strides[0] != md->padded_dims[1] * H * W || md->padded_dims[1] % B)
    return 0;
  return (int)B;
}

bool qcal_fmt_nhwc(const void *fmt) {
  const dnnl_memory_desc_t *md = fmt;
  if (!md || md->ndims != 4 || md->format_kind != dnnl_blocked)
    return false;
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  const dnnl_dim_t *d = md->dims, *p = md->padded_dims;
  return b->inner_nblks == 0 && p[1] == d[1] && b->strides[1] == 1 && b->strides[3] == d[1] &&
         b->strides[2] == d[3] * d[1] && b->strides[0] == d[2] * d[3] * d[1];
}

size_t qcal_fmt_bytes(const void *fmt) {
  return dnnl_memory_desc_get_size(fmt);
}

qcal_status qcal_fmt_to_plain(const void *fmt, const void *src, float *dst) {
  const dnnl_memory_desc_t *md = fmt;
  qcal_status st = QCAL_OK;
  dnnl_memory_desc_t plain;
  dnnl_primitive_t r = NULL;
  dnnl_memory_t a = NULL, b = NULL;
  QCAL_DNNL(dnnl_memory_desc_init_by_tag(&plain, md->ndims, md->dims, dnnl_f32,
                                         md->ndims == 4 ? dnnl_abcd : dnnl_abcde));
  if ((st = qcal_dnnl_reorder(md, &plain, &r)) || (st = qcal_dnnl_mem(md, (void *)src, &a)) ||
      (st = qcal_dnnl_mem(&plain, dst, &b)))
    goto done;
  if (r)
    st = run_reorder(r, a, b);
  else
    memcpy(dst, src, dnnl_memory_desc_get_size(&plain));
done:
  if (r)
    dnnl_primitive_destroy(r);
  if (a)
    dnnl_memory_destroy(a);
  if (b)
    dnnl_memory_destroy(b);
  return st;
}

bool qcal_fmt_equal(const void *a, const void *b) {
  return a && b && dnnl_memory_desc_equal(a, b);
}

qcal_status qcal_fwd_conv(qcal_graph *g, qcal_node *n) {
  if (g->reference_conv && qcal_conv_ref_supported(g, n))
    return qcal_conv_ref_fwd(g, n);
  qcal_status st = QCAL_OK;
  QCAL_TRY(conv_ready(g, n));
  conv_exec *e = n->x.state;
  const qcal_value *x = qcal_in(g, n, 0), *w = qcal_in(g, n, 1), *b = qcal_in(g, n, 2);
  qcal_value *y = qcal_out(g, n, 0);
  /* weights: reordered once when constant */
  if (!e->r_wei) {
    QCAL_DNNL(dnnl_memory_set_data_handle(e->m_wei, w->data));
  } else if (!e->wei_ready || w->kind != QCAL_VAL_CONST || e->wei_from != w->data ||
             e->wei_gen != w->data_gen) { /* fake-quantized weights come and go */
    QCAL_DNNL(dnnl_memory_set_data_handle(e->m_uwei, w->data));
    QCAL_TRY(run_reorder(e->r_wei, e->m_uwei, e->m_wei));
    e->wei_ready = true;
    e->wei_from = w->data;
    e->wei_gen = w->data_gen;
  }
  /* src: already in the primitive's layout when the producer kept it so */
  if (e->r_src && !qcal_fmt_equal(x->fmt, &e->p_src)) {
    QCAL_DNNL(dnnl_memory_set_data_handle(e->m_usrc, x->data));
    QCAL_TRY(run_reorder(e->r_src, e->m_usrc, e->m_src));
  } else {
    QCAL_DNNL(dnnl_memory_set_data_handle(e->m_src, x->data));
  }
  /* dst: y itself when y keeps the primitive's layout or none is needed */
  bool direct = !e->r_dst || qcal_fmt_equal(y->fmt, &e->p_dst);
  void *dbuf = direct ? y->data : e->b_dst;
  QCAL_DNNL(dnnl_memory_set_data_handle(e->m_dst, dbuf));
  const qcal_value *sum = n->x.sum_in >= 0 ? &g->values[n->x.sum_in] : NULL;
  if (sum) {
    if (!e->r_sum || qcal_fmt_equal(sum->fmt, &e->p_dst)) {
      memcpy(dbuf, sum->data, dnnl_memory_desc_get_size(&e->p_dst));
    } else {
      QCAL_DNNL(dnnl_memory_set_data_handle(e->m_udst, sum->data));
      QCAL_TRY(run_reorder(e->r_sum, e->m_udst, e->m_dst));
    }
  }
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->m_src},
                             {DNNL_ARG_WEIGHTS, e->m_wei},
                             {DNNL_ARG_DST, e->m_dst},
                             {DNNL_ARG_BIAS, e->m_bias}};
  if (b && n->op == QCAL_GOP_Int8Conv) { /* oneDNN 2.x int8: dst = oscale * (acc + bias) */
    if (!e->bias_q) {
      qcal_int8_params q;
      qcal_int8_params_get(n, &q);
      int64_t co = y->shape[1];
      if (q.nscales != co)
        return qcal_node_error(g, n, QCAL_EFORMAT, "has %d scales for %lld output channels",
                               q.nscales, (long long)co);
      if (!(e->bias_q = malloc((size_t)co * sizeof *e->bias_q)))
        return qcal_error(QCAL_ENOMEM, "out of memory");
      for (int64_t c = 0; c < co; c++)
        e->bias_q[c] = ((const float *)b->data)[c] / q.scales[c];
    }
    QCAL_DNNL(dnnl_memory_set_data_handle(e->m_bias, e->bias_q));
  } else if (b)
    QCAL_DNNL(dnnl_memory_set_data_handle(e->m_bias, b->data));
  QCAL_TRY(qcal_dnnl_exec(e->prim, b ? 4 : 3, args));
  if (!direct) {
    QCAL_DNNL(dnnl_memory_set_data_handle(e->m_udst, y->data));
    QCAL_TRY(run_reorder(e->r_dst, e->m_dst, e->m_udst));
  }
done:
  if (st) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", qcal_last_error());
    return qcal_node_error(g, n, st, "%s", msg);
  }
  return QCAL_OK;
}
