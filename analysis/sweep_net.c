/* The network a sweep calibrates, on the graph IR: load it (ONNX or TF.js),
 * preprocess the photos as the model expects, split them into calibration
 * and held-out sets, run FP32 once per photo, and turn every quantization
 * point into sweep items: each layer's weight, and its input activations
 * stacked over the calibration photos (measured on the held-out ones). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/task.h"
#include "qcal/escape.h"
#include "qcal/outmetric.h"
#include "qcal/progress.h"
#include "qcal/sweep.h"

static qcal_status load_images(sweep_state *s) {
  char **names;
  int n;
  QCAL_TRY(qcal_image_dir(s->cfg.images, &names, &n));
  s->nimages = n;
  s->images = calloc((size_t)(n ? n : 1), sizeof *s->images);
  s->image_names = calloc((size_t)(n ? n : 1), sizeof *s->image_names);
  s->image_status = calloc((size_t)(n ? n : 1), sizeof *s->image_status);
  s->image_ok = calloc((size_t)(n ? n : 1), sizeof *s->image_ok);
  if (!s->images || !s->image_names || !s->image_status || !s->image_ok) {
    qcal_image_dir_free(names, n);
    s->nimages = 0;
    return qcal_error(QCAL_ENOMEM, "out of memory");
  }
  int usable = 0;
  for (int i = 0; i < n; i++) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", s->cfg.images, names[i]);
    snprintf(s->image_names[i], sizeof s->image_names[i], "%s", names[i]);
    qcal_status st = qcal_image_preprocess(path, &s->pre, &s->images[i]);
    if (st == QCAL_OK) {
      s->image_ok[i] = 1;
      usable++;
      snprintf(s->image_status[i], sizeof s->image_status[i], "ok");
    } else {
      char shown[1200];
      fprintf(stderr, "qcal: warning: skipping %s\n",
              qcal_escape_text(qcal_last_error(), shown, sizeof shown));
      snprintf(s->image_status[i], sizeof s->image_status[i], "skipped: %s", qcal_last_error());
    }
  }
  qcal_image_dir_free(names, n);
  if (usable < 2)
    return qcal_error(QCAL_EDATA, "%s: %d usable images; need at least 2 (calibration + held-out)",
                      s->cfg.images, usable);
  int ncal = s->cfg.calib_images > 0 ? s->cfg.calib_images : (usable + 1) / 2;
  if (ncal >= usable)
    return qcal_error(QCAL_EINVAL, "--calib %d leaves no held-out image (%d usable)", ncal, usable);
  s->calib_idx = malloc((size_t)usable * sizeof(int));
  s->held_idx = malloc((size_t)usable * sizeof(int));
  if (!s->calib_idx || !s->held_idx)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  qcal_image_split(s->image_ok, n, ncal, s->cfg.held_images, s->calib_idx, &s->ncalib, s->held_idx,
                   &s->nheld);
  return QCAL_OK;
}

/* model.json / model.onnx, or a folder holding model.json or posenet.json */
qcal_status qcal_model_file(const char *given, char *out, size_t cap) {
  struct stat sb;
  snprintf(out, cap, "%s", given);
  if (stat(given, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    const char *cand[] = {"model.json", "model.onnx", "posenet.json"};
    for (size_t i = 0; i < 3; i++) {
      snprintf(out, cap, "%s/%s", given, cand[i]);
      if (stat(out, &sb) == 0)
        return QCAL_OK;
    }
    return qcal_error(QCAL_EIO, "%s: no model.json, model.onnx or posenet.json in this folder",
                      given);
  }
  if (stat(out, &sb) != 0)
    return qcal_error(QCAL_EIO, "%s: model not found (run scripts/fetch-data.sh, or pass --model)",
                      out);
  return QCAL_OK;
}

static const char *layer_op(const qcal_graph *g, const qcal_node *n) {
  char buf[32]; /* weighted ops have fixed kind names: buf is never returned */
  return qcal_node_kind(g, n, buf, sizeof buf);
}

/* Channel axis of a stacked activation [n, ...]: C of NCHW, else the last. */
static int act_axis(const qcal_value *v) {
  return v->ndim == 4 ? 1 : v->ndim >= 2 ? v->ndim - 1 : QCAL_PER_TENSOR;
}

static qcal_status build_layers(sweep_state *s) {
  qcal_qpoint *qp = NULL;
  int nq = 0;
  QCAL_TRY(qcal_graph_qpoints(s->graph, false, &qp, &nq));
  s->layers = calloc((size_t)(nq ? nq : 1), sizeof *s->layers);
  int *nodes = malloc((size_t)(nq ? nq : 1) * sizeof *nodes);
  char(*names)[160] = malloc((size_t)(nq ? nq : 1) * sizeof *names);
  if (!s->layers || !nodes || !names) {
    free(qp), free(nodes), free(names);
    return qcal_error(QCAL_ENOMEM, "out of memory");
  }
  for (int k = 0; k < nq; k++) {
    sweep_layer *L = s->nlayers ? &s->layers[s->nlayers - 1] : NULL;
    if (!L || L->node != qp[k].node) {
      L = &s->layers[s->nlayers++];
      L->node = qp[k].node;
      L->weight_slot = L->weight_item = -1;
      L->act_item[0] = L->act_item[1] = -1;
      L->op = layer_op(s->graph, &s->graph->nodes[L->node]);
      nodes[s->nlayers - 1] = L->node;
    }
    if (qp[k].kind == QCAL_QP_WEIGHT) {
      L->weight_slot = qp[k].slot;
      L->weight_axis = qp[k].axis;
    } else if (L->nacts < 2) {
      L->act_slot[L->nacts++] = qp[k].slot;
    }
  }
  qcal_layer_names(s->graph, nodes, s->nlayers, names);
  for (int l = 0; l < s->nlayers; l++)
    snprintf(s->layers[l].name, sizeof s->layers[l].name, "%s", names[l]);
  free(qp), free(nodes), free(names);
  if (s->nlayers == 0)
    return qcal_error(QCAL_EDATA,
                      "%s: the model has no quantizable layer (Conv, ConvTranspose, "
                      "Gemm or MatMul)",
                      s->model_path);
  return QCAL_OK;
}

/* Items for every selected point; activation tensors allocated [n, ...]. */
static qcal_status add_items(sweep_state *s) {
  qcal_graph *g = s->graph;
  for (int l = 0; l < s->nlayers; l++) {
    sweep_layer *L = &s->layers[l];
    const qcal_node *nd = &g->nodes[L->node];
    if (L->weight_slot >= 0) {
      const qcal_value *w = &g->values[nd->in[L->weight_slot]];
      sweep_item it = {0};
      snprintf(it.name, sizeof it.name, "%s/weight", L->name);
      qcal_value_model_name(g, w, it.graph_tensor, sizeof it.graph_tensor);
      it.kind = ITEM_WEIGHT;
      it.layer = l;
      it.axis = L->weight_axis;
      if (qcal_sweep_selected(s, it.name)) {
        QCAL_TRY(qcal_tensor_alloc(&it.calib, w->ndim, w->shape));
        snprintf(it.calib.name, sizeof it.calib.name, "%s", it.name);
        L->weight_item = s->nitems;
        QCAL_TRY(qcal_sweep_add_item(s, &it));
      }
    }
    for (int a = 0; a < L->nacts; a++) {
      const qcal_value *x = &g->values[nd->in[L->act_slot[a]]];
      sweep_item it = {0};
      snprintf(it.name, sizeof it.name, "%s/input%s", L->name, a ? "_b" : "");
      qcal_value_model_name(g, x, it.graph_tensor, sizeof it.graph_tensor);
      it.kind = ITEM_ACTIVATION;
      it.layer = l;
      it.axis = act_axis(x);
      if (!qcal_sweep_selected(s, it.name))
        continue;
      if (x->dtype != QCAL_DT_F32 || x->ndim < 1)
        return qcal_error(QCAL_EDTYPE, "%s: input '%s' of layer '%s' is not a float32 tensor",
                          s->model_path, x->name, L->name);
      int64_t shape[QCAL_MAX_DIMS];
      memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
      shape[0] = x->shape[0] * s->ncalib;
      QCAL_TRY(qcal_tensor_alloc(&it.calib, x->ndim, shape));
      shape[0] = x->shape[0] * s->nheld;
      qcal_status st = qcal_tensor_alloc(&it.eval, x->ndim, shape);
      if (st) {
        qcal_tensor_free(&it.calib);
        return st;
      }
      snprintf(it.calib.name, sizeof it.calib.name, "%s", it.name);
      L->act_item[a] = s->nitems;
      QCAL_TRY(qcal_sweep_add_item(s, &it));
    }
  }
  return QCAL_OK;
}

/* Run photo k of the splits (calibration first) and copy what it feeds. */
static qcal_status forward_one(sweep_state *s, int k) {
  qcal_graph *g = s->graph;
  const bool calib = k < s->ncalib;
  const int idx = calib ? s->calib_idx[k] : s->held_idx[k - s->ncalib];
  const int slot = calib ? k : k - s->ncalib;
  const void *in[1] = {s->images[idx].data};
  QCAL_TRY(qcal_graph_run(g, in));
  for (int l = 0; l < s->nlayers; l++) {
    const sweep_layer *L = &s->layers[l];
    const qcal_node *nd = &g->nodes[L->node];
    if (k == 0 && L->weight_item >= 0) /* weights after BN folding (or Q/DQ) */
      QCAL_TRY(qcal_graph_read(g, nd->in[L->weight_slot], s->items[L->weight_item].calib.data));
    for (int a = 0; a < L->nacts; a++) {
      if (L->act_item[a] < 0)
        continue;
      sweep_item *it = &s->items[L->act_item[a]];
      const int v = nd->in[L->act_slot[a]];
      qcal_tensor *t = calib ? &it->calib : &it->eval;
      QCAL_TRY(qcal_graph_read(g, v, t->data + (size_t)slot * g->values[v].numel));
    }
  }
  if (!calib) {
    float **outs = calloc((size_t)g->noutputs + 1, sizeof *outs);
    if (!outs)
      return qcal_error(QCAL_ENOMEM, "out of memory");
    s->fp32_out[slot] = outs;
    for (int o = 0; o < g->noutputs; o++) {
      const qcal_value *v = &g->values[g->outputs[o]];
      if (v->dtype != QCAL_DT_F32)
        continue;
      if (!(outs[o] = malloc((v->numel ? v->numel : 1) * sizeof(float))))
        return qcal_error(QCAL_ENOMEM, "out of memory");
      QCAL_TRY(qcal_graph_read(g, g->outputs[o], outs[o]));
      for (size_t i = 0; i < v->numel; i++)
        if (!(outs[o][i] - outs[o][i] == 0))
          return qcal_error(QCAL_EDATA, "%s: output '%s' is not finite on %s", s->model_path,
                            v->name, s->image_names[idx]);
    }
  }
  return QCAL_OK;
}

/* The primary output named by the configuration (qcal zoo's list) and its
 * task metric. */
static qcal_status bind_primary(sweep_state *s) {
  qcal_graph *g = s->graph;
  s->om_output = -1;
  s->om_side = s->pre.height > s->pre.width ? s->pre.height : s->pre.width;
  if (!s->cfg.primary_output || !s->cfg.primary_metric)
    return QCAL_OK;
  if ((s->om = qcal_om_find(s->cfg.primary_metric)) < 0)
    return qcal_error(QCAL_EINVAL, "unknown task metric '%s'", s->cfg.primary_metric);
  for (int o = 0; o < g->noutputs; o++) {
    char buf[256];
    if (!strcmp(qcal_value_model_name(g, &g->values[g->outputs[o]], buf, sizeof buf),
                s->cfg.primary_output))
      s->om_output = o;
  }
  if (s->om_output < 0)
    return qcal_error(QCAL_EINVAL, "%s: no output '%s' (the primary output)", s->model_path,
                      s->cfg.primary_output);
  return QCAL_OK;
}

qcal_status qcal_sweep_network_items(sweep_state *s) {
  double t0 = qcal_now();
  QCAL_TRY(qcal_model_file(s->cfg.model, s->model_path, sizeof s->model_path));
  QCAL_TRY(qcal_graph_load(s->model_path, &s->graph));
  s->have_model = true;
  qcal_graph *g = s->graph;
  if (g->ninputs != 1)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: the model has %d inputs; the sweep feeds one image",
                      s->model_path, g->ninputs);
  const qcal_value *in = &g->values[g->inputs[0]];
  if (in->dtype != QCAL_DT_F32)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: input '%s' is %s; the sweep feeds float32 images",
                      s->model_path, in->name, qcal_dtype_name(in->dtype));
  bool resize;
  QCAL_TRY(qcal_preproc_resolve(&s->cfg.pre, s->model_path, in->ndim, in->shape, &s->pre, &resize));
  QCAL_TRY(load_images(s));
  const qcal_tensor *first = &s->images[s->calib_idx[0]];
  QCAL_TRY(resize ? qcal_graph_resize_input(g, 0, first->ndim, first->shape)
                  : qcal_graph_bind_input(g, 0, first->ndim, first->shape));
  /* the reference convolution: 8-bit end-to-end numbers depend on the last
   * bit of every FP32 result, so they must not change with the machine's ISA.
   * Its sgemm runs on OpenBLAS's threads; the graph's other ops run serially,
   * as an OpenMP team spinning beside those threads halves both (blazeface:
   * 8.0 s -> 4.7 s for the sweep) */
  const bool ref = !s->cfg.conv || strcmp(s->cfg.conv, "onednn");
  qcal_graph_opts go = {.threads = ref ? 1 : s->cfg.jobs, .reference_conv = ref};
  QCAL_TRY(qcal_graph_prepare(g, &go));
  QCAL_TRY(build_layers(s));
  s->task = qcal_task_find(g, &s->task_ctx);
  QCAL_TRY(bind_primary(s));
  s->t_load += qcal_now() - t0;

  t0 = qcal_now();
  QCAL_TRY(add_items(s));
  s->fp32_out = calloc((size_t)s->nheld + 1, sizeof *s->fp32_out);
  if (!s->fp32_out)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  qcal_progress prog;
  qcal_progress_start(&prog, "forward", (size_t)(s->ncalib + s->nheld));
  qcal_status st = QCAL_OK;
  for (int k = 0; k < s->ncalib + s->nheld && !st; k++) {
    st = forward_one(s, k);
    qcal_progress_step(&prog, 1);
  }
  qcal_progress_end(&prog);
  s->t_forward += qcal_now() - t0;
  return st;
}
