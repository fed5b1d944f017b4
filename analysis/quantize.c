/* qcal quantize's engine: load a model, run FP32 on calibration photos,
 * calibrate every quantization point (activations by the chosen method over
 * the stacked calibration photos, weights by max per output channel, as
 * pytorch-quantization does), and describe the Q/DQ pairs for the ONNX
 * writer. The graph is prepared without fusion so that what is written is
 * the model's own op sequence (BatchNormalization folded into the
 * convolution before it, as TensorRT folds it). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/repair_internal.h"
#include "qcal/calib.h"
#include "qcal/escape.h"
#include "qcal/export.h"
#include "qcal/metrics.h"
#include "qcal/progress.h"
#include "qcal/quantize.h"
#include "qcal/sweep.h"

const char *const qcal_placement_names[QCAL_PLACE_COUNT + 1] = {
#define X(id, name, opt, help) name,
    QCAL_PLACEMENTS(X)
#undef X
        NULL};
static const bool placement_optional[QCAL_PLACE_COUNT] = {
#define X(id, name, opt, help) opt,
    QCAL_PLACEMENTS(X)
#undef X
};

static qcal_status oom(void) {
  return qcal_error(QCAL_ENOMEM, "out of memory");
}

/* The point of value v (one per value: a value read by a convolution and a
 * residual Add gets one pair both read through). */
static qcal_status point_for(qcal_quantized *q, const qcal_qpoint *p, int *cap) {
  qcal_quant_point *pt = NULL;
  for (int k = 0; k < q->npts && !pt; k++)
    if (q->pts[k].value == p->value)
      pt = &q->pts[k];
  if (!pt) {
    if (q->npts == *cap) {
      int nc = *cap ? 2 * *cap : 32;
      qcal_quant_point *np = realloc(q->pts, (size_t)nc * sizeof *np);
      if (!np)
        return oom();
      q->pts = np, *cap = nc;
    }
    pt = &q->pts[q->npts++];
    *pt = (qcal_quant_point){.value = p->value,
                             .weight = p->kind == QCAL_QP_WEIGHT,
                             .axis = p->kind == QCAL_QP_WEIGHT ? p->axis : QCAL_PER_TENSOR};
  }
  int *rn = realloc(pt->reader_node, (size_t)(pt->nreaders + 1) * sizeof *rn);
  if (!rn)
    return oom();
  pt->reader_node = rn;
  int *rs = realloc(pt->reader_slot, (size_t)(pt->nreaders + 1) * sizeof *rs);
  if (!rs)
    return oom();
  pt->reader_slot = rs;
  pt->reader_node[pt->nreaders] = p->node;
  pt->reader_slot[pt->nreaders++] = p->slot;
  return QCAL_OK;
}

static void free_set(qcal_tensor *set, int n) {
  for (int i = 0; set && i < n; i++)
    qcal_tensor_free(&set[i]);
  free(set);
}

/* A copy of src[n]; nothing left allocated when it fails. */
static qcal_status copy_set(const qcal_tensor *src, int n, qcal_tensor **dst) {
  *dst = calloc((size_t)n + 1, sizeof **dst);
  if (!*dst)
    return oom();
  for (int i = 0; i < n; i++) {
    qcal_status st = qcal_tensor_alloc(&(*dst)[i], src[i].ndim, src[i].shape);
    if (st) {
      free_set(*dst, i);
      *dst = NULL;
      return st;
    }
    memcpy((*dst)[i].data, src[i].data, src[i].numel * sizeof *src[i].data);
    memcpy((*dst)[i].name, src[i].name, sizeof src[i].name);
  }
  return QCAL_OK;
}

/* The caller's preloaded split (cfg->calib_set), copied: the engine owns
 * and frees its photos. */
static qcal_status given_photos(const qcal_quantize_cfg *cfg, qcal_quantized *q, qcal_tensor **imgs,
                                qcal_tensor **held, int *nheld) {
  if (cfg->ncalib_set < 1)
    return qcal_error(QCAL_EINVAL, "no calibration photos given");
  q->ncalib = cfg->ncalib_set;
  *nheld = isnan(cfg->target_db) ? 0 : cfg->nheld_set;
  if (!isnan(cfg->target_db) && *nheld == 0)
    return qcal_error(QCAL_EINVAL, "--target-db measures on held-out photos, and none are given");
  QCAL_TRY(copy_set(cfg->calib_set, cfg->ncalib_set, imgs));
  qcal_status st = *nheld ? copy_set(cfg->held_set, *nheld, held) : QCAL_OK;
  if (st) {
    free_set(*imgs, q->ncalib);
    *imgs = NULL;
  }
  return st;
}

static qcal_status load_photos(const qcal_quantize_cfg *cfg, qcal_quantized *q, qcal_tensor **imgs,
                               qcal_tensor **held, int *nheld) {
  if (cfg->calib_set)
    return given_photos(cfg, q, imgs, held, nheld);
  char **names;
  int n;
  QCAL_TRY(qcal_image_dir(cfg->images, &names, &n));
  int *ok = calloc((size_t)n + 1, sizeof *ok), *idx = malloc(((size_t)n + 1) * sizeof *idx);
  qcal_tensor *all = calloc((size_t)n + 1, sizeof *all);
  qcal_status st = ok && idx && all ? QCAL_OK : oom();
  int usable = 0;
  for (int i = 0; i < n && !st; i++) {
    char path[4400], shown[1200];
    snprintf(path, sizeof path, "%s/%s", cfg->images, names[i]);
    if (qcal_image_preprocess(path, &q->pre, &all[i]) == QCAL_OK)
      ok[i] = 1, usable++;
    else
      fprintf(stderr, "qcal: warning: skipping %s\n",
              qcal_escape_text(qcal_last_error(), shown, sizeof shown));
  }
  if (!st && usable == 0)
    st = qcal_error(QCAL_EDATA, "%s: no usable image to calibrate on", cfg->images);
  if (!st) {
    int ncal = cfg->calib > 0 && cfg->calib < usable ? cfg->calib : usable;
    const bool want_held = !isnan(cfg->target_db);
    if (want_held && cfg->calib == 0) /* half to calibrate, half held out */
      ncal = (usable + 1) / 2;
    int *hidx = malloc(((size_t)n + 1) * sizeof *hidx);
    if (!hidx)
      st = oom();
    else
      qcal_image_split(ok, n, ncal, 0, idx, &q->ncalib, hidx, nheld);
    if (!st && want_held && *nheld == 0)
      st = qcal_error(QCAL_EINVAL,
                      "--target-db measures on held-out photos, and --calib %d leaves none of the "
                      "%d usable photos in %s",
                      cfg->calib, usable, cfg->images);
    if (!want_held)
      *nheld = 0;
    *imgs = st ? NULL : calloc((size_t)q->ncalib, sizeof **imgs);
    *held = st || !*nheld ? NULL : calloc((size_t)*nheld, sizeof **held);
    if (!st && (!*imgs || (*nheld && !*held)))
      st = oom();
    for (int k = 0; k < q->ncalib && !st; k++) { /* move the chosen ones */
      (*imgs)[k] = all[idx[k]];
      all[idx[k]].data = NULL;
    }
    for (int k = 0; k < *nheld && !st; k++) {
      (*held)[k] = all[hidx[k]];
      all[hidx[k]].data = NULL;
    }
    free(hidx);
  }
  for (int i = 0; all && i < n; i++)
    qcal_tensor_free(&all[i]);
  free(all), free(ok), free(idx);
  qcal_image_dir_free(names, n);
  return st;
}

static qcal_status calibrate_points(const qcal_quantize_cfg *cfg, qcal_quantized *q,
                                    qcal_tensor *imgs) {
  qcal_graph *g = q->g;
  const qcal_method_info *mi = qcal_method_find(cfg->method);
  const qcal_method_info *wmax = qcal_method_find("max");
  if (!mi || !wmax)
    return qcal_error(QCAL_EINVAL, "unknown method '%s'", cfg->method);
  qcal_tensor *stack = calloc((size_t)q->npts + 1, sizeof *stack);
  if (!stack)
    return oom();
  qcal_status st = QCAL_OK;
  for (int k = 0; k < q->npts && !st; k++) {
    const qcal_value *v = &g->values[q->pts[k].value];
    int64_t shape[QCAL_MAX_DIMS];
    memcpy(shape, v->shape, (size_t)v->ndim * sizeof *shape);
    if (v->dtype != QCAL_DT_F32 || v->ndim < 1 || v->numel == 0) {
      st = qcal_error(QCAL_EDTYPE, "%s: tensor '%s' is not a non-empty float32 tensor",
                      q->model_path, v->name);
      break;
    }
    if (!q->pts[k].weight)
      shape[0] *= q->ncalib;
    st = qcal_tensor_alloc(&stack[k], v->ndim, shape);
    snprintf(stack[k].name, sizeof stack[k].name, "%s", v->name);
  }
  double t0 = qcal_now();
  qcal_progress prog;
  qcal_progress_start(&prog, "calibration photos", (size_t)q->ncalib);
  for (int i = 0; i < q->ncalib && !st; i++) {
    const void *in[1] = {imgs[i].data};
    st = qcal_graph_run(g, in);
    for (int k = 0; k < q->npts && !st; k++) {
      const qcal_value *v = &g->values[q->pts[k].value];
      if (q->pts[k].weight && i > 0)
        continue;
      st = qcal_graph_read(g, q->pts[k].value,
                           stack[k].data + (q->pts[k].weight ? 0 : (size_t)i * v->numel));
    }
    qcal_progress_step(&prog, 1);
  }
  qcal_progress_end(&prog);
  q->t_forward = qcal_now() - t0;
  t0 = qcal_now();
  qcal_progress_start(&prog, "calibrate", (size_t)q->npts);
  for (int k = 0; k < q->npts && !st; k++) {
    qcal_quant_point *p = &q->pts[k];
    if ((st = qcal_tensor_check(&stack[k]))) {
      char m[600];
      snprintf(m, sizeof m, "%s", qcal_last_error());
      st = qcal_error(st, "%s: tensor '%s' on the calibration photos: %s", q->model_path,
                      g->values[p->value].name, m);
      break;
    }
    qcal_calib_request rq = {p->weight ? wmax : mi, p->weight ? p->axis : QCAL_PER_TENSOR,
                             QCAL_HIST_OPTS_DEFAULT, QCAL_CALIB_OPTS_DEFAULT};
    rq.calib.fmt = p->weight ? repair_wfmt(cfg) : repair_afmt(cfg);
    if (cfg->percentile > 0)
      rq.calib.percentile = cfg->percentile;
    rq.hist.threads = cfg->threads;
    qcal_calib_result r = {0};
    st = qcal_calibrate(&stack[k], &rq, &r);
    if (!st) {
      p->nscale = (int)r.channels;
      p->amax = r.amax;
      r.amax = NULL;
      if (!(p->scale = malloc(r.channels * sizeof *p->scale)))
        st = oom();
      float qmax = qcal_qformat_qmax(rq.calib.fmt);
      for (size_t c = 0; !st && c < r.channels; c++) /* pytorch-quantization: scale 1 at amax 0 */
        p->scale[c] = p->amax[c] > QCAL_AMAX_EPSILON ? p->amax[c] / qmax : 1.0f;
    }
    qcal_calib_result_free(&r);
    qcal_progress_step(&prog, 1);
  }
  qcal_progress_end(&prog);
  q->t_calib = qcal_now() - t0;
  for (int k = 0; k < q->npts; k++)
    qcal_tensor_free(&stack[k]);
  free(stack);
  return st;
}

static qcal_status read_outputs(qcal_graph *g, float **out);

/* The graph's float outputs on each photo, [n * noutputs]. */
static qcal_status float_outputs(qcal_graph *g, qcal_tensor *imgs, int n, float ***ref) {
  *ref = calloc((size_t)(n * g->noutputs) + 1, sizeof **ref);
  if (!*ref)
    return oom();
  qcal_status st = QCAL_OK;
  for (int i = 0; i < n && !st; i++) {
    const void *in[1] = {imgs[i].data};
    st = qcal_graph_run(g, in);
    if (!st)
      st = read_outputs(g, *ref + (size_t)i * (size_t)g->noutputs);
  }
  return st;
}

/* The repairs that need calibrated points, in the list's order. */
static qcal_status run_repairs(const qcal_quantize_cfg *cfg, qcal_quantized *q, qcal_tensor *imgs,
                               qcal_tensor *held, int nheld, float **ref) {
  rstate rs;
  qcal_status st = repair_layers(&rs, q, cfg);
  double t0 = qcal_now();
  if (!st && (cfg->repair & (1u << QCAL_REPAIR_ADAROUND)))
    st = repair_adaround(&rs, imgs, q->ncalib);
  q->rep.seconds[1] = qcal_now() - t0;
  t0 = qcal_now();
  if (!st && (cfg->repair & (1u << QCAL_REPAIR_BIAS_BN)))
    st = repair_bias_bn(&rs);
  if (!st && (cfg->repair & (1u << QCAL_REPAIR_BIAS)))
    st = repair_bias(&rs, imgs, q->ncalib);
  q->rep.seconds[2] = qcal_now() - t0;
  t0 = qcal_now();
  if (!st && nheld)
    st = repair_mixed(&rs, held, nheld, ref);
  q->rep.seconds[3] = qcal_now() - t0;
  repair_layers_free(&rs);
  return st;
}

qcal_status qcal_quantize_calibrate(const qcal_quantize_cfg *cfg, qcal_quantized *q) {
  memset(q, 0, sizeof *q);
  double t0 = qcal_now();
  q->rep.target_db = cfg->target_db;
  q->rep.search_db = cfg->target_db + cfg->margin_db;
  q->rep.file_db = NAN;
  q->rep.tries = 1;
  q->rep.mask = cfg->repair;
  if (cfg->bits != 8)
    return qcal_error(QCAL_EUNSUPPORTED,
                      "--bits %d: ONNX QuantizeLinear holds int8 (4-bit needs opset 21's int4, "
                      "which TensorRT 8 and ONNX Runtime's CPU kernels do not run); 8 only "
                      "(--weight-bits 2..8 puts the weights on a narrower grid held in int8)",
                      cfg->bits);
  if (cfg->wbits && (cfg->wbits < 2 || cfg->wbits > 8))
    return qcal_error(QCAL_EINVAL, "--weight-bits %d: 2 to 8 (held in int8)", cfg->wbits);
  QCAL_TRY(qcal_model_file(cfg->model, q->model_path, sizeof q->model_path));
  QCAL_TRY(qcal_graph_load(q->model_path, &q->g));
  qcal_graph *g = q->g;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == QCAL_GOP_QuantizeLinear || g->nodes[i].op == QCAL_GOP_DequantizeLinear)
      return qcal_error(QCAL_EINVAL,
                        "%s: the model already holds Q/DQ nodes ('%s'); quantize "
                        "its float original",
                        q->model_path, g->nodes[i].name);
  if (g->ninputs != 1)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: the model has %d inputs; quantize feeds one image",
                      q->model_path, g->ninputs);
  const qcal_value *in = &g->values[g->inputs[0]];
  if (in->dtype != QCAL_DT_F32)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: input '%s' is %s; quantize feeds float32 images",
                      q->model_path, in->name, qcal_dtype_name(in->dtype));
  bool resize;
  QCAL_TRY(qcal_preproc_resolve(&cfg->pre, q->model_path, in->ndim, in->shape, &q->pre, &resize));
  bool calibrate = strcmp(cfg->method, "none") != 0;
  qcal_tensor *imgs = NULL, *held = NULL;
  int nheld = 0;
  if (!calibrate && ((cfg->repair & ~(1u << QCAL_REPAIR_CLE)) || !isnan(cfg->target_db)))
    return qcal_error(QCAL_EINVAL, "--method none writes the float model: of the repairs, only "
                                   "cle applies to it");
  if (calibrate)
    QCAL_TRY(load_photos(cfg, q, &imgs, &held, &nheld));
  qcal_status st = QCAL_OK;
  int64_t shape[QCAL_MAX_DIMS];
  int ndim = in->ndim;
  memcpy(shape, in->shape, sizeof shape);
  if (imgs)
    memcpy(shape, imgs[0].shape, sizeof shape), ndim = imgs[0].ndim;
  if (!imgs && ndim == 4) { /* the float model: the resolved input size */
    int hw = q->pre.nchw ? 2 : 1;
    shape[0] = 1;
    shape[q->pre.nchw ? 1 : 3] = q->pre.channels;
    shape[hw] = q->pre.height, shape[hw + 1] = q->pre.width;
  }
  st = resize ? qcal_graph_resize_input(g, 0, ndim, shape)
              : qcal_graph_bind_input(g, 0, ndim, shape);
  qcal_graph_opts go = {.threads = cfg->threads,
                        .no_fuse = true,
                        .plain_values = true,
                        .repair_params = cfg->repair || !isnan(cfg->target_db),
                        .equalize = cfg->repair & (1u << QCAL_REPAIR_CLE),
                        .absorb_form = cfg->repair & (1u << QCAL_REPAIR_BIAS)};
  if (!st)
    st = qcal_graph_prepare(g, &go);
  qcal_qpoint *qp = NULL;
  int nq = 0, cap = 0;
  if (!st && calibrate)
    st = qcal_graph_qpoints(g, placement_optional[cfg->placement], &qp, &nq);
  for (int k = 0; !st && k < nq; k++) {
    const qcal_value *v = &g->values[qp[k].value];
    if (qp[k].kind == QCAL_QP_WEIGHT && v->kind != QCAL_VAL_CONST)
      continue; /* a weight computed at run time: its reader's input Q/DQ covers it */
    if (qp[k].slot < 0)
      continue;
    qcal_qpoint p = qp[k];
    if (p.kind == QCAL_QP_WEIGHT && cfg->weights_per_tensor)
      p.axis = QCAL_PER_TENSOR;
    st = point_for(q, &p, &cap);
  }
  free(qp);
  if (!st && calibrate && q->npts == 0)
    st = qcal_error(QCAL_EDATA,
                    "%s: the model has no quantizable node (Conv, ConvTranspose, Gemm or MatMul)",
                    q->model_path);
  q->t_load = qcal_now() - t0;
  q->rep.cle = g->cle;
  float **ref = NULL;
  if (!st && nheld) /* the original model's outputs (equalization keeps them) */
    st = float_outputs(g, held, nheld, &ref);
  t0 = qcal_now();
  if (!st && (cfg->repair & (1u << QCAL_REPAIR_BIAS))) {
    rstate rs = {.q = q, .cfg = cfg}; /* absorption works on pairs, not on the layer list */
    st = repair_absorb(&rs, imgs, q->ncalib);
  }
  q->rep.seconds[0] = qcal_now() - t0;
  if (!st && calibrate)
    st = calibrate_points(cfg, q, imgs);
  if (!st && (cfg->repair & ~(1u << QCAL_REPAIR_CLE) || nheld))
    st = run_repairs(cfg, q, imgs, held, nheld, ref);
  q->held = held, q->nheld = nheld, q->ref = ref; /* for qcal_quantize_verify */
  if (!st && imgs) {                              /* kept for qcal_quantize_check */
    q->probe = imgs[0];
    memset(&imgs[0], 0, sizeof imgs[0]);
  }
  free_set(imgs, q->ncalib);
  return st;
}

qcal_status qcal_quantize_write_onnx(const qcal_quantized *q, const char *path) {
  qcal_qdq *d = calloc((size_t)q->npts + 1, sizeof *d);
  if (!d)
    return oom();
  for (int k = 0; k < q->npts; k++) {
    const qcal_quant_point *p = &q->pts[k];
    d[k] = (qcal_qdq){p->value,      p->nscale > 1 ? p->axis : QCAL_PER_TENSOR,
                      p->nscale,     p->scale,
                      p->nreaders,   p->reader_node,
                      p->reader_slot};
  }
  qcal_status st = qcal_onnx_save(q->g, d, q->npts, path);
  free(d);
  return st;
}

qcal_status qcal_quantize_write_trt_cache(const qcal_quantized *q, const qcal_quantize_cfg *cfg,
                                          FILE *out) {
  fprintf(out, "TRT-8601-%s\n",
          !strcmp(cfg->method, "max") ? "MinMaxCalibration" : "EntropyCalibration2");
  for (int k = 0; k < q->npts; k++) {
    const qcal_quant_point *p = &q->pts[k];
    if (p->weight)
      continue; /* the cache holds activation ranges only */
    char name[1100], line[1200];
    const char *nm = qcal_onnx_value_name(q->g, p->value, name, sizeof name);
    qcal_trt_cache_line(nm, p->amax[0], line, sizeof line);
    fprintf(out, "%s\n", line);
  }
  return ferror(out) ? qcal_error(QCAL_EIO, "cannot write the calibration cache") : QCAL_OK;
}

qcal_status qcal_quantize_write_json(const qcal_quantized *q, const qcal_quantize_cfg *cfg,
                                     FILE *out) {
  json_object *root = json_object_new_object(), *list = json_object_new_object();
  json_object_object_add(root, "method", json_object_new_string(cfg->method));
  if (!strcmp(cfg->method, "percentile"))
    json_object_object_add(root, "percentile", json_object_new_double(cfg->percentile));
  json_object_object_add(root, "bits", json_object_new_int(cfg->bits));
  json_object_object_add(
      root, "granularity",
      json_object_new_string(cfg->weights_per_tensor ? "per-tensor" : "per-channel"));
  json_object_object_add(root, "placement",
                         json_object_new_string(qcal_placement_names[cfg->placement]));
  if (cfg->wbits && cfg->wbits != cfg->bits)
    json_object_object_add(root, "weight_bits", json_object_new_int(cfg->wbits));
  json_object_object_add(root, "repair", qcal_repair_report_json(&q->rep));
  for (int k = 0; k < q->npts; k++) {
    const qcal_quant_point *p = &q->pts[k];
    const float qmax = qcal_qformat_qmax(p->weight ? repair_wfmt(cfg) : repair_afmt(cfg));
    char name[1100];
    const char *nm = qcal_onnx_value_name(q->g, p->value, name, sizeof name);
    json_object_object_add(list, nm,
                           qcal_export_json_entry(p->weight ? "weight" : "activation", nm, p->amax,
                                                  (size_t)p->nscale, qmax));
  }
  json_object_object_add(root, "tensors", list);
  fprintf(out, "%s\n",
          json_object_to_json_string_ext(root,
                                         JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put(root);
  return ferror(out) ? qcal_error(QCAL_EIO, "cannot write the JSON scales") : QCAL_OK;
}

/* Every float output of g after a run, one buffer each (NULL: not float). */
static qcal_status read_outputs(qcal_graph *g, float **out) {
  for (int o = 0; o < g->noutputs; o++) {
    const qcal_value *v = &g->values[g->outputs[o]];
    out[o] = NULL;
    if (v->dtype != QCAL_DT_F32)
      continue;
    if (!(out[o] = malloc((v->numel ? v->numel : 1) * sizeof **out)))
      return oom();
    QCAL_TRY(qcal_graph_read(g, g->outputs[o], out[o]));
  }
  return QCAL_OK;
}

/* Fake quantization of every point as the file will hold it. */
static qcal_status fake_quant_all(qcal_quantized *q, const qcal_quantize_cfg *cfg) {
  rstate rs = {.q = q, .cfg = cfg};
  qcal_graph_fq *fq;
  int nfq;
  QCAL_TRY(repair_fq_list(&rs, NULL, &fq, &nfq));
  qcal_status st = qcal_graph_fake_quant(q->g, fq, nfq);
  free(fq);
  return st;
}

qcal_status qcal_quantize_run(qcal_quantized *q, const qcal_quantize_cfg *cfg,
                              const qcal_tensor *imgs, int n, qcal_quantize_each_fn fn, void *ctx) {
  qcal_status st = fake_quant_all(q, cfg);
  for (int i = 0; i < n && !st; i++) {
    const void *in[1] = {imgs[i].data};
    st = qcal_graph_run(q->g, in);
    if (!st)
      st = fn(ctx, i, q->g);
  }
  qcal_status cl = qcal_graph_fake_quant(q->g, NULL, 0);
  return st ? st : cl;
}

/* The written file, loaded and prepared to run as written (engine qdq)
 * on inputs shaped like x. */
static qcal_status load_written(const qcal_quantized *q, const qcal_quantize_cfg *cfg,
                                const char *path, const qcal_tensor *x, qcal_graph **r) {
  QCAL_TRY(qcal_onnx_load(path, r));
  const qcal_graph *g = q->g;
  if ((*r)->ninputs != 1 || (*r)->noutputs != g->noutputs)
    return qcal_error(QCAL_EINVAL, "%s: the written model has %d inputs and %d outputs", path,
                      (*r)->ninputs, (*r)->noutputs);
  qcal_graph_opts ro = {.threads = cfg->threads, .engine = QCAL_ENGINE_QDQ};
  QCAL_TRY(qcal_graph_bind_input(*r, 0, x->ndim, x->shape));
  QCAL_TRY(qcal_graph_prepare(*r, &ro));
  for (int o = 0; o < g->noutputs; o++)
    if ((*r)->values[(*r)->outputs[o]].numel != g->values[g->outputs[o]].numel)
      return qcal_error(QCAL_EINVAL, "%s: output %d of the written model has %zu values, not %zu",
                        path, o, (*r)->values[(*r)->outputs[o]].numel,
                        g->values[g->outputs[o]].numel);
  return QCAL_OK;
}

/* The lowest SQNR over outputs o of got[n * noutputs] against ref. */
static double worst_db(const qcal_graph *g, float **ref, float **got, int n) {
  double db = INFINITY;
  for (int o = 0; o < g->noutputs; o++) {
    qcal_error_stats es;
    qcal_error_stats_init(&es);
    bool any = false;
    for (int i = 0; i < n; i++) {
      const size_t k = (size_t)i * (size_t)g->noutputs + (size_t)o;
      if (ref[k] && got[k]) {
        qcal_error_stats_update(&es, g->values[g->outputs[o]].numel, ref[k], got[k], INFINITY);
        any = true;
      }
    }
    if (!any)
      continue;
    qcal_metrics m;
    qcal_error_stats_finish(&es, &m);
    db = m.sqnr_db < db ? m.sqnr_db : db;
  }
  return db;
}

qcal_status qcal_quantize_check(qcal_quantized *q, const qcal_quantize_cfg *cfg, const char *path,
                                double *db) {
  *db = INFINITY;
  if (!q->npts || !q->probe.data)
    return QCAL_OK;
  qcal_graph *g = q->g, *r = NULL;
  float **sim = calloc((size_t)g->noutputs + 1, sizeof *sim);
  float **got = calloc((size_t)g->noutputs + 1, sizeof *got);
  qcal_status st = sim && got ? QCAL_OK : oom();
  const void *in[1] = {q->probe.data};
  if (!st)
    st = fake_quant_all(q, cfg);
  if (!st)
    st = qcal_graph_run(g, in);
  if (!st)
    st = read_outputs(g, sim);
  qcal_status cl = qcal_graph_fake_quant(g, NULL, 0);
  st = st ? st : cl;
  if (!st)
    st = load_written(q, cfg, path, &q->probe, &r);
  if (!st)
    st = qcal_graph_run(r, in);
  if (!st)
    st = read_outputs(r, got);
  if (!st)
    *db = worst_db(g, sim, got, 1);
  for (int o = 0; o < (sim ? g->noutputs : 0); o++)
    free(sim[o]), free(got ? got[o] : NULL);
  free(sim), free(got);
  qcal_graph_free(r);
  return st;
}

qcal_status qcal_quantize_verify(qcal_quantized *q, const qcal_quantize_cfg *cfg, const char *path,
                                 double *db) {
  *db = NAN;
  if (!q->nheld || !q->npts)
    return QCAL_OK;
  qcal_graph *r = NULL;
  const int no = q->g->noutputs;
  float **got = calloc((size_t)(q->nheld * no) + 1, sizeof *got);
  qcal_status st = got ? load_written(q, cfg, path, &q->held[0], &r) : oom();
  for (int i = 0; i < q->nheld && !st; i++) {
    const void *in[1] = {q->held[i].data};
    st = qcal_graph_run(r, in);
    if (!st)
      st = read_outputs(r, got + (size_t)i * (size_t)no);
  }
  if (!st)
    *db = q->rep.file_db = worst_db(q->g, q->ref, got, q->nheld);
  for (int i = 0; got && i < q->nheld * no; i++)
    free(got[i]);
  free(got);
  qcal_graph_free(r);
  return st;
}

qcal_status qcal_quantize_to_file(const qcal_quantize_cfg *cfg, const char *path, qcal_quantized *q,
                                  double *check_db) {
  qcal_quantize_cfg c = *cfg;
  c.margin_db = 0;
  for (int tries = 1;; tries++) {
    QCAL_TRY(qcal_quantize_calibrate(&c, q));
    q->rep.tries = tries;
    QCAL_TRY(qcal_quantize_write_onnx(q, path));
    QCAL_TRY(qcal_quantize_check(q, &c, path, check_db)); /* +inf for the float model */
    double db;
    QCAL_TRY(qcal_quantize_verify(q, &c, path, &db));
    if (isnan(db) || db >= cfg->target_db || q->rep.kept_float >= q->rep.layers || tries == 4)
      return QCAL_OK;
    /* aim above what the search reached by the file's shortfall */
    const double aim = fmax(q->rep.search_db, q->rep.reached_db) + cfg->target_db - db + 0.25;
    fprintf(stderr,
            "quantize: the file as written reaches %.2f dB on the held-out photos where the search "
            "measured %.2f (float rounding this network amplifies); searching again for %.2f dB\n",
            db, q->rep.reached_db, aim);
    c.margin_db = aim - cfg->target_db;
    qcal_quantized_free(q);
  }
}

void qcal_quantized_free(qcal_quantized *q) {
  for (int k = 0; k < q->npts; k++) {
    free(q->pts[k].amax), free(q->pts[k].scale);
    free(q->pts[k].reader_node), free(q->pts[k].reader_slot);
  }
  free(q->pts);
  for (int i = 0; q->ref && q->g && i < q->nheld * q->g->noutputs; i++)
    free(q->ref[i]);
  free(q->ref);
  qcal_graph_free(q->g);
  qcal_tensor_free(&q->probe);
  free_set(q->held, q->nheld);
  qcal_repair_report_free(&q->rep);
  memset(q, 0, sizeof *q);
}
