/* ONNX import: ModelProto (protobuf-c code generated at build time from
 * Debian's onnx.proto) into the graph IR. Every count, size and name in the
 * file is untrusted: tensor payloads must match their declared shapes,
 * external data must stay beside the model, and any op, attribute or dtype
 * outside the lists is an error naming the node. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "graph/internal.h"
#include "onnx.pb-c.h"
#include "qcal/datasets.h"
#include "qcal/escape.h"
#include "qcal/paths.h"

float qcal_half_to_float(uint16_t h);

int qcal_onnx_dtype_to_qcal(int t) {
  switch (t) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    return QCAL_DT_F32;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    return QCAL_DT_I64;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    return QCAL_DT_I32;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    return QCAL_DT_I8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    return QCAL_DT_U8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    return QCAL_DT_BOOL;
  default:
    return -1;
  }
}

static const char *onnx_dtype_name(int t) {
  static const char *const n[] = {"undefined",  "float",   "uint8",  "int8",   "uint16",
                                  "int16",      "int32",   "int64",  "string", "bool",
                                  "float16",    "double",  "uint32", "uint64", "complex64",
                                  "complex128", "bfloat16"};
  return t >= 0 && t <= 16 ? n[t] : "unknown";
}

typedef struct ctx {
  const char *path;
  char dir[4096];
  qcal_graph *g;
} ctx;

static const char *esc(const char *s, char *buf, size_t cap) {
  return qcal_escape_text(s ? s : "", buf, cap);
}

/* External data: a relative path inside the model's folder. */
static qcal_status read_external(ctx *c, const Onnx__TensorProto *t, size_t want,
                                 unsigned char **out) {
  const char *loc = NULL;
  long long off = 0, len = -1;
  char nb[96], lb[160];
  for (size_t k = 0; k < t->n_external_data; k++) {
    const Onnx__StringStringEntryProto *e = t->external_data[k];
    if (!e->key || !e->value)
      continue;
    char *end;
    if (!strcmp(e->key, "location")) {
      loc = e->value;
    } else if (!strcmp(e->key, "offset") || !strcmp(e->key, "length")) {
      errno = 0;
      long long v = strtoll(e->value, &end, 10);
      if (errno || *end || v < 0)
        return qcal_error(QCAL_EFORMAT, "%s: initializer '%s': bad external %s '%s'", c->path,
                          esc(t->name, nb, sizeof nb), e->key, esc(e->value, lb, sizeof lb));
      *(strcmp(e->key, "offset") ? &len : &off) = v;
    }
  }
  if (!loc || !*loc)
    return qcal_error(QCAL_EFORMAT, "%s: initializer '%s': external data without a location",
                      c->path, esc(t->name, nb, sizeof nb));
  if (loc[0] == '/' || strstr(loc, "..") || strlen(loc) > 1024)
    return qcal_error(QCAL_EFORMAT,
                      "%s: initializer '%s': external location '%s' must be a plain path beside "
                      "the model",
                      c->path, esc(t->name, nb, sizeof nb), esc(loc, lb, sizeof lb));
  if (len >= 0 && (size_t)len != want)
    return qcal_error(QCAL_EFORMAT, "%s: initializer '%s': external length %lld, shape needs %zu",
                      c->path, esc(t->name, nb, sizeof nb), len, want);
  char full[8192];
  snprintf(full, sizeof full, "%s/%s", c->dir, loc);
  FILE *f = fopen(full, "rb");
  if (!f)
    return qcal_error(QCAL_EIO, "%s: initializer '%s': cannot open external data '%s': %s", c->path,
                      esc(t->name, nb, sizeof nb), esc(full, lb, sizeof lb), strerror(errno));
  struct stat stt;
  if (fstat(fileno(f), &stt) || (long long)stt.st_size < off ||
      (unsigned long long)(stt.st_size - off) < want) {
    fclose(f);
    return qcal_error(QCAL_EFORMAT,
                      "%s: initializer '%s': external data '%s' is too short (%zu bytes at "
                      "offset %lld)",
                      c->path, esc(t->name, nb, sizeof nb), esc(loc, lb, sizeof lb), want, off);
  }
  unsigned char *b = qcal_alloc(want ? want : 1);
  if (!b) {
    fclose(f);
    return qcal_error(QCAL_ENOMEM, "%s: out of memory for '%s'", c->path,
                      esc(t->name, nb, sizeof nb));
  }
  if (fseeko(f, off, SEEK_SET) || fread(b, 1, want, f) != want) {
    fclose(f);
    qcal_free(b);
    return qcal_error(QCAL_EIO, "%s: cannot read external data '%s'", c->path,
                      esc(loc, lb, sizeof lb));
  }
  fclose(f);
  *out = b;
  return QCAL_OK;
}

/* TensorProto into a new constant value named `name`. */
static qcal_status add_tensor(ctx *c, const Onnx__TensorProto *t, const char *name, int *idx) {
  char nb[96];
  int dt = t->has_data_type ? t->data_type : 0;
  int qdt = qcal_onnx_dtype_to_qcal(dt);
  bool f16 = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
  bool f64 = dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
  if (qdt < 0 && !f16 && !f64)
    return qcal_error(QCAL_EDTYPE, "%s: tensor '%s' is %s, which is not supported", c->path,
                      esc(name, nb, sizeof nb), onnx_dtype_name(dt));
  if (t->segment)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: tensor '%s' is segmented", c->path,
                      esc(name, nb, sizeof nb));
  if (t->n_dims > QCAL_MAX_DIMS)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: tensor '%s' has %zu dims (at most %d)", c->path,
                      esc(name, nb, sizeof nb), t->n_dims, QCAL_MAX_DIMS);
  size_t numel = 1;
  for (size_t d = 0; d < t->n_dims; d++)
    if (t->dims[d] < 0 || qcal_mul_size(numel, (size_t)t->dims[d], &numel) ||
        numel > ((size_t)1 << 40))
      return qcal_error(QCAL_EFORMAT, "%s: tensor '%s' has a bad shape", c->path,
                        esc(name, nb, sizeof nb));
  size_t src_es = f16 ? 2 : f64 ? 8 : qcal_dtype_size((qcal_dtype)qdt);
  qcal_dtype out_dt = f16 || f64 ? QCAL_DT_F32 : (qcal_dtype)qdt;
  size_t out_es = qcal_dtype_size(out_dt);
  unsigned char *ext = NULL;
  const unsigned char *raw = NULL;
  size_t rawlen = 0;
  bool external =
      t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  if (external) {
    QCAL_TRY(read_external(c, t, numel * src_es, &ext));
    raw = ext, rawlen = numel * src_es;
  } else if (t->has_raw_data) {
    raw = t->raw_data.data, rawlen = t->raw_data.len;
  }
  size_t typed = dt == 1   ? t->n_float_data
                 : dt == 7 ? t->n_int64_data
                 : f64     ? t->n_double_data
                           : t->n_int32_data;
  if (raw ? rawlen != numel * src_es : typed != numel) {
    qcal_free(ext);
    return qcal_error(QCAL_EFORMAT, "%s: tensor '%s' holds %zu %s, its shape needs %zu elements",
                      c->path, esc(name, nb, sizeof nb), raw ? rawlen : typed,
                      raw ? "bytes" : "values", numel);
  }
  void *d = qcal_alloc(numel * out_es > 0 ? numel * out_es : 1);
  if (!d) {
    qcal_free(ext);
    return qcal_error(QCAL_ENOMEM, "%s: out of memory for tensor '%s'", c->path,
                      esc(name, nb, sizeof nb));
  }
  for (size_t k = 0; k < numel; k++) {
    if (f16) {
      uint16_t h = raw ? (uint16_t)(raw[2 * k] | raw[2 * k + 1] << 8) : (uint16_t)t->int32_data[k];
      ((float *)d)[k] = qcal_half_to_float(h);
    } else if (f64) {
      double v;
      if (raw)
        memcpy(&v, raw + 8 * k, 8);
      else
        v = t->double_data[k];
      ((float *)d)[k] = (float)v;
    } else if (raw) {
      memcpy((char *)d + k * out_es, raw + k * out_es, out_es);
    } else {
      switch (out_dt) {
      case QCAL_DT_F32:
        ((float *)d)[k] = t->float_data[k];
        break;
      case QCAL_DT_I64:
        ((int64_t *)d)[k] = t->int64_data[k];
        break;
      case QCAL_DT_I32:
        ((int32_t *)d)[k] = t->int32_data[k];
        break;
      case QCAL_DT_I8:
        ((int8_t *)d)[k] = (int8_t)t->int32_data[k];
        break;
      case QCAL_DT_U8:
        ((uint8_t *)d)[k] = (uint8_t)t->int32_data[k];
        break;
      case QCAL_DT_BOOL:
        ((uint8_t *)d)[k] = t->int32_data[k] != 0;
        break;
      default:
        break;
      }
    }
  }
  qcal_free(ext);
  int64_t shape[QCAL_MAX_DIMS];
  for (size_t k = 0; k < t->n_dims; k++)
    shape[k] = t->dims[k];
  return qcal_graph_add_const(c->g, name, out_dt, (int)t->n_dims, shape, d, idx);
}

static qcal_status add_input(ctx *c, const Onnx__ValueInfoProto *vi) {
  char nb[96];
  const Onnx__TypeProto *tp = vi->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: input '%s' is not a tensor", c->path,
                      esc(vi->name, nb, sizeof nb));
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  int dt = qcal_onnx_dtype_to_qcal(tt->elem_type);
  if (dt < 0)
    return qcal_error(QCAL_EDTYPE, "%s: input '%s' is %s, which is not supported", c->path,
                      esc(vi->name, nb, sizeof nb), onnx_dtype_name(tt->elem_type));
  int64_t shape[QCAL_MAX_DIMS];
  int nd = 0;
  if (!tt->shape)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: input '%s' has no declared rank", c->path,
                      esc(vi->name, nb, sizeof nb));
  if (tt->shape->n_dim > QCAL_MAX_DIMS)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: input '%s' has %zu dims", c->path,
                      esc(vi->name, nb, sizeof nb), tt->shape->n_dim);
  for (size_t d = 0; d < tt->shape->n_dim; d++) {
    const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[d];
    shape[nd++] =
        dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dm->dim_value > 0
            ? dm->dim_value
            : -1;
  }
  int idx;
  QCAL_TRY(qcal_graph_add_value(c->g, vi->name, QCAL_VAL_INPUT, (qcal_dtype)dt, nd, shape, &idx));
  return qcal_graph_add_input(c->g, idx);
}

static qcal_status add_attr(ctx *c, qcal_node *n, const Onnx__AttributeProto *a) {
  char nb[96];
  qcal_attr at = {0};
  at.name = a->name ? a->name : "";
  qcal_status st = QCAL_OK;
  char buf[160];
  switch (a->has_type ? a->type : 0) {
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
    at.type = QCAL_ATTR_INT, at.i = a->i;
    break;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
    at.type = QCAL_ATTR_FLOAT, at.f = a->f;
    break;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
    if (a->n_ints > 1 << 20)
      return qcal_error(QCAL_EFORMAT, "%s: attribute '%s' is too long", c->path,
                        esc(at.name, nb, sizeof nb));
    at.type = QCAL_ATTR_INTS, at.n = (int)a->n_ints, at.ints = a->ints;
    break;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
    if (a->n_floats > 1 << 20)
      return qcal_error(QCAL_EFORMAT, "%s: attribute '%s' is too long", c->path,
                        esc(at.name, nb, sizeof nb));
    at.type = QCAL_ATTR_FLOATS, at.n = (int)a->n_floats, at.floats = a->floats;
    break;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: {
    size_t len = a->s.len < 4096 ? a->s.len : 4096;
    char *s = malloc(len + 1);
    if (!s)
      return qcal_error(QCAL_ENOMEM, "out of memory");
    if (len)
      memcpy(s, a->s.data, len);
    s[len] = 0;
    at.type = QCAL_ATTR_STRING, at.s = s;
    st = qcal_node_add_attr(n, &at);
    free(s);
    return st;
  }
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
    if (!a->t)
      return qcal_error(QCAL_EFORMAT, "%s: attribute '%s' has no tensor", c->path,
                        esc(at.name, nb, sizeof nb));
    char name[600];
    for (int k = 0;; k++) {
      snprintf(name, sizeof name, "%.256s:%.256s%s%.0d", n->name, at.name, k ? ":" : "", k);
      if (qcal_graph_find(c->g, name) < 0)
        break;
    }
    int idx;
    QCAL_TRY(add_tensor(c, a->t, name, &idx));
    at.type = QCAL_ATTR_TENSOR, at.i = idx;
    break;
  }
  default: {
    char desc[160];
    return qcal_error(QCAL_EUNSUPPORTED, "%s: %s: attribute '%s' has an unsupported type (%d)",
                      c->path, qcal_node_desc(c->g, n, desc, sizeof desc),
                      esc(at.name, buf, sizeof buf), a->has_type ? (int)a->type : 0);
  }
  }
  return qcal_node_add_attr(n, &at);
}

static qcal_status build(ctx *c, const Onnx__ModelProto *m) {
  qcal_graph *g = c->g;
  char nb[96], ob[96];
  const Onnx__GraphProto *gp = m->graph;
  if (!gp)
    return qcal_error(QCAL_EFORMAT, "%s: the model has no graph", c->path);
  g->opset = 0;
  for (size_t k = 0; k < m->n_opset_import; k++) {
    const Onnx__OperatorSetIdProto *o = m->opset_import[k];
    if ((!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) && o->has_version)
      g->opset = (int)o->version;
  }
  if (g->opset < 1 || g->opset > 18)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: ONNX opset %d is not supported (1 to 18 are)",
                      c->path, g->opset);
  for (size_t k = 0; k < gp->n_initializer; k++) {
    const Onnx__TensorProto *t = gp->initializer[k];
    if (!t->name || !*t->name)
      return qcal_error(QCAL_EFORMAT, "%s: initializer %zu has no name", c->path, k);
    QCAL_TRY(add_tensor(c, t, t->name, NULL));
  }
  if (gp->n_sparse_initializer)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: sparse initializers are not supported", c->path);
  for (size_t k = 0; k < gp->n_input; k++) {
    const Onnx__ValueInfoProto *vi = gp->input[k];
    if (!vi->name || !*vi->name)
      return qcal_error(QCAL_EFORMAT, "%s: graph input %zu has no name", c->path, k);
    if (qcal_graph_find(g, vi->name) >= 0 &&
        g->values[qcal_graph_find(g, vi->name)].kind == QCAL_VAL_CONST)
      continue; /* an initializer listed as input (IR < 4) */
    QCAL_TRY(add_input(c, vi));
  }
  /* outputs of every node first: the file need not be sorted */
  for (size_t k = 0; k < gp->n_node; k++) {
    const Onnx__NodeProto *np = gp->node[k];
    const char *nname = np->name && *np->name ? np->name : "";
    if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx"))
      return qcal_error(QCAL_EUNSUPPORTED, "%s: node '%s': op '%s' of domain '%s' is not supported",
                        c->path, esc(nname, nb, sizeof nb), esc(np->op_type, ob, sizeof ob),
                        esc(np->domain, nb, sizeof nb));
    qcal_graph_op op = qcal_op_find(np->op_type ? np->op_type : "");
    if (op == QCAL_GOP_COUNT)
      return qcal_error(QCAL_EUNSUPPORTED, "%s: node '%s': op '%s' is not supported", c->path,
                        esc(nname, nb, sizeof nb), esc(np->op_type, ob, sizeof ob));
    if (np->n_input > 1024 || np->n_output > 1024)
      return qcal_error(QCAL_EFORMAT, "%s: node '%s' has too many inputs or outputs", c->path,
                        esc(nname, nb, sizeof nb));
    for (size_t o = 0; o < np->n_output; o++) {
      const char *on = np->output[o];
      if (on && *on)
        QCAL_TRY(qcal_graph_add_value(g, on, QCAL_VAL_ACT, QCAL_DT_F32, 0, NULL, NULL));
    }
  }
  for (size_t k = 0; k < gp->n_node; k++) {
    const Onnx__NodeProto *np = gp->node[k];
    int in[1024], out[1024];
    char desc[64];
    const char *nname = np->name && *np->name ? np->name : "";
    if (!*nname)
      snprintf(desc, sizeof desc, "%s_%zu", np->op_type, k), nname = desc;
    for (size_t i = 0; i < np->n_input; i++) {
      const char *vn = np->input[i];
      in[i] = vn && *vn ? qcal_graph_find(g, vn) : -1;
      if (vn && *vn && in[i] < 0)
        return qcal_error(QCAL_EFORMAT,
                          "%s: %s node '%s': reads '%s', which no node, input or initializer "
                          "produces",
                          c->path, esc(np->op_type, ob, sizeof ob), esc(nname, nb, sizeof nb),
                          esc(vn, desc, sizeof desc));
    }
    for (size_t o = 0; o < np->n_output; o++)
      out[o] = np->output[o] && *np->output[o] ? qcal_graph_find(g, np->output[o]) : -1;
    int idx;
    QCAL_TRY(qcal_graph_add_node(g, qcal_op_find(np->op_type), nname, (int)np->n_input, in,
                                 (int)np->n_output, out, &idx));
    for (size_t a = 0; a < np->n_attribute; a++)
      QCAL_TRY(add_attr(c, &g->nodes[idx], np->attribute[a]));
  }
  for (size_t k = 0; k < gp->n_output; k++) {
    const char *on = gp->output[k]->name;
    int v = on ? qcal_graph_find(g, on) : -1;
    if (v < 0)
      return qcal_error(QCAL_EFORMAT, "%s: graph output '%s' is produced by nothing", c->path,
                        esc(on, nb, sizeof nb));
    QCAL_TRY(qcal_graph_add_output(g, v));
  }
  if (!g->noutputs)
    return qcal_error(QCAL_EFORMAT, "%s: the graph has no outputs", c->path);
  return QCAL_OK;
}

qcal_status qcal_onnx_parse(const char *path, const unsigned char *buf, size_t len,
                            qcal_graph **out) {
  *out = NULL;
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
  if (!m)
    return qcal_error(QCAL_EFORMAT, "%s: not an ONNX model (the protobuf does not parse)", path);
  ctx c = {.path = path};
  qcal_status st = qcal_parent_dir(path, c.dir, sizeof c.dir);
  if (!st)
    st = qcal_graph_new(path, &c.g);
  if (!st)
    st = build(&c, m);
  onnx__model_proto__free_unpacked(m, NULL);
  if (st) {
    qcal_graph_free(c.g);
    return st;
  }
  *out = c.g;
  return QCAL_OK;
}

qcal_status qcal_onnx_load(const char *path, qcal_graph **out) {
  unsigned char *buf;
  size_t len;
  QCAL_TRY(qcal_read_file(path, &buf, &len));
  qcal_status st = qcal_onnx_parse(path, buf, len, out);
  free(buf);
  return st;
}

qcal_status qcal_onnx_tensor_read(const char *path, qcal_dtype *dtype, int *ndim, int64_t *shape,
                                  void **data, size_t *numel) {
  unsigned char *buf;
  size_t len;
  *data = NULL;
  QCAL_TRY(qcal_read_file(path, &buf, &len));
  Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
  free(buf);
  if (!t)
    return qcal_error(QCAL_EFORMAT, "%s: not a TensorProto (the protobuf does not parse)", path);
  ctx c = {.path = path};
  snprintf(c.dir, sizeof c.dir, ".");
  qcal_status st = qcal_graph_new(path, &c.g);
  int idx = -1;
  if (!st)
    st = add_tensor(&c, t, "tensor", &idx);
  onnx__tensor_proto__free_unpacked(t, NULL);
  if (!st) {
    qcal_value *v = &c.g->values[idx];
    *dtype = v->dtype;
    *ndim = v->ndim;
    memcpy(shape, v->shape, (size_t)v->ndim * sizeof *shape);
    *numel = v->numel;
    *data = v->data;
    v->data = NULL;
  }
  qcal_graph_free(c.g);
  return st;
}

qcal_status qcal_graph_load(const char *path, qcal_graph **out) {
  size_t n = strlen(path);
  if (n > 5 && !strcmp(path + n - 5, ".onnx"))
    return qcal_onnx_load(path, out);
  if (n > 5 && !strcmp(path + n - 5, ".json"))
    return qcal_tfjs_graph_load(path, out);
  char nb[160];
  return qcal_error(QCAL_EINVAL, "%s: unknown model format (expected .onnx or a TF.js model.json)",
                    qcal_escape_text(path, nb, sizeof nb));
}
