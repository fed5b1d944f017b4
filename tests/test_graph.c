/* The graph IR and the ONNX importer: graphs built through the API and ONNX
 * models packed with protobuf-c here, checked against values computed in the
 * test: BatchNormalization folding, fusion, blocked layouts, quantization
 * points, external data, and every bad-input path (one error naming the
 * file, node and problem). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "qcal/datasets.h"
#include "qcal/graph.h"
#include "qcal/kernels.h"

/* ---- a small ONNX model builder over the generated structs */
typedef struct mb {
  Onnx__ModelProto m;
  Onnx__GraphProto gr;
  Onnx__OperatorSetIdProto op;
  Onnx__OperatorSetIdProto *ops[1];
  Onnx__NodeProto *nodes[64];
  Onnx__TensorProto *inits[64];
  Onnx__ValueInfoProto *ins[4], *outs[4];
} mb;

static void mb_init(mb *b, int opset) {
  memset(b, 0, sizeof *b);
  onnx__model_proto__init(&b->m);
  onnx__graph_proto__init(&b->gr);
  onnx__operator_set_id_proto__init(&b->op);
  b->op.has_version = 1;
  b->op.version = opset;
  b->ops[0] = &b->op;
  b->m.n_opset_import = 1;
  b->m.opset_import = b->ops;
  b->m.has_ir_version = 1;
  b->m.ir_version = 8;
  b->m.graph = &b->gr;
  b->gr.node = b->nodes;
  b->gr.initializer = b->inits;
  b->gr.input = b->ins;
  b->gr.output = b->outs;
}

static Onnx__ValueInfoProto *vinfo(const char *name, int ndim, const int64_t *shape) {
  Onnx__ValueInfoProto *v = calloc(1, sizeof *v);
  onnx__value_info_proto__init(v);
  v->name = strdup(name);
  Onnx__TypeProto *t = calloc(1, sizeof *t);
  onnx__type_proto__init(t);
  Onnx__TypeProto__Tensor *tt = calloc(1, sizeof *tt);
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = 1;
  tt->elem_type = 1;
  Onnx__TensorShapeProto *sh = calloc(1, sizeof *sh);
  onnx__tensor_shape_proto__init(sh);
  sh->n_dim = (size_t)ndim;
  sh->dim = calloc((size_t)ndim + 1, sizeof *sh->dim);
  for (int d = 0; d < ndim; d++) {
    Onnx__TensorShapeProto__Dimension *dm = calloc(1, sizeof *dm);
    onnx__tensor_shape_proto__dimension__init(dm);
    if (shape[d] > 0) {
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      dm->dim_value = shape[d];
    } else {
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      dm->dim_param = strdup("batch");
    }
    sh->dim[d] = dm;
  }
  tt->shape = sh;
  t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  t->tensor_type = tt;
  v->type = t;
  return v;
}

static void mb_input(mb *b, const char *name, int ndim, const int64_t *shape) {
  b->ins[b->gr.n_input++] = vinfo(name, ndim, shape);
}
static void mb_output(mb *b, const char *name) {
  int64_t s[1] = {1};
  b->outs[b->gr.n_output++] = vinfo(name, 0, s);
}

static Onnx__TensorProto *mb_init_f32(mb *b, const char *name, int ndim, const int64_t *shape,
                                      const float *data) {
  Onnx__TensorProto *t = calloc(1, sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = strdup(name);
  t->has_data_type = 1;
  t->data_type = 1;
  t->n_dims = (size_t)ndim;
  t->dims = malloc(sizeof(int64_t) * (size_t)(ndim + 1));
  size_t n = 1;
  for (int d = 0; d < ndim; d++)
    t->dims[d] = shape[d], n *= (size_t)shape[d];
  t->has_raw_data = 1;
  t->raw_data.len = n * 4;
  t->raw_data.data = malloc(n * 4 + 1);
  memcpy(t->raw_data.data, data, n * 4);
  b->inits[b->gr.n_initializer++] = t;
  return t;
}

static Onnx__NodeProto *mb_node(mb *b, const char *op, const char *name, int nin,
                                const char *const *in, const char *out) {
  Onnx__NodeProto *n = calloc(1, sizeof *n);
  onnx__node_proto__init(n);
  n->op_type = strdup(op);
  n->name = strdup(name);
  n->n_input = (size_t)nin;
  n->input = calloc((size_t)nin + 1, sizeof *n->input);
  for (int i = 0; i < nin; i++)
    n->input[i] = strdup(in[i]);
  n->n_output = 1;
  n->output = calloc(1, sizeof *n->output);
  n->output[0] = strdup(out);
  b->nodes[b->gr.n_node++] = n;
  return n;
}

/* A new attribute of n: named, typed, appended; the caller fills its value. */
static Onnx__AttributeProto *node_attr(Onnx__NodeProto *n, const char *name,
                                       Onnx__AttributeProto__AttributeType type) {
  Onnx__AttributeProto *a = calloc(1, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = strdup(name);
  a->has_type = 1;
  a->type = type;
  n->attribute = realloc(n->attribute, (n->n_attribute + 1) * sizeof *n->attribute);
  n->attribute[n->n_attribute++] = a;
  return a;
}

static void node_ints(Onnx__NodeProto *n, const char *name, int cnt, const int64_t *v) {
  Onnx__AttributeProto *a = node_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = (size_t)cnt;
  a->ints = malloc(sizeof(int64_t) * (size_t)cnt);
  memcpy(a->ints, v, sizeof(int64_t) * (size_t)cnt);
}

static void node_int(Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *a = node_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = 1;
  a->i = v;
}

static void node_str(Onnx__NodeProto *n, const char *name, const char *v) {
  Onnx__AttributeProto *a = node_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  a->has_s = 1;
  a->s.len = strlen(v);
  a->s.data = (uint8_t *)strdup(v);
}

/* Serialize, then free the builder's messages (every field was malloc'ed). */
static unsigned char *mb_pack(mb *b, size_t *len) {
  *len = onnx__model_proto__get_packed_size(&b->m);
  unsigned char *buf = malloc(*len);
  onnx__model_proto__pack(&b->m, buf);
  for (size_t i = 0; i < b->gr.n_node; i++)
    protobuf_c_message_free_unpacked(&b->nodes[i]->base, NULL);
  for (size_t i = 0; i < b->gr.n_initializer; i++)
    protobuf_c_message_free_unpacked(&b->inits[i]->base, NULL);
  for (size_t i = 0; i < b->gr.n_input; i++)
    protobuf_c_message_free_unpacked(&b->ins[i]->base, NULL);
  for (size_t i = 0; i < b->gr.n_output; i++)
    protobuf_c_message_free_unpacked(&b->outs[i]->base, NULL);
  b->gr.n_node = b->gr.n_initializer = b->gr.n_input = b->gr.n_output = 0;
  return buf;
}

static void rnd(float *x, size_t n, uint64_t seed, float lo, float hi) {
  qcal_rng r;
  qcal_rng_seed(&r, seed);
  for (size_t i = 0; i < n; i++)
    x[i] = lo + (hi - lo) * (float)qcal_rng_uniform(&r);
}

/* conv (3x3, pad 1) -> BN -> Relu -> Add(input) : a residual block */
static unsigned char *residual_model(size_t *len, int c, const float **wout) {
  static float w[16 * 16 * 9], bias[16], sc[16], be[16], mu[16], var[16];
  rnd(w, (size_t)c * c * 9, 1, -0.3f, 0.3f);
  rnd(bias, (size_t)c, 2, -0.1f, 0.1f);
  rnd(sc, (size_t)c, 3, 0.5f, 1.5f);
  rnd(be, (size_t)c, 4, -0.2f, 0.2f);
  rnd(mu, (size_t)c, 5, -0.2f, 0.2f);
  rnd(var, (size_t)c, 6, 0.5f, 2.0f);
  *wout = w;
  static mb b;
  mb_init(&b, 13);
  int64_t xs[4] = {-1, c, 6, 5}, ws[4] = {c, c, 3, 3}, cs[1] = {c};
  mb_input(&b, "x", 4, xs);
  mb_init_f32(&b, "w", 4, ws, w);
  mb_init_f32(&b, "b", 1, cs, bias);
  const char *pn[] = {"sc", "be", "mu", "var"};
  const float *pv[] = {sc, be, mu, var};
  for (int k = 0; k < 4; k++)
    mb_init_f32(&b, pn[k], 1, cs, pv[k]);
  const char *ci[] = {"x", "w", "b"};
  Onnx__NodeProto *cv = mb_node(&b, "Conv", "conv", 3, ci, "c");
  int64_t pads[4] = {1, 1, 1, 1}, ks[2] = {3, 3};
  node_ints(cv, "pads", 4, pads);
  node_ints(cv, "kernel_shape", 2, ks);
  const char *bi[] = {"c", "sc", "be", "mu", "var"};
  mb_node(&b, "BatchNormalization", "bn", 5, bi, "n");
  const char *ri[] = {"n"};
  mb_node(&b, "Relu", "relu", 1, ri, "r");
  const char *ai[] = {"r", "x"};
  mb_node(&b, "Add", "add", 2, ai, "y");
  mb_output(&b, "y");
  return mb_pack(&b, len);
}

static void run_residual(const qcal_graph_opts *o, int c, const float *x, float *y) {
  size_t len;
  const float *w;
  unsigned char *buf = residual_model(&len, c, &w);
  qcal_graph *g;
  cr_assert_eq(qcal_onnx_parse("residual.onnx", buf, len, &g), QCAL_OK, "%s", qcal_last_error());
  int64_t s[4] = {2, c, 6, 5};
  cr_assert_eq(qcal_graph_bind_input(g, 0, 4, s), QCAL_OK);
  cr_assert_eq(qcal_graph_prepare(g, o), QCAL_OK, "%s", qcal_last_error());
  const void *in[1] = {x};
  cr_assert_eq(qcal_graph_run(g, in), QCAL_OK, "%s", qcal_last_error());
  const qcal_value *v = &g->values[g->outputs[0]];
  cr_assert_eq(v->numel, (size_t)(2 * c * 30));
  memcpy(y, v->data, v->numel * 4);
  qcal_graph_free(g);
  free(buf);
}

Test(graph, bn_folding_and_fusion_keep_the_numbers) {
  for (int c = 3; c <= 16; c += 13) { /* 3: padded blocked channels; 16: exact blocks */
    size_t n = (size_t)(2 * c * 30);
    float *x = malloc(n * 4), *y0 = malloc(n * 4), *y1 = malloc(n * 4), *y2 = malloc(n * 4);
    rnd(x, n, 7, -1, 1);
    qcal_graph_opts plain = {.no_fold_bn = true, .no_fuse = true, .plain_values = true};
    qcal_graph_opts fast = {0};
    qcal_graph_opts fold_only = {.no_fuse = true};
    run_residual(&plain, c, x, y0);
    run_residual(&fast, c, x, y1);
    run_residual(&fold_only, c, x, y2);
    for (size_t i = 0; i < n; i++) {
      cr_assert_float_eq(y1[i], y0[i], 1e-4f, "c=%d element %zu: %g vs %g", c, i, y1[i], y0[i]);
      cr_assert_float_eq(y2[i], y0[i], 1e-4f, "c=%d element %zu", c, i);
    }
    free(x), free(y0), free(y1), free(y2);
  }
}

Test(graph, prepare_folds_bn_fuses_relu_and_residual) {
  size_t len;
  const float *w;
  unsigned char *buf = residual_model(&len, 16, &w);
  qcal_graph *g;
  cr_assert_eq(qcal_onnx_parse("residual.onnx", buf, len, &g), QCAL_OK);
  int64_t s[4] = {1, 16, 6, 5};
  cr_assert_eq(qcal_graph_bind_input(g, 0, 4, s), QCAL_OK);
  cr_assert_eq(qcal_graph_prepare(g, NULL), QCAL_OK, "%s", qcal_last_error());
  int live = 0;
  const qcal_node *conv = NULL;
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead)
      live++, conv = &g->nodes[i];
  /* Conv+BN+Relu fold/fuse; the Add reads the Relu output, which the Conv
   * now writes, so it stays a node... unless fused as a residual. */
  cr_assert_leq(live, 2, "%d live nodes", live);
  cr_assert_not_null(conv);
  qcal_qpoint *pts;
  int np;
  cr_assert_eq(qcal_graph_qpoints(g, true, &pts, &np), QCAL_OK);
  int weights = 0, acts = 0, opt = 0;
  for (int k = 0; k < np; k++) {
    weights += pts[k].kind == QCAL_QP_WEIGHT;
    acts += pts[k].kind == QCAL_QP_ACT;
    opt += pts[k].kind == QCAL_QP_OPTIONAL;
    if (pts[k].kind == QCAL_QP_WEIGHT)
      cr_assert_eq(pts[k].axis, 0);
  }
  cr_assert_eq(weights, 1);
  cr_assert_eq(acts, 1);
  cr_assert_geq(opt, 1, "the residual Add's inputs are optional points");
  free(pts);
  qcal_graph_free(g);
  free(buf);
}

static void expect_error(const unsigned char *buf, size_t len, const char *path, bool prepare,
                         const char *needle) {
  qcal_graph *g = NULL;
  qcal_status st = qcal_onnx_parse(path, buf, len, &g);
  if (!st && prepare) {
    for (int i = 0; i < g->ninputs; i++) {
      qcal_value *v = &g->values[g->inputs[i]];
      int64_t s[QCAL_MAX_DIMS];
      for (int d = 0; d < v->ndim; d++)
        s[d] = v->shape[d] > 0 ? v->shape[d] : 1;
      qcal_graph_bind_input(g, i, v->ndim, s);
    }
    st = qcal_graph_prepare(g, NULL);
  }
  cr_assert_neq(st, QCAL_OK, "expected an error containing '%s'", needle);
  const char *m = qcal_last_error();
  cr_assert(strstr(m, path) && strstr(m, needle), "message '%s' lacks '%s' or the file name", m,
            needle);
  cr_assert_null(strchr(m, '\n'));
  qcal_graph_free(g);
}

Test(graph, bad_models_give_one_clear_error) {
  /* corrupt and truncated protobuf */
  const unsigned char junk[] = "\xff\xff\xff\xff\xff not a model";
  expect_error(junk, sizeof junk, "junk.onnx", false, "not an ONNX model");
  size_t len;
  const float *w;
  unsigned char *buf = residual_model(&len, 3, &w);
  expect_error(buf, len / 2, "half.onnx", false, "half.onnx");
  /* unsupported op, unsupported attribute value, unknown attribute */
  mb b;
  int64_t xs[4] = {1, 3, 8, 8};
  mb_init(&b, 13);
  mb_input(&b, "x", 4, xs);
  const char *in[] = {"x"};
  mb_node(&b, "NonMaxSuppression", "nms0", 1, in, "y");
  mb_output(&b, "y");
  unsigned char *p = mb_pack(&b, &len);
  expect_error(p, len, "nms.onnx", false, "op 'NonMaxSuppression' is not supported");
  free(p);
  mb_init(&b, 13);
  mb_input(&b, "x", 4, xs);
  Onnx__NodeProto *mp = mb_node(&b, "MaxPool", "pool0", 1, in, "y");
  int64_t k[2] = {2, 2};
  node_ints(mp, "kernel_shape", 2, k);
  node_str(mp, "auto_pad", "SAME_SIDEWAYS");
  mb_output(&b, "y");
  p = mb_pack(&b, &len);
  expect_error(p, len, "pad.onnx", true,
               "MaxPool node 'pool0': attribute 'auto_pad' = 'SAME_SIDEWAYS'");
  free(p);
  mb_init(&b, 13);
  mb_input(&b, "x", 4, xs);
  mp = mb_node(&b, "MaxPool", "pool1", 1, in, "y");
  node_ints(mp, "kernel_shape", 2, k);
  node_ints(mp, "frobnicate", 2, k);
  mb_output(&b, "y");
  p = mb_pack(&b, &len);
  expect_error(p, len, "attr.onnx", true, "attribute 'frobnicate' is not supported");
  free(p);
  /* dangling input, cycle */
  mb_init(&b, 13);
  mb_input(&b, "x", 4, xs);
  const char *dang[] = {"x", "ghost"};
  mb_node(&b, "Add", "add0", 2, dang, "y");
  mb_output(&b, "y");
  p = mb_pack(&b, &len);
  expect_error(p, len, "dangling.onnx", false, "reads 'ghost', which no node");
  free(p);
  mb_init(&b, 13);
  mb_input(&b, "x", 4, xs);
  const char *c1[] = {"x", "b"}, *c2[] = {"a"};
  mb_node(&b, "Add", "first", 2, c1, "a");
  mb_node(&b, "Relu", "second", 1, c2, "b");
  mb_output(&b, "b");
  p = mb_pack(&b, &len);
  expect_error(p, len, "cycle.onnx", true, "cycle");
  free(p);
  /* an initializer whose payload disagrees with its shape */
  mb_init(&b, 13);
  mb_input(&b, "x", 4, xs);
  float one[4] = {1, 2, 3, 4};
  int64_t s4[1] = {4};
  Onnx__TensorProto *t = mb_init_f32(&b, "w", 1, s4, one);
  t->dims[0] = 1000000;
  const char *ai[] = {"x", "w"};
  mb_node(&b, "Add", "add1", 2, ai, "y");
  mb_output(&b, "y");
  p = mb_pack(&b, &len);
  expect_error(p, len, "short.onnx", false, "its shape needs 1000000 elements");
  free(p);
  free(buf);
}

Test(graph, wrong_input_shape_names_the_expected_one) {
  size_t len;
  const float *w;
  unsigned char *buf = residual_model(&len, 3, &w);
  qcal_graph *g;
  cr_assert_eq(qcal_onnx_parse("res.onnx", buf, len, &g), QCAL_OK);
  int64_t s[4] = {1, 4, 6, 5};
  cr_assert_eq(qcal_graph_bind_input(g, 0, 4, s), QCAL_EINVAL);
  cr_assert(strstr(qcal_last_error(), "expects shape [?,3,6,5], got [1,4,6,5]"), "%s",
            qcal_last_error());
  qcal_graph_free(g);
  free(buf);
}

Test(graph, external_data_beside_the_model) {
  /* a weight in a side file: read from the model's folder, never outside */
  char dir[256];
  snprintf(dir, sizeof dir, "/tmp/qcal_ext_%ld", (long)getpid());
  cr_assert_eq(mkdir(dir, 0700), 0);
  float wv[6] = {1, -2, 3, -4, 5, -6};
  char side[512];
  snprintf(side, sizeof side, "%s/weights.bin", dir);
  FILE *f = fopen(side, "wb");
  fwrite("pad!", 1, 4, f);
  fwrite(wv, 4, 6, f);
  fclose(f);
  for (int variant = 0; variant < 3; variant++) {
    mb b;
    mb_init(&b, 13);
    int64_t xs[2] = {1, 6};
    mb_input(&b, "x", 2, xs);
    Onnx__TensorProto *t = mb_init_f32(&b, "w", 2, xs, wv);
    t->has_raw_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    const char *keys[3] = {"location", "offset", "length"};
    const char *locs[3] = {"weights.bin", "missing.bin", "../escape.bin"};
    const char *vals[3] = {locs[variant], "4", "24"};
    t->n_external_data = 3;
    t->external_data = calloc(3, sizeof *t->external_data);
    for (int k = 0; k < 3; k++) {
      Onnx__StringStringEntryProto *e = calloc(1, sizeof *e);
      onnx__string_string_entry_proto__init(e);
      e->key = strdup(keys[k]);
      e->value = strdup(vals[k]);
      t->external_data[k] = e;
    }
    const char *in[] = {"x", "w"};
    mb_node(&b, "Mul", "mul", 2, in, "y");
    mb_output(&b, "y");
    size_t len;
    unsigned char *p = mb_pack(&b, &len);
    char model[512];
    snprintf(model, sizeof model, "%s/m.onnx", dir);
    f = fopen(model, "wb");
    fwrite(p, 1, len, f);
    fclose(f);
    free(p);
    qcal_graph *g;
    qcal_status st = qcal_onnx_load(model, &g);
    if (variant == 0) {
      cr_assert_eq(st, QCAL_OK, "%s", qcal_last_error());
      cr_assert_eq(qcal_graph_prepare(g, NULL), QCAL_OK, "%s", qcal_last_error());
      float x[6] = {1, 1, 1, 1, 1, 2};
      const void *ins[1] = {x};
      cr_assert_eq(qcal_graph_run(g, ins), QCAL_OK);
      const float *y = g->values[g->outputs[0]].data;
      for (int k = 0; k < 6; k++)
        cr_assert_float_eq(y[k], wv[k] * x[k], 0);
      qcal_graph_free(g);
    } else {
      cr_assert_neq(st, QCAL_OK);
      cr_assert(strstr(qcal_last_error(),
                       variant == 1 ? "cannot open external data" : "must be a plain path beside"),
                "%s", qcal_last_error());
    }
  }
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

Test(graph, shape_subgraph_folds_to_constants) {
  /* y = Reshape(x, Concat(Shape(x)[0:1], [-1])): a flatten written the way
   * exporters write it; after prepare only the Reshape remains. */
  mb b;
  mb_init(&b, 13);
  int64_t xs[4] = {-1, 2, 3, 4};
  mb_input(&b, "x", 4, xs);
  const char *i0[] = {"x"};
  mb_node(&b, "Shape", "shape", 1, i0, "s");
  float dummy = 0;
  (void)dummy;
  /* int64 initializers for Slice and the -1 */
  const int64_t st[1] = {0}, en[1] = {1}, m1[1] = {-1};
  const char *nm[3] = {"st", "en", "m1"};
  const int64_t *vals[3] = {st, en, m1};
  for (int k = 0; k < 3; k++) {
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = strdup(nm[k]);
    t->has_data_type = 1;
    t->data_type = 7;
    t->n_dims = 1;
    t->dims = malloc(8);
    t->dims[0] = 1;
    t->n_int64_data = 1;
    t->int64_data = malloc(8);
    t->int64_data[0] = vals[k][0];
    b.inits[b.gr.n_initializer++] = t;
  }
  const char *sl[] = {"s", "st", "en"};
  mb_node(&b, "Slice", "slice", 3, sl, "n");
  const char *cc[] = {"n", "m1"};
  Onnx__NodeProto *cat = mb_node(&b, "Concat", "cat", 2, cc, "shp");
  int64_t ax[1] = {0};
  Onnx__AttributeProto *a = calloc(1, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = strdup("axis");
  a->has_type = 1;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  a->has_i = 1;
  a->i = ax[0];
  cat->attribute = calloc(1, sizeof *cat->attribute);
  cat->attribute[0] = a;
  cat->n_attribute = 1;
  const char *rs[] = {"x", "shp"};
  mb_node(&b, "Reshape", "reshape", 2, rs, "y");
  mb_output(&b, "y");
  size_t len;
  unsigned char *p = mb_pack(&b, &len);
  qcal_graph *g;
  cr_assert_eq(qcal_onnx_parse("flat.onnx", p, len, &g), QCAL_OK, "%s", qcal_last_error());
  int64_t s[4] = {5, 2, 3, 4};
  cr_assert_eq(qcal_graph_bind_input(g, 0, 4, s), QCAL_OK);
  cr_assert_eq(qcal_graph_prepare(g, NULL), QCAL_OK, "%s", qcal_last_error());
  int live = 0;
  for (int i = 0; i < g->nnodes; i++)
    live += !g->nodes[i].dead;
  cr_assert_eq(live, 1);
  const qcal_value *y = &g->values[g->outputs[0]];
  cr_assert_eq(y->ndim, 2);
  cr_assert_eq(y->shape[0], 5);
  cr_assert_eq(y->shape[1], 24);
  qcal_graph_free(g);
  free(p);
}

Test(graph, float16_and_typed_initializers) {
  /* y = x * w16 + w32, w16 float16 in raw_data, w32 float32 in float_data */
  mb b;
  mb_init(&b, 13);
  int64_t xs[1] = {4};
  mb_input(&b, "x", 1, xs);
  const uint16_t h[4] = {0x3c00, 0xc000, 0x3555, 0x0001}; /* 1, -2, 0.333252, 2^-24 */
  float hbuf[4] = {0};
  memcpy(hbuf, h, sizeof h);
  Onnx__TensorProto *t = mb_init_f32(&b, "w16", 1, xs, hbuf);
  t->data_type = 10;
  t->raw_data.len = 8;
  Onnx__TensorProto *u = calloc(1, sizeof *u);
  onnx__tensor_proto__init(u);
  u->name = strdup("w32");
  u->has_data_type = 1;
  u->data_type = 1;
  u->n_dims = 1;
  u->dims = malloc(8);
  u->dims[0] = 4;
  u->n_float_data = 4;
  u->float_data = malloc(16);
  for (int k = 0; k < 4; k++)
    u->float_data[k] = 0.5f * (float)k;
  b.inits[b.gr.n_initializer++] = u;
  const char *mi[] = {"x", "w16"}, *ai[] = {"m", "w32"};
  mb_node(&b, "Mul", "mul", 2, mi, "m");
  mb_node(&b, "Add", "add", 2, ai, "y");
  mb_output(&b, "y");
  size_t len;
  unsigned char *p = mb_pack(&b, &len);
  qcal_graph *g;
  cr_assert_eq(qcal_onnx_parse("f16.onnx", p, len, &g), QCAL_OK, "%s", qcal_last_error());
  cr_assert_eq(qcal_graph_prepare(g, NULL), QCAL_OK, "%s", qcal_last_error());
  float x[4] = {3, 3, 3, 3};
  const void *in[1] = {x};
  cr_assert_eq(qcal_graph_run(g, in), QCAL_OK);
  const float *y = g->values[g->outputs[0]].data;
  const float want[4] = {3.0f, -6.0f + 0.5f, 3 * 0.333251953125f + 1.0f, 3 * 0x1p-24f + 1.5f};
  for (int k = 0; k < 4; k++)
    cr_assert_float_eq(y[k], want[k], 1e-7f, "element %d: %g vs %g", k, y[k], want[k]);
  qcal_graph_free(g);
  free(p);
}

/* An SE block: conv -> GAP -> conv -> Sigmoid -> Mul(x, s) -> conv, with
 * channel counts that are and are not multiples of the oneDNN block; the
 * blocked Mul and GlobalAveragePool paths must match plain execution. */
int qcal_fmt_cblock(const void *fmt); /* graph/internal.h */

static void se_run(int c, bool plain, float *y, size_t *n) {
  /* 16 input channels: with 3, oneDNN on AVX-512 writes the first conv NHWC */
  static float w1[24 * 16 * 9], w2[24 * 24], w3[24 * 24], w4[8 * 24];
  rnd(w1, sizeof w1 / 4, 11, -0.5f, 0.5f);
  rnd(w2, sizeof w2 / 4, 12, -0.5f, 0.5f);
  rnd(w3, sizeof w3 / 4, 13, -0.5f, 0.5f);
  rnd(w4, sizeof w4 / 4, 14, -0.5f, 0.5f);
  mb b;
  mb_init(&b, 13);
  int64_t xs[4] = {1, 16, 10, 9}, s1[4] = {c, 16, 3, 3}, s2[4] = {c, c, 1, 1}, s4[4] = {8, c, 1, 1};
  mb_input(&b, "x", 4, xs);
  mb_init_f32(&b, "w1", 4, s1, w1);
  mb_init_f32(&b, "w2", 4, s2, w2);
  mb_init_f32(&b, "w3", 4, s2, w3);
  mb_init_f32(&b, "w4", 4, s4, w4);
  const char *a[] = {"x", "w1"}, *g0[] = {"c1"}, *a2[] = {"p", "w2"}, *a3[] = {"c2", "w3"},
             *sg[] = {"c3"}, *m[] = {"s", "c1"}, *a4[] = {"m", "w4"};
  int64_t pads[4] = {1, 1, 1, 1};
  node_ints(mb_node(&b, "Conv", "c1", 2, a, "c1"), "pads", 4, pads);
  mb_node(&b, "GlobalAveragePool", "gap", 1, g0, "p");
  mb_node(&b, "Conv", "c2", 2, a2, "c2");
  mb_node(&b, "Conv", "c3", 2, a3, "c3");
  mb_node(&b, "Sigmoid", "sig", 1, sg, "s");
  mb_node(&b, "Mul", "mul", 2, m, "m");
  mb_node(&b, "Conv", "c4", 2, a4, "y");
  mb_output(&b, "y");
  size_t len;
  unsigned char *p = mb_pack(&b, &len);
  qcal_graph *g;
  cr_assert_eq(qcal_onnx_parse("se.onnx", p, len, &g), QCAL_OK, "%s", qcal_last_error());
  qcal_graph_opts o = {.plain_values = plain};
  cr_assert_eq(qcal_graph_prepare(g, &o), QCAL_OK, "%s", qcal_last_error());
  if (!plain) { /* the Mul kept the conv's channel-blocked layout, where oneDNN
                   chose one (on AVX-512 oneDNN 2.6 writes these convs NHWC: not
                   channel-blocked, so GlobalAveragePool demotes it to NCHW) */
    int mi = qcal_graph_find(g, "m"), ci = qcal_graph_find(g, "c1");
    if (qcal_fmt_cblock(g->values[ci].fmt))
      cr_assert_not_null(g->values[mi].fmt, "c=%d: Mul output not blocked", c);
  }
  float x[16 * 90];
  rnd(x, 16 * 90, 15, -1, 1);
  const void *in[1] = {x};
  cr_assert_eq(qcal_graph_run(g, in), QCAL_OK);
  const qcal_value *v = &g->values[g->outputs[0]];
  *n = v->numel;
  memcpy(y, v->data, v->numel * 4);
  qcal_graph_free(g);
  free(p);
}

Test(graph, se_block_blocked_layout_matches_plain) {
  for (int c = 5; c <= 24; c += 19) {
    float y0[8 * 90], y1[8 * 90];
    size_t n0, n1;
    se_run(c, true, y0, &n0);
    se_run(c, false, y1, &n1);
    cr_assert_eq(n0, n1);
    for (size_t i = 0; i < n0; i++)
      cr_assert_float_eq(y1[i], y0[i], 1e-4f, "c=%d element %zu: %g vs %g", c, i, y1[i], y0[i]);
  }
}

/* The reference convolution (graph/conv_ref.c: im2col + BLAS, depthwise
 * loops) against oneDNN's: strided and dilated with asymmetric pads,
 * depthwise, a 1x1, and the residual model's fused BN + ReLU + Add. */
static unsigned char *conv_chain_model(size_t *len, int c) {
  static float w1[16 * 16 * 9], b1[16], w2[16 * 9], b2[16], w3[5 * 16];
  rnd(w1, sizeof w1 / 4, 21, -0.4f, 0.4f);
  rnd(b1, 16, 22, -0.2f, 0.2f);
  rnd(w2, sizeof w2 / 4, 23, -0.4f, 0.4f);
  rnd(b2, 16, 24, -0.2f, 0.2f);
  rnd(w3, sizeof w3 / 4, 25, -0.4f, 0.4f);
  static mb b;
  mb_init(&b, 13);
  int64_t xs[4] = {2, c, 11, 9}, s1[4] = {c, c, 3, 3}, s2[4] = {c, 1, 3, 3}, s3[4] = {5, c, 1, 1},
          cs[1] = {c};
  mb_input(&b, "x", 4, xs);
  mb_init_f32(&b, "w1", 4, s1, w1);
  mb_init_f32(&b, "b1", 1, cs, b1);
  mb_init_f32(&b, "w2", 4, s2, w2);
  mb_init_f32(&b, "b2", 1, cs, b2);
  mb_init_f32(&b, "w3", 4, s3, w3);
  const char *i1[] = {"x", "w1", "b1"}, *i2[] = {"c1", "w2", "b2"}, *i3[] = {"c2", "w3"};
  Onnx__NodeProto *n1 = mb_node(&b, "Conv", "c1", 3, i1, "c1");
  int64_t st[2] = {2, 2}, dil[2] = {2, 1}, pads1[4] = {2, 0, 1, 1}, pads2[4] = {1, 1, 1, 1};
  node_ints(n1, "strides", 2, st);
  node_ints(n1, "dilations", 2, dil);
  node_ints(n1, "pads", 4, pads1);
  Onnx__NodeProto *n2 = mb_node(&b, "Conv", "c2", 3, i2, "c2");
  int64_t grp[1] = {c};
  node_ints(n2, "pads", 4, pads2);
  Onnx__AttributeProto *a = calloc(1, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = strdup("group");
  a->has_type = 1;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  a->has_i = 1;
  a->i = grp[0];
  n2->attribute = realloc(n2->attribute, (n2->n_attribute + 1) * sizeof *n2->attribute);
  n2->attribute[n2->n_attribute++] = a;
  mb_node(&b, "Conv", "c3", 2, i3, "y");
  mb_output(&b, "y");
  return mb_pack(&b, len);
}

static size_t run_chain(int c, bool ref, const float *x, float *y) {
  size_t len;
  unsigned char *buf = conv_chain_model(&len, c);
  qcal_graph *g;
  cr_assert_eq(qcal_onnx_parse("chain.onnx", buf, len, &g), QCAL_OK, "%s", qcal_last_error());
  qcal_graph_opts o = {.reference_conv = ref};
  cr_assert_eq(qcal_graph_prepare(g, &o), QCAL_OK, "%s", qcal_last_error());
  const void *in[1] = {x};
  cr_assert_eq(qcal_graph_run(g, in), QCAL_OK, "%s", qcal_last_error());
  const qcal_value *v = &g->values[g->outputs[0]];
  size_t n = v->numel;
  memcpy(y, v->data, n * 4);
  /* running again from the last conv leaves the same numbers */
  cr_assert_eq(qcal_graph_run_from(g, NULL, g->nnodes - 1), QCAL_OK, "%s", qcal_last_error());
  cr_assert_eq(memcmp(y, v->data, n * 4), 0);
  qcal_graph_free(g);
  free(buf);
  return n;
}

Test(graph, reference_conv_matches_onednn) {
  for (int c = 3; c <= 16; c += 13) {
    float x[2 * 16 * 99], y0[2 * 5 * 99], y1[2 * 5 * 99];
    rnd(x, sizeof x / 4, 26, -1, 1);
    size_t n0 = run_chain(c, false, x, y0), n1 = run_chain(c, true, x, y1);
    cr_assert_eq(n0, n1);
    cr_assert_eq(n0, (size_t)(2 * 5 * 5 * 4), "c=%d: %zu outputs", c, n0); /* 11x9 -> 5x4 */
    for (size_t i = 0; i < n0; i++)
      cr_assert_float_eq(y1[i], y0[i], 1e-4f * (1 + fabsf(y0[i])), "c=%d element %zu: %g vs %g", c,
                         i, y1[i], y0[i]);
    float r0[2 * 16 * 30], r1[2 * 16 * 30], xr[2 * 16 * 30];
    rnd(xr, (size_t)(2 * c * 30), 27, -1, 1);
    qcal_graph_opts plain = {0}, ref = {.reference_conv = true};
    run_residual(&plain, c, xr, r0);
    run_residual(&ref, c, xr, r1);
    for (size_t i = 0; i < (size_t)(2 * c * 30); i++)
      cr_assert_float_eq(r1[i], r0[i], 1e-4f * (1 + fabsf(r0[i])), "residual c=%d element %zu", c,
                         i);
  }
}

/* The Q/DQ pairs of a prepared graph's quantization points: one pair per
 * value with every reader listed; weights per output channel (axis 0).
 * scale(v, channel) gives each scale. At most 8 values, 4 readers, 16
 * channels (the hand-built graphs here). */
typedef struct qdq_set {
  qcal_qdq q[8];
  int n, rn[8][4], rs[8][4];
  float sc[8][16];
} qdq_set;

static void qdq_points(qcal_graph *g, float (*scale)(const qcal_value *v, int ch, int idx),
                       qdq_set *d) {
  qcal_qpoint *pts;
  int np;
  cr_assert_eq(qcal_graph_qpoints(g, true, &pts, &np), QCAL_OK);
  d->n = 0;
  for (int k = 0; k < np; k++) {
    int j = 0;
    while (j < d->n && d->q[j].value != pts[k].value)
      j++;
    if (j == d->n) {
      const qcal_value *v = &g->values[pts[k].value];
      bool wt = pts[k].kind == QCAL_QP_WEIGHT;
      cr_assert_lt(d->n, 8);
      d->q[j] = (qcal_qdq){
          pts[k].value, wt ? 0 : QCAL_PER_TENSOR, wt ? (int)v->shape[0] : 1, d->sc[j], 0, d->rn[j],
          d->rs[j]};
      cr_assert_leq(d->q[j].nscale, 16);
      for (int ch = 0; ch < d->q[j].nscale; ch++)
        d->sc[j][ch] = scale(v, ch, j);
      d->n++;
    }
    cr_assert_lt(d->q[j].nreaders, 4);
    d->rn[j][d->q[j].nreaders] = pts[k].node;
    d->rs[j][d->q[j].nreaders++] = pts[k].slot;
  }
  free(pts);
}

static float made_up_scale(const qcal_value *v, int ch, int idx) {
  (void)v;
  return 0.01f * (float)(idx + 1) + 0.001f * (float)ch;
}

/* max calibration over the value as the last run left it: amax / 127 */
static float max_scale(const qcal_value *v, int ch, int idx) {
  (void)idx;
  int nch = v->kind == QCAL_VAL_CONST ? (int)v->shape[0] : 1;
  size_t per = v->numel / (size_t)nch;
  float m = 0;
  for (size_t e = 0; e < per; e++)
    m = fmaxf(m, fabsf(((const float *)v->data)[(size_t)(nch > 1 ? ch : 0) * per + e]));
  return m / 127.0f;
}

/* Q/DQ placement and the ONNX writer on a hand-built residual block: the
 * input x feeds the Conv and the residual Add (one pair, two readers), the
 * folded Conv weight gets per-output-channel scales on axis 0, and the Relu
 * output the Add reads gets its own pair; the file reads back with those
 * nodes, axes and scale values, and runs as the Q/DQ arithmetic says. */
Test(graph, qdq_placement_and_onnx_writer) {
  const int c = 3;
  size_t len;
  const float *w;
  unsigned char *buf = residual_model(&len, c, &w);
  qcal_graph *g;
  cr_assert_eq(qcal_onnx_parse("residual.onnx", buf, len, &g), QCAL_OK);
  int64_t s[4] = {1, c, 6, 5};
  cr_assert_eq(qcal_graph_bind_input(g, 0, 4, s), QCAL_OK);
  qcal_graph_opts o = {.no_fuse = true, .plain_values = true};
  cr_assert_eq(qcal_graph_prepare(g, &o), QCAL_OK, "%s", qcal_last_error());
  qdq_set d;
  qdq_points(g, made_up_scale, &d);
  qcal_qdq *q = d.q;
  int nq = d.n;
  cr_assert_eq(nq, 3, "x, the folded weight, the Relu output: %d pairs", nq);
  int x = qcal_graph_find(g, "x");
  for (int j = 0; j < nq; j++)
    if (q[j].value == x)
      cr_assert_eq(q[j].nreaders, 2, "x is read through one pair by the Conv and the Add");
  char path[] = "/tmp/qcal_qdq_XXXXXX.onnx";
  int fd = mkstemps(path, 5);
  cr_assert_geq(fd, 0);
  close(fd);
  cr_assert_eq(qcal_onnx_save(g, q, nq, path), QCAL_OK, "%s", qcal_last_error());
  qcal_graph *r;
  cr_assert_eq(qcal_onnx_load(path, &r), QCAL_OK, "%s", qcal_last_error());
  if (!getenv("QCAL_KEEP"))
    unlink(path);
  cr_assert_geq(r->opset, 13);
  int nQ = 0, nDQ = 0, conv = -1, add = -1, bn = 0;
  for (int i = 0; i < r->nnodes; i++) {
    qcal_node *n = &r->nodes[i];
    nQ += n->op == QCAL_GOP_QuantizeLinear;
    nDQ += n->op == QCAL_GOP_DequantizeLinear;
    bn += n->op == QCAL_GOP_BatchNormalization;
    if (n->op == QCAL_GOP_Conv)
      conv = i;
    if (n->op == QCAL_GOP_Add)
      add = i;
  }
  cr_assert_eq(nQ, 3);
  cr_assert_eq(nDQ, 3);
  cr_assert_eq(bn, 0, "BatchNormalization is folded into the Conv");
  cr_assert(conv >= 0 && add >= 0);
  /* the Conv reads input and weight through DequantizeLinear; the Add both inputs */
  const int reads[4][2] = {{conv, 0}, {conv, 1}, {add, 0}, {add, 1}};
  for (int k = 0; k < 4; k++) {
    int v = r->nodes[reads[k][0]].in[reads[k][1]], p = -1;
    for (int i = 0; i < r->nnodes; i++) /* producers are linked at prepare */
      if (r->nodes[i].out[0] == v)
        p = i;
    cr_assert(p >= 0 && r->nodes[p].op == QCAL_GOP_DequantizeLinear, "read %d not through DQ", k);
    qcal_node *dq = &r->nodes[p];
    const qcal_value *sc = &r->values[dq->in[1]], *zp = &r->values[dq->in[2]];
    cr_assert_eq(zp->dtype, QCAL_DT_I8);
    for (size_t e = 0; e < zp->numel; e++)
      cr_assert_eq(((const int8_t *)zp->data)[e], 0);
    if (k == 1) { /* the weight: per output channel, axis 0, the given scales */
      cr_assert_eq(sc->numel, (size_t)c);
      cr_assert_eq(qcal_attr_int(dq, "axis", 1), 0);
      int j = 0;
      while (q[j].nscale != c)
        j++;
      for (int ch = 0; ch < c; ch++)
        cr_assert_eq(((const float *)sc->data)[ch], d.sc[j][ch]);
    } else {
      cr_assert_eq(sc->numel, 1);
    }
  }
  /* it runs: output = the Add of the dequantized operands */
  cr_assert_eq(qcal_graph_bind_input(r, 0, 4, s), QCAL_OK);
  cr_assert_eq(qcal_graph_prepare(r, NULL), QCAL_OK, "%s", qcal_last_error());
  float xin[3 * 30];
  rnd(xin, 90, 9, -1, 1);
  const void *in[1] = {xin};
  cr_assert_eq(qcal_graph_run(r, in), QCAL_OK, "%s", qcal_last_error());
  const qcal_value *y = &r->values[r->outputs[0]];
  cr_assert_eq(y->numel, 90u);
  for (size_t e = 0; e < 90; e++)
    cr_assert(isfinite(((const float *)y->data)[e]));
  qcal_graph_free(r);
  qcal_graph_free(g);
  free(buf);
}

static double sqnr_db(const float *ref, const float *x, size_t n) {
  double s = 0, e = 0;
  for (size_t i = 0; i < n; i++)
    s += (double)ref[i] * ref[i], e += ((double)ref[i] - x[i]) * ((double)ref[i] - x[i]);
  return e > 0 ? 10 * log10(s / e) : INFINITY;
}

/* The int8 engine against the Q/DQ model run as written: the residual block
 * written with calibrated Q/DQ pairs (max amax over the run), then run by
 * the qdq, int8 and fp32 engines. int8 lowers the convolution (int8 input
 * and weight, requantization into the Relu output's Q fused) and differs
 * from qdq only by integer accumulation and rounding; fp32 drops the pairs
 * and gives the float model's output. */
Test(graph, int8_engine_matches_qdq) {
  const int c = 16;
  size_t len;
  const float *w;
  unsigned char *buf = residual_model(&len, c, &w);
  qcal_graph *g;
  cr_assert_eq(qcal_onnx_parse("residual.onnx", buf, len, &g), QCAL_OK);
  int64_t s[4] = {1, c, 6, 5};
  size_t n = (size_t)c * 30;
  float *x = malloc(n * 4), *yf = malloc(n * 4), *yq = malloc(n * 4), *y8 = malloc(n * 4);
  rnd(x, n, 11, -1, 1);
  cr_assert_eq(qcal_graph_bind_input(g, 0, 4, s), QCAL_OK);
  qcal_graph_opts o = {.no_fuse = true, .plain_values = true};
  cr_assert_eq(qcal_graph_prepare(g, &o), QCAL_OK, "%s", qcal_last_error());
  const void *in[1] = {x};
  cr_assert_eq(qcal_graph_run(g, in), QCAL_OK);
  memcpy(yf, g->values[g->outputs[0]].data, n * 4);
  qdq_set d;
  qdq_points(g, max_scale, &d);
  qcal_qdq *q = d.q;
  int nq = d.n;
  char path[] = "/tmp/qcal_int8_XXXXXX.onnx";
  int fd = mkstemps(path, 5);
  cr_assert_geq(fd, 0);
  close(fd);
  cr_assert_eq(qcal_onnx_save(g, q, nq, path), QCAL_OK, "%s", qcal_last_error());
  qcal_graph_free(g);
  float *outs[3] = {yq, y8, NULL};
  float *y32 = malloc(n * 4);
  outs[2] = y32;
  const qcal_engine eng[3] = {QCAL_ENGINE_QDQ, QCAL_ENGINE_INT8, QCAL_ENGINE_FP32};
  for (int e = 0; e < 3; e++) {
    qcal_graph *r;
    cr_assert_eq(qcal_onnx_load(path, &r), QCAL_OK, "%s", qcal_last_error());
    cr_assert_eq(qcal_graph_bind_input(r, 0, 4, s), QCAL_OK);
    qcal_graph_opts ro = {.engine = eng[e]};
    cr_assert_eq(qcal_graph_prepare(r, &ro), QCAL_OK, "%s", qcal_last_error());
    if (eng[e] == QCAL_ENGINE_INT8) {
      cr_assert_eq(r->int8_nodes, 1, "the convolution runs in int8");
      int live_q = 0;
      for (int i = 0; i < r->nnodes; i++)
        live_q += !r->nodes[i].dead && r->nodes[i].op == QCAL_GOP_QuantizeLinear;
      cr_assert_eq(live_q, 1, "only the input's Q runs; the Relu output's is fused (%d)", live_q);
    }
    cr_assert_eq(qcal_graph_run(r, in), QCAL_OK, "%s", qcal_last_error());
    memcpy(outs[e], r->values[r->outputs[0]].data, n * 4);
    qcal_graph_free(r);
  }
  unlink(path);
  double d8 = sqnr_db(yq, y8, n), dq = sqnr_db(yf, yq, n), d32 = sqnr_db(yf, y32, n);
  cr_assert_geq(d8, 60, "int8 vs qdq %.1f dB", d8);
  cr_assert_lt(dq, 60, "Q/DQ does change the output (%.1f dB vs float)", dq);
  cr_assert_geq(d32, 100, "fp32 engine = the float model (%.1f dB)", d32);
  free(x), free(yf), free(yq), free(y8), free(y32);
  free(buf);
}

/* A MobileNetV2-style block with a pooled head: 1x1 expand -> Clip(0, 6) ->
 * 3x3 depthwise (stride 2) -> Clip(0, 6) -> 1x1 project ->
 * GlobalAveragePool, written with calibrated Q/DQ pairs. The int8 engine
 * runs all three convolutions in int8 (the Clip outputs as u8, the
 * requantization folded into the output scales) and the average over the
 * int8 codes; it stays within rounding of the qdq engine. */
static unsigned char *mbv2_block_model(size_t *len, int c) {
  static float w1[16 * 8], w2[16 * 9], w3[8 * 16], b1[16], b2[16], b3[8];
  const float lo = 0, hi = 6;
  rnd(w1, (size_t)2 * c * c, 21, -0.5f, 0.5f);
  rnd(w2, (size_t)2 * c * 9, 22, -0.6f, 0.6f);
  rnd(w3, (size_t)2 * c * c, 23, -0.4f, 0.4f);
  rnd(b1, (size_t)2 * c, 24, -0.1f, 0.3f);
  rnd(b2, (size_t)2 * c, 25, -0.1f, 0.3f);
  rnd(b3, (size_t)c, 26, -0.2f, 0.2f);
  static mb b;
  mb_init(&b, 13);
  int64_t xs[4] = {-1, c, 9, 9}, s1[4] = {2 * c, c, 1, 1}, s2[4] = {2 * c, 1, 3, 3},
          s3[4] = {c, 2 * c, 1, 1}, e2[1] = {2 * c}, e1[1] = {c};
  mb_input(&b, "x", 4, xs);
  mb_init_f32(&b, "w1", 4, s1, w1);
  mb_init_f32(&b, "w2", 4, s2, w2);
  mb_init_f32(&b, "w3", 4, s3, w3);
  mb_init_f32(&b, "b1", 1, e2, b1);
  mb_init_f32(&b, "b2", 1, e2, b2);
  mb_init_f32(&b, "b3", 1, e1, b3);
  mb_init_f32(&b, "lo", 0, NULL, &lo);
  mb_init_f32(&b, "hi", 0, NULL, &hi);
  const char *i1[] = {"x", "w1", "b1"}, *c1[] = {"e", "lo", "hi"};
  mb_node(&b, "Conv", "expand", 3, i1, "e");
  mb_node(&b, "Clip", "clip1", 3, c1, "ec");
  const char *i2[] = {"ec", "w2", "b2"}, *c2[] = {"d", "lo", "hi"};
  Onnx__NodeProto *dw = mb_node(&b, "Conv", "depthwise", 3, i2, "d");
  int64_t pads[4] = {1, 1, 1, 1}, st[2] = {2, 2};
  node_ints(dw, "pads", 4, pads);
  node_ints(dw, "strides", 2, st);
  node_int(dw, "group", 2 * c);
  mb_node(&b, "Clip", "clip2", 3, c2, "dc");
  const char *i3[] = {"dc", "w3", "b3"}, *g[] = {"p"};
  mb_node(&b, "Conv", "project", 3, i3, "p");
  mb_node(&b, "GlobalAveragePool", "gap", 1, g, "y");
  mb_output(&b, "y");
  return mb_pack(&b, len);
}

Test(graph, int8_engine_depthwise_block_and_pooled_head) {
  const int c = 8;
  size_t len;
  unsigned char *buf = mbv2_block_model(&len, c);
  qcal_graph *g;
  cr_assert_eq(qcal_onnx_parse("mbv2.onnx", buf, len, &g), QCAL_OK, "%s", qcal_last_error());
  int64_t s[4] = {2, c, 9, 9};
  size_t n = (size_t)2 * c * 81, ny = (size_t)2 * c;
  float *x = malloc(n * 4), *yq = malloc(ny * 4), *y8 = malloc(ny * 4);
  rnd(x, n, 27, -1, 2);
  cr_assert_eq(qcal_graph_bind_input(g, 0, 4, s), QCAL_OK);
  qcal_graph_opts o = {.no_fuse = true, .plain_values = true};
  cr_assert_eq(qcal_graph_prepare(g, &o), QCAL_OK, "%s", qcal_last_error());
  const void *in[1] = {x};
  cr_assert_eq(qcal_graph_run(g, in), QCAL_OK);
  qdq_set d;
  qdq_points(g, max_scale, &d);
  cr_assert_eq(d.n, 7, "x, three weights, two Clip outputs, the pooled input: %d", d.n);
  char path[] = "/tmp/qcal_mbv2_XXXXXX.onnx";
  int fd = mkstemps(path, 5);
  cr_assert_geq(fd, 0);
  close(fd);
  cr_assert_eq(qcal_onnx_save(g, d.q, d.n, path), QCAL_OK, "%s", qcal_last_error());
  qcal_graph_free(g);
  float *yp = malloc(ny * 4);
  float *outs[3] = {yq, y8, yp};
  /* the third run keeps every value plain NCHW: the average's other loop */
  const qcal_engine eng[3] = {QCAL_ENGINE_QDQ, QCAL_ENGINE_INT8, QCAL_ENGINE_INT8};
  for (int e = 0; e < 3; e++) {
    qcal_graph *r;
    cr_assert_eq(qcal_onnx_load(path, &r), QCAL_OK, "%s", qcal_last_error());
    cr_assert_eq(qcal_graph_bind_input(r, 0, 4, s), QCAL_OK);
    qcal_graph_opts ro = {.engine = eng[e], .plain_values = e == 2};
    cr_assert_eq(qcal_graph_prepare(r, &ro), QCAL_OK, "%s", qcal_last_error());
    if (eng[e] == QCAL_ENGINE_INT8) {
      cr_assert_eq(r->int8_nodes, 3, "all three convolutions in int8 (%d)", r->int8_nodes);
      int u8 = 0, gap8 = 0, dq = 0;
      for (int i = 0; i < r->nnodes; i++) {
        const qcal_node *nd = &r->nodes[i];
        if (nd->dead)
          continue;
        u8 += nd->op == QCAL_GOP_Int8Conv && r->values[nd->out[0]].dtype == QCAL_DT_U8;
        gap8 += nd->op == QCAL_GOP_Int8GlobalAveragePool;
        dq += nd->op == QCAL_GOP_DequantizeLinear;
      }
      cr_assert_eq(u8, 2, "both Clip outputs stored as u8 (%d)", u8);
      if (e == 1) { /* the input's Q writes the layout the first convolution reads */
        int xq = -1;
        for (int i = 0; i < r->nnodes; i++)
          if (!r->nodes[i].dead && r->nodes[i].op == QCAL_GOP_QuantizeLinear &&
              r->nodes[i].in[0] == r->inputs[0])
            xq = i;
        cr_assert_geq(xq, 0);
        cr_assert_not_null(r->values[r->nodes[xq].out[0]].fmt, "input Q into channels last");
      }
      cr_assert_eq(gap8, 1, "the average runs over the int8 codes");
      cr_assert_eq(dq, 0, "no activation is dequantized (%d DequantizeLinear left)", dq);
    }
    cr_assert_eq(qcal_graph_run(r, in), QCAL_OK, "%s", qcal_last_error());
    memcpy(outs[e], r->values[r->outputs[0]].data, ny * 4);
    qcal_graph_free(r);
  }
  unlink(path);
  double d8 = sqnr_db(yq, y8, ny), dp = sqnr_db(yq, yp, ny);
  cr_assert_geq(d8, 60, "int8 vs qdq %.1f dB", d8);
  cr_assert_geq(dp, 60, "int8 (plain values) vs qdq %.1f dB", dp);
  free(x), free(yq), free(y8), free(yp);
  free(buf);
}

/* Conv -> Relu -> MaxPool(3x3, stride 2, pad 1) -> Conv: MaxPool reads the
 * convolution's own layout in float (channels last or blocked, the same
 * numbers as the plain path, bit for bit), and the int8 engine takes the
 * max over the int8 codes and requantizes to the next pair's scale, within
 * rounding of the qdq engine. */
static unsigned char *pool_model(size_t *len, int c) {
  static float w1[16 * 16 * 9], w2[16 * 16 * 9], b1[16], b2[16];
  rnd(w1, (size_t)c * c * 9, 31, -0.3f, 0.3f);
  rnd(w2, (size_t)c * c * 9, 32, -0.3f, 0.3f);
  rnd(b1, (size_t)c, 33, -0.1f, 0.2f);
  rnd(b2, (size_t)c, 34, -0.1f, 0.1f);
  static mb b;
  mb_init(&b, 13);
  int64_t xs[4] = {-1, c, 11, 10}, ws[4] = {c, c, 3, 3}, cs[1] = {c};
  int64_t pads[4] = {1, 1, 1, 1}, ks[2] = {3, 3}, st[2] = {2, 2};
  mb_input(&b, "x", 4, xs);
  mb_init_f32(&b, "w1", 4, ws, w1);
  mb_init_f32(&b, "w2", 4, ws, w2);
  mb_init_f32(&b, "b1", 1, cs, b1);
  mb_init_f32(&b, "b2", 1, cs, b2);
  const char *i1[] = {"x", "w1", "b1"}, *r[] = {"c1"}, *p[] = {"r1"}, *i2[] = {"m", "w2", "b2"};
  node_ints(mb_node(&b, "Conv", "conv1", 3, i1, "c1"), "pads", 4, pads);
  mb_node(&b, "Relu", "relu", 1, r, "r1");
  Onnx__NodeProto *mp = mb_node(&b, "MaxPool", "pool", 1, p, "m");
  node_ints(mp, "kernel_shape", 2, ks);
  node_ints(mp, "strides", 2, st);
  node_ints(mp, "pads", 4, pads);
  node_ints(mb_node(&b, "Conv", "conv2", 3, i2, "y"), "pads", 4, pads);
  mb_output(&b, "y");
  return mb_pack(&b, len);
}

/* max calibration, then every other value's scale 31% wider: the pool's
 * input and output scales differ, so its requantization does something */
static float uneven_scale(const qcal_value *v, int ch, int idx) {
  return max_scale(v, ch, idx) * (idx % 2 ? 1.31f : 1.0f);
}

static void maxpool_check(void) {
  for (int c = 16; c >= 3; c -= 13) { /* 16: whole blocks; 3: the plain path */
    size_t len;
    unsigned char *buf = pool_model(&len, c);
    int64_t s[4] = {2, c, 11, 10};
    size_t n = (size_t)2 * c * 110, ny = (size_t)2 * c * 30;
    float *x = malloc(n * 4), *y0 = malloc(ny * 4), *y1 = malloc(ny * 4), *yq = malloc(ny * 4),
          *y8 = malloc(ny * 4);
    rnd(x, n, 35, -1, 1);
    const void *in[1] = {x};
    /* float: plain values against the convolutions' layouts */
    float *outs[2] = {y0, y1};
    for (int k = 0; k < 2; k++) {
      qcal_graph *g;
      cr_assert_eq(qcal_onnx_parse("pool.onnx", buf, len, &g), QCAL_OK, "%s", qcal_last_error());
      cr_assert_eq(qcal_graph_bind_input(g, 0, 4, s), QCAL_OK);
      qcal_graph_opts o = {.plain_values = k == 0};
      cr_assert_eq(qcal_graph_prepare(g, &o), QCAL_OK, "%s", qcal_last_error());
      if (k == 1 && c == 16) {
        const qcal_node *pn = &g->nodes[g->values[qcal_graph_find(g, "m")].producer];
        cr_assert_eq(pn->op, QCAL_GOP_MaxPool);
        cr_assert_not_null(g->values[pn->in[0]].fmt, "MaxPool reads the convolution's layout");
      }
      cr_assert_eq(qcal_graph_run(g, in), QCAL_OK, "%s", qcal_last_error());
      memcpy(outs[k], g->values[g->outputs[0]].data, ny * 4);
      if (k == 0) { /* calibrate on this run and write the Q/DQ model */
        qcal_graph_free(g);
        cr_assert_eq(qcal_onnx_parse("pool.onnx", buf, len, &g), QCAL_OK);
        cr_assert_eq(qcal_graph_bind_input(g, 0, 4, s), QCAL_OK);
        qcal_graph_opts cal = {.no_fuse = true, .plain_values = true};
        cr_assert_eq(qcal_graph_prepare(g, &cal), QCAL_OK, "%s", qcal_last_error());
        cr_assert_eq(qcal_graph_run(g, in), QCAL_OK);
        qdq_set d;
        qdq_points(g, uneven_scale, &d);
        char path[] = "/tmp/qcal_pool_XXXXXX.onnx";
        int fd = mkstemps(path, 5);
        cr_assert_geq(fd, 0);
        close(fd);
        cr_assert_eq(qcal_onnx_save(g, d.q, d.n, path), QCAL_OK, "%s", qcal_last_error());
        float *qo[2] = {yq, y8};
        const qcal_engine eng[2] = {QCAL_ENGINE_QDQ, QCAL_ENGINE_INT8};
        for (int e = 0; e < 2; e++) {
          qcal_graph *r;
          cr_assert_eq(qcal_onnx_load(path, &r), QCAL_OK, "%s", qcal_last_error());
          cr_assert_eq(qcal_graph_bind_input(r, 0, 4, s), QCAL_OK);
          qcal_graph_opts ro = {.engine = eng[e]};
          cr_assert_eq(qcal_graph_prepare(r, &ro), QCAL_OK, "%s", qcal_last_error());
          if (e == 1) {
            int pool8 = 0;
            for (int i = 0; i < r->nnodes; i++)
              pool8 += !r->nodes[i].dead && r->nodes[i].op == QCAL_GOP_Int8MaxPool;
            cr_assert_eq(pool8, 1, "the MaxPool runs over int8 codes");
          }
          cr_assert_eq(qcal_graph_run(r, in), QCAL_OK, "%s", qcal_last_error());
          memcpy(qo[e], r->values[r->outputs[0]].data, ny * 4);
          qcal_graph_free(r);
        }
        unlink(path);
      }
      qcal_graph_free(g);
    }
    for (size_t i = 0; i < ny; i++)
      cr_assert_float_eq(y1[i], y0[i], 1e-4f, "c=%d element %zu: %g vs %g", c, i, y1[i], y0[i]);
    double d8 = sqnr_db(yq, y8, ny);
    cr_assert_geq(d8, 60, "c=%d: int8 vs qdq %.1f dB", c, d8);
    free(x), free(y0), free(y1), free(yq), free(y8);
    free(buf);
  }
}

Test(graph, maxpool_layouts_and_int8) {
  maxpool_check();
}

static void arch_ref(void) {
  setenv("QCAL_ARCH", "ref", 1);
}

/* the same with the SIMD paths off: the int8 MaxPool's scalar loop */
Test(graph, maxpool_layouts_and_int8_scalar, .init = arch_ref) {
  cr_assert_eq(qcal_isa_enabled(), 0u);
  maxpool_check();
}

Test(graph, equal_on_floats_writes_bool) {
  /* Swin's attention mask: Equal([16,1,49], [16,49,1]) broadcast to a bool
   * [16,49,49]; the float fast path once wrote floats there (4x overflow) */
  qcal_graph *g;
  cr_assert_eq(qcal_graph_new("eq.onnx", &g), QCAL_OK);
  int64_t sa[3] = {16, 1, 49}, sb[3] = {16, 49, 1};
  int a, b, y, node;
  cr_assert_eq(qcal_graph_add_value(g, "a", QCAL_VAL_INPUT, QCAL_DT_F32, 3, sa, &a), QCAL_OK);
  cr_assert_eq(qcal_graph_add_value(g, "b", QCAL_VAL_INPUT, QCAL_DT_F32, 3, sb, &b), QCAL_OK);
  cr_assert_eq(qcal_graph_add_value(g, "y", QCAL_VAL_ACT, QCAL_DT_F32, 0, NULL, &y), QCAL_OK);
  const int in[2] = {a, b};
  cr_assert_eq(qcal_graph_add_node(g, QCAL_GOP_Equal, "eq", 2, in, 1, &y, &node), QCAL_OK);
  cr_assert_eq(qcal_graph_add_input(g, a), QCAL_OK);
  cr_assert_eq(qcal_graph_add_input(g, b), QCAL_OK);
  cr_assert_eq(qcal_graph_add_output(g, y), QCAL_OK);
  cr_assert_eq(qcal_graph_prepare(g, NULL), QCAL_OK, "%s", qcal_last_error());
  float xa[16 * 49], xb[16 * 49];
  for (int k = 0; k < 16 * 49; k++)
    xa[k] = (float)(k % 3), xb[k] = (float)((k / 7) % 3);
  const void *inputs[2] = {xa, xb};
  cr_assert_eq(qcal_graph_run(g, inputs), QCAL_OK, "%s", qcal_last_error());
  const qcal_value *yv = &g->values[g->outputs[0]];
  cr_assert_eq(yv->dtype, QCAL_DT_BOOL);
  cr_assert_eq(yv->numel, (size_t)16 * 49 * 49);
  const uint8_t *yd = yv->data;
  for (int w = 0; w < 16; w++)
    for (int i = 0; i < 49; i++)
      for (int j = 0; j < 49; j++)
        cr_assert_eq(yd[(w * 49 + i) * 49 + j], xa[w * 49 + j] == xb[w * 49 + i], "at %d,%d,%d",
                     w, i, j);
  qcal_graph_free(g);
}
