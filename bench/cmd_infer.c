/* qcal infer: run a model (ONNX or TF.js) on one input tensor or photo, print one
 * JSON line (input/output names and shapes, median latency) and optionally
 * write every graph output to an .npz. */
#include <json-c/json.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cli.h"
#include "qcal/datasets.h"
#include "qcal/escape.h"
#include "qcal/graph.h"
#include "qcal/paths.h"

typedef struct {
  const char *input, *image, *out, *save_input, *engine;
  qcal_preproc_opts pre;
  int repeat, threads, list_ops;
} infer_cfg;

#define O(f) offsetof(infer_cfg, f)
static const qcal_opt opts[] = {
    {"input", "X.npy", "input tensor, float32, exactly the shape the model expects", O(input),
     OPT_STRING, 0, 0, NULL},
    {"image", "FILE", "a photo (JPEG, PNG, BMP, ...), decoded and preprocessed", O(image),
     OPT_STRING, 0, 0, NULL},
    {"output", "OUT.npz", "write every graph output as a member named after it (-o)", O(out),
     OPT_STRING, 0, 0, NULL},
    {"repeat", "R", "timed runs after one warm-up; latency is their median", O(repeat), OPT_INT, 1,
     100000, NULL},
    {"threads", "N", "threads (0: all cores)", O(threads), OPT_INT, 0, 1024, NULL},
    {"engine", "E",
     "Q/DQ models: qdq (as written, in float; default), fp32 (Q/DQ pairs removed) or int8 "
     "(oneDNN int8 convolutions; prints the outputs' SQNR against qdq)",
     O(engine), OPT_CHOICE, 0, 0, qcal_engine_names},
    QCAL_PREPROC_OPTIONS(infer_cfg, pre),
    {"save-input", "X.npy", "--image: also write the preprocessed input the model ran on",
     O(save_input), OPT_STRING, 0, 0, NULL},
    {"list-ops", NULL, "print the supported ops (graph/ops.inc) as a Markdown table", O(list_ops),
     OPT_FLAG, 0, 0, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "infer",
    "qcal infer MODEL.onnx|model.json (--input X.npy | --image FILE) [-o OUT.npz] [--repeat R]\n"
    "                  [--threads N] [--engine qdq|fp32|int8] [--input-size H[,W]] [--layout "
    "nchw|nhwc] [--channels 1|3]\n"
    "                  [--mean R,G,B --std R,G,B | --scale S --offset O]",
    "Run an ONNX model or a TF.js graph model (model.json, NHWC input as the model\n"
    "declares it) on one input in float32 (the graph IR: shapes fixed by the input,\n"
    "constant sub-graphs folded, BatchNormalization folded into convolutions,\n"
    "activations fused; convolutions on oneDNN). Prints one JSON line with the\n"
    "input and output names and shapes and latency_ms, the median of --repeat runs\n"
    "after one warm-up, excluding model loading.",
    opts,
};

static json_object *shape_json(int ndim, const int64_t *shape) {
  json_object *a = json_object_new_array();
  for (int d = 0; d < ndim; d++)
    json_object_array_add(a, json_object_new_int64(shape[d]));
  return a;
}

static const char *npy_descr(qcal_dtype t) {
  switch (t) {
  case QCAL_DT_F32:
    return "<f4";
  case QCAL_DT_I64:
    return "<i8";
  case QCAL_DT_I32:
    return "<i4";
  case QCAL_DT_I8:
    return "|i1";
  case QCAL_DT_U8:
    return "|u1";
  default:
    return "|b1";
  }
}

/* --image: preprocessing from the options and the model (qcal_preproc_resolve). */
static qcal_status image_input(const infer_cfg *c, const char *model, const qcal_value *in,
                               qcal_tensor *t, bool *resize) {
  qcal_preproc p;
  QCAL_TRY(qcal_preproc_resolve(&c->pre, model, in->ndim, in->shape, &p, resize));
  return qcal_image_preprocess(c->image, &p, t);
}

/* The same model on the qdq engine, run once on x: what int8 is measured against. */
static qcal_status qdq_reference(const char *model, const qcal_tensor *x, bool resize,
                                 const qcal_graph_opts *o, qcal_graph **out) {
  qcal_graph_opts ro = *o;
  ro.engine = QCAL_ENGINE_QDQ;
  QCAL_TRY(qcal_graph_load(model, out));
  QCAL_TRY(resize ? qcal_graph_resize_input(*out, 0, x->ndim, x->shape)
                  : qcal_graph_bind_input(*out, 0, x->ndim, x->shape));
  QCAL_TRY(qcal_graph_prepare(*out, &ro));
  const void *in[1] = {x->data};
  return qcal_graph_run(*out, in);
}

int qcal_cmd_infer(int argc, char **argv) {
  infer_cfg cfg = {0};
  cfg.repeat = 1;
  cfg.pre.scale = cfg.pre.offset = NAN;
  const char *pos[1];
  int npos;
  int r = qcal_opts_parse(&info, &cfg, argc, argv, pos, 1, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (cfg.list_ops) {
    printf("| op | inputs | outputs | quantizable weight (input, output-channel axis) | trains "
           "(backward) |\n|---|---|---|---|---|\n");
    for (int k = 0; k < QCAL_GOP_COUNT; k++) {
      const qcal_op_info *o = &qcal_op_infos[k];
      if (o->flags & QCAL_OPF_LOWERED)
        continue; /* execution ops no model can hold (docs/graph.md) */
      char w[64] = "";
      if (o->weight_slot >= 0)
        snprintf(w, sizeof w, "input %d, axis %d", o->weight_slot, o->weight_axis);
      printf("| %s | %d..%d | %d..%d | %s | %s |\n", o->name, o->min_in, o->max_in, o->min_out,
             o->max_out, w, qcal_op_trainable((qcal_graph_op)k) ? "yes" : "");
    }
    return QCAL_EXIT_OK;
  }
  if (npos != 1)
    return qcal_die("infer: expected one MODEL (see qcal infer --help)");
  if (!cfg.input == !cfg.image)
    return qcal_die("infer: give exactly one of --input X.npy and --image FILE");
  const char *model = pos[0];
  if (cfg.save_input && !cfg.image)
    return qcal_die("infer: --save-input goes with --image");
  if (cfg.out || cfg.save_input) {
    const char *ins[2] = {model, cfg.input ? cfg.input : cfg.image};
    if (qcal_check_outputs("infer", cfg.out, cfg.save_input, ins, 2))
      return QCAL_EXIT_USAGE;
  }
  if (cfg.threads > 0)
    omp_set_num_threads(cfg.threads);
  qcal_graph *g = NULL;
  qcal_tensor x = {0};
  unsigned char **npy = NULL;
  size_t *npy_len = NULL;
  const char **names = NULL;
  double *times = NULL;
  qcal_graph *ref = NULL;
  int rc = QCAL_EXIT_OK;
  bool resize = false;
  qcal_status st = qcal_graph_load(model, &g);
  if (st) {
    rc = qcal_die_status(st);
    goto done;
  }
  if (g->ninputs != 1) {
    rc = qcal_die("infer: %s has %d inputs; qcal infer feeds models with one input", model,
                  g->ninputs);
    goto done;
  }
  qcal_value *in = &g->values[g->inputs[0]];
  char nb[160];
  if (in->dtype != QCAL_DT_F32) {
    rc = qcal_die("infer: %s: input '%s' is %s; only float32 inputs are supported", model,
                  qcal_escape_text(in->name, nb, sizeof nb), qcal_dtype_name(in->dtype));
    goto done;
  }
  if (cfg.input) {
    unsigned char *buf;
    size_t len, width;
    st = qcal_read_file(cfg.input, &buf, &len);
    if (!st && !(st = qcal_npy_element_width(cfg.input, buf, len, &width)) && width != 4)
      st = qcal_error(QCAL_EDTYPE, "%s: elements are %zu bytes; the model's input '%s' is float32",
                      cfg.input, width, qcal_escape_text(in->name, nb, sizeof nb));
    if (!st && len > 0)
      st = qcal_npy_parse(cfg.input, buf, len, &x);
    if (!st && x.numel == 0)
      st = qcal_error(QCAL_EEMPTY, "%s: the tensor is empty", cfg.input);
    if (!st && (st = qcal_tensor_check(&x))) {
      char m[512];
      snprintf(m, sizeof m, "%s", qcal_last_error());
      st = qcal_error(st, "%s: %s", cfg.input, m);
    }
    if (len > 0)
      free(buf);
    if (st) {
      rc = qcal_die_status(st);
      goto done;
    }
  } else if ((st = image_input(&cfg, model, in, &x, &resize))) {
    rc = qcal_die_status(st);
    goto done;
  }
  if ((st = resize ? qcal_graph_resize_input(g, 0, x.ndim, x.shape)
                   : qcal_graph_bind_input(g, 0, x.ndim, x.shape))) {
    rc = qcal_die_status(st);
    goto done;
  }
  if (cfg.save_input && (st = qcal_npy_save(cfg.save_input, &x))) {
    rc = qcal_die_status(st);
    goto done;
  }
  qcal_engine engine = qcal_engine_find(cfg.engine);
  qcal_graph_opts go = {.threads = cfg.threads, .engine = engine};
  in = NULL; /* prepare may grow the value array: read it again by index after */
  if ((st = qcal_graph_prepare(g, &go))) {
    rc = qcal_die_status(st);
    goto done;
  }
  if (engine == QCAL_ENGINE_INT8 && g->int8_nodes == 0) {
    rc = qcal_die("infer: %s: no convolution reads int8 Q/DQ inputs (%d read Q/DQ); write a Q/DQ "
                  "model with qcal quantize",
                  model, g->int8_candidates);
    goto done;
  }
  if (engine == QCAL_ENGINE_INT8 && (st = qdq_reference(model, &x, resize, &go, &ref))) {
    rc = qcal_die_status(st);
    goto done;
  }
  const void *inputs[1] = {x.data};
  times = calloc((size_t)cfg.repeat, sizeof *times);
  if (!times) {
    rc = qcal_die("infer: out of memory");
    goto done;
  }
  if ((st = qcal_graph_run(g, inputs))) { /* warm-up: primitives and weight reorders */
    rc = qcal_die_status(st);
    goto done;
  }
  for (int k = 0; k < cfg.repeat; k++) {
    double t0 = qcal_now();
    if ((st = qcal_graph_run(g, inputs))) {
      rc = qcal_die_status(st);
      goto done;
    }
    times[k] = qcal_now() - t0;
  }
  /* outputs must be finite: a NaN here is a model or input problem */
  for (int k = 0; k < g->noutputs; k++) {
    const qcal_value *v = &g->values[g->outputs[k]];
    if (v->dtype != QCAL_DT_F32)
      continue;
    for (size_t i = 0; i < v->numel; i++)
      if (!(((const float *)v->data)[i] - ((const float *)v->data)[i] == 0)) {
        rc = qcal_die("infer: %s: output '%s' has a non-finite value at %zu", model,
                      qcal_escape_text(v->name, nb, sizeof nb), i);
        goto done;
      }
  }
  if (cfg.out) {
    int no = g->noutputs;
    npy = calloc((size_t)no, sizeof *npy);
    npy_len = calloc((size_t)no, sizeof *npy_len);
    names = calloc((size_t)no, sizeof *names);
    if (!npy || !npy_len || !names) {
      rc = qcal_die("infer: out of memory");
      goto done;
    }
    for (int k = 0; k < no && !st; k++) {
      const qcal_value *v = &g->values[g->outputs[k]];
      names[k] = v->name;
      st = qcal_npy_encode(npy_descr(v->dtype), v->ndim, v->shape, v->data,
                           v->numel * qcal_dtype_size(v->dtype), &npy[k], &npy_len[k]);
    }
    if (!st)
      st = qcal_npz_save(cfg.out, no, names, npy, npy_len);
    if (st) {
      rc = qcal_die_status(st);
      goto done;
    }
  }
  double med = qcal_median(times, (size_t)cfg.repeat);
  json_object *j = json_object_new_object();
  json_object_object_add(j, "model", json_object_new_string(model));
  json_object *ji = json_object_new_array(), *jo = json_object_new_array();
  json_object *e = json_object_new_object();
  const qcal_value *bound = &g->values[g->inputs[0]];
  json_object_object_add(e, "name", json_object_new_string(bound->name));
  json_object_object_add(e, "shape", shape_json(bound->ndim, bound->shape));
  json_object_array_add(ji, e);
  for (int k = 0; k < g->noutputs; k++) {
    const qcal_value *v = &g->values[g->outputs[k]];
    e = json_object_new_object();
    json_object_object_add(e, "name", json_object_new_string(v->name));
    json_object_object_add(e, "shape", shape_json(v->ndim, v->shape));
    json_object_object_add(e, "dtype", json_object_new_string(qcal_dtype_name(v->dtype)));
    json_object_array_add(jo, e);
  }
  json_object_object_add(j, "inputs", ji);
  json_object_object_add(j, "outputs", jo);
  json_object_object_add(j, "latency_ms", json_object_new_double(med * 1e3));
  json_object_object_add(j, "repeat", json_object_new_int(cfg.repeat));
  json_object_object_add(j, "threads",
                         json_object_new_int(cfg.threads ? cfg.threads : omp_get_max_threads()));
  json_object_object_add(j, "engine", json_object_new_string(qcal_engine_names[engine]));
  if (engine == QCAL_ENGINE_INT8) {
    json_object_object_add(j, "int8_layers", json_object_new_int(g->int8_nodes));
    json_object_object_add(j, "qdq_layers", json_object_new_int(g->int8_candidates));
    json_object *db = json_object_new_array();
    for (int k = 0; k < g->noutputs; k++) {
      const qcal_value *v = &g->values[g->outputs[k]], *r = &ref->values[ref->outputs[k]];
      double sig = 0, err = 0;
      for (size_t i = 0; v->dtype == QCAL_DT_F32 && i < v->numel; i++) {
        double a = ((const float *)r->data)[i], b = ((const float *)v->data)[i];
        sig += a * a, err += (a - b) * (a - b);
      }
      /* JSON has no infinity: identical outputs print as null */
      json_object_array_add(db, err > 0 ? json_object_new_double(10 * log10(sig / err)) : NULL);
    }
    json_object_object_add(j, "sqnr_vs_qdq_db", db);
  }
  if (cfg.out)
    json_object_object_add(j, "output", json_object_new_string(cfg.out));
  printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
  json_object_put(j);
done:
  if (npy)
    for (int k = 0; k < g->noutputs; k++)
      free(npy[k]);
  free(npy);
  free(npy_len);
  free(names);
  free(times);
  qcal_tensor_free(&x);
  qcal_graph_free(g);
  qcal_graph_free(ref);
  return rc;
}
