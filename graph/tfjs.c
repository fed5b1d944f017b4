/* TF.js graph models (model.json + weight shards) into the graph IR.
 *
 * TF tensors are NHWC; the IR's 4-D activations are NCHW. Each TF tensor T
 * may have two IR values: "T" in TF order and "T#nchw". Convolutions,
 * pooling, resize and depth-to-space read and write NCHW; element-wise ops
 * follow whichever version exists (constants are brought to the same
 * layout); shape ops (Reshape, StridedSlice, Pack, ...) work in TF order. A
 * Transpose is inserted only where a reader needs the other version, and
 * graph outputs are in TF order, named by their nodes. Every name, count and
 * size in the files is untrusted: shard paths stay beside the model, shard
 * sizes must match the manifest exactly, and an op or attribute value
 * outside the supported set is an error naming the op and node. */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/json_get.h"
#include "graph/internal.h"
#include "qcal/datasets.h"
#include "qcal/escape.h"
#include "qcal/paths.h"

float qcal_half_to_float(uint16_t h);

typedef struct tctx {
  const char *path;
  char dir[4096];
  qcal_graph *g;
  const char *node;   /* current TF node name (messages) */
  const char *nodeop; /* and its op */
  int tmp;            /* counter for helper value names */
} tctx;

/* TF.js writes int64 as strings, sometimes as numbers */
static bool jint(json_object *v, int64_t *out) {
  if (!v)
    return false;
  if (json_object_is_type(v, json_type_int)) {
    *out = json_object_get_int64(v);
    return true;
  }
  const char *s = jstr(v);
  if (!s)
    return false;
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || end == s || *end)
    return false;
  *out = x;
  return true;
}

static qcal_status terr(tctx *c, qcal_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static qcal_status terr(tctx *c, qcal_status st, const char *fmt, ...) {
  char msg[512], nb[128], ob[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (c->node)
    return qcal_error(st, "%s: %s node '%s': %s", c->path,
                      qcal_escape_text(c->nodeop, ob, sizeof ob),
                      qcal_escape_text(c->node, nb, sizeof nb), msg);
  return qcal_error(st, "%s: %s", c->path, msg);
}

/* ---- attributes of a TF node */
static json_object *attr(json_object *node, const char *k) {
  return jget(jget(node, "attr"), k);
}

static int b64v(int ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* base64 string attribute, decoded into buf ("" when absent) */
/* base64 text into buf (NUL-terminated, truncated to cap) */
static const char *b64_decode(const char *s, char *buf, size_t cap) {
  size_t n = 0;
  unsigned acc = 0;
  int bits = 0;
  for (; s && *s && *s != '=' && n + 1 < cap; s++) {
    int v = b64v((unsigned char)*s);
    if (v < 0)
      break;
    acc = acc << 6 | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[n++] = (char)((acc >> bits) & 0xff);
    }
  }
  buf[n] = 0;
  return buf;
}

/* base64 string attribute, decoded into buf ("" when absent) */
static const char *attr_s(json_object *node, const char *k, char *buf, size_t cap) {
  return b64_decode(jstr(jget(attr(node, k), "s")), buf, cap);
}

static bool attr_b(json_object *node, const char *k) {
  json_object *b = jget(attr(node, k), "b");
  return b && json_object_is_type(b, json_type_boolean) && json_object_get_boolean(b);
}

static int64_t attr_i(json_object *node, const char *k, int64_t def) {
  int64_t v;
  return jint(jget(attr(node, k), "i"), &v) ? v : def;
}

static double attr_f(json_object *node, const char *k, double def) {
  json_object *f = jget(attr(node, k), "f");
  return f && (json_object_is_type(f, json_type_double) || json_object_is_type(f, json_type_int))
             ? json_object_get_double(f)
             : def;
}

/* list(int) attribute into out[max]; its length, or -1 when malformed */
static int attr_ints(json_object *node, const char *k, int64_t *out, int max) {
  json_object *l = jget(jget(attr(node, k), "list"), "i");
  int n = (int)jlen(l);
  if (n > max)
    return -1;
  for (int i = 0; i < n; i++)
    if (!jint(jat(l, (size_t)i), &out[i]))
      return -1;
  return n;
}

/* ---- building the IR */
static qcal_status node_attr_ints(qcal_graph *g, int node, const char *name, int n,
                                  const int64_t *v) {
  qcal_attr a = {.name = (char *)name, .type = QCAL_ATTR_INTS, .n = n, .ints = (int64_t *)v};
  return qcal_node_add_attr(&g->nodes[node], &a);
}
static qcal_status node_attr_int(qcal_graph *g, int node, const char *name, int64_t v) {
  qcal_attr a = {.name = (char *)name, .type = QCAL_ATTR_INT, .i = v};
  return qcal_node_add_attr(&g->nodes[node], &a);
}
static qcal_status node_attr_float(qcal_graph *g, int node, const char *name, float v) {
  qcal_attr a = {.name = (char *)name, .type = QCAL_ATTR_FLOAT, .f = v};
  return qcal_node_add_attr(&g->nodes[node], &a);
}
static qcal_status node_attr_str(qcal_graph *g, int node, const char *name, const char *v) {
  qcal_attr a = {.name = (char *)name, .type = QCAL_ATTR_STRING, .s = (char *)v};
  return qcal_node_add_attr(&g->nodes[node], &a);
}

/* A fresh activation value named base + suffix (unique). */
static qcal_status new_act(tctx *c, const char *base, const char *suffix, int *idx) {
  char name[1200];
  snprintf(name, sizeof name, "%.1000s%s", base, suffix);
  if (qcal_graph_find(c->g, name) >= 0)
    snprintf(name, sizeof name, "%.1000s%s.%d", base, suffix, c->tmp++);
  return qcal_graph_add_value(c->g, name, QCAL_VAL_ACT, QCAL_DT_F32, 0, NULL, idx);
}

/* One IR node; returns its index in *node (may be NULL). */
static qcal_status emit(tctx *c, qcal_graph_op op, int nin, const int *in, int out, int *node) {
  char name[1200];
  snprintf(name, sizeof name, "%.1000s", c->g->values[out].name);
  int idx;
  QCAL_TRY(qcal_graph_add_node(c->g, op, name, nin, in, 1, &out, &idx));
  if (node)
    *node = idx;
  return QCAL_OK;
}

static qcal_status const_i64(tctx *c, const char *base, int n, const int64_t *v, int *idx) {
  char name[1200];
  snprintf(name, sizeof name, "%.1000s#c%d", base, c->tmp++);
  int64_t *d = qcal_alloc((size_t)(n ? n : 1) * 8);
  if (!d)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  if (n)
    memcpy(d, v, (size_t)n * 8);
  int64_t shape[1] = {n};
  return qcal_graph_add_const(c->g, name, QCAL_DT_I64, 1, shape, d, idx);
}

static qcal_status const_f32(tctx *c, const char *base, int ndim, const int64_t *shape,
                             const float *v, size_t n, int *idx) {
  char name[1200];
  snprintf(name, sizeof name, "%.1000s#c%d", base, c->tmp++);
  float *d = qcal_alloc((n ? n : 1) * 4);
  if (!d)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  if (n)
    memcpy(d, v, n * 4);
  return qcal_graph_add_const(c->g, name, QCAL_DT_F32, ndim, shape, d, idx);
}

/* "node:0" -> "node"; control inputs ("^x") -> NULL */
static const char *tf_ref(const char *s, char *buf, size_t cap) {
  if (!s || s[0] == '^')
    return NULL;
  size_t n = strlen(s);
  if (n > 2 && !strcmp(s + n - 2, ":0"))
    n -= 2;
  snprintf(buf, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), s);
  return buf;
}

static int find_nchw(tctx *c, const char *name) {
  char b[1200];
  snprintf(b, sizeof b, "%.1000s#nchw", name);
  return qcal_graph_find(c->g, b);
}

/* The TF-order value of a tensor (a Transpose from its NCHW version when
 * only that exists). */
static qcal_status tf_value(tctx *c, const char *name, int *out) {
  int v = qcal_graph_find(c->g, name);
  if (v >= 0) {
    *out = v;
    return QCAL_OK;
  }
  int n = find_nchw(c, name);
  if (n < 0) {
    char nb[160];
    return terr(c, QCAL_EFORMAT, "reads '%s', which no node, input or weight produces",
                qcal_escape_text(name, nb, sizeof nb));
  }
  QCAL_TRY(qcal_graph_add_value(c->g, name, QCAL_VAL_ACT, QCAL_DT_F32, 0, NULL, &v));
  int node;
  QCAL_TRY(emit(c, QCAL_GOP_Transpose, 1, &n, v, &node));
  const int64_t perm[4] = {0, 2, 3, 1};
  QCAL_TRY(node_attr_ints(c->g, node, "perm", 4, perm));
  *out = v;
  return QCAL_OK;
}

/* The NCHW value of a 4-D tensor (a Transpose from TF order when needed). */
static qcal_status nchw_value(tctx *c, const char *name, int *out) {
  int n = find_nchw(c, name);
  if (n >= 0) {
    *out = n;
    return QCAL_OK;
  }
  int v;
  QCAL_TRY(tf_value(c, name, &v));
  char b[1200];
  snprintf(b, sizeof b, "%.1000s#nchw", name);
  QCAL_TRY(qcal_graph_add_value(c->g, b, QCAL_VAL_ACT, QCAL_DT_F32, 0, NULL, &n));
  int node;
  QCAL_TRY(emit(c, QCAL_GOP_Transpose, 1, &v, n, &node));
  const int64_t perm[4] = {0, 3, 1, 2};
  QCAL_TRY(node_attr_ints(c->g, node, "perm", 4, perm));
  *out = n;
  return QCAL_OK;
}

/* Output value of the current node: TF order, or NCHW. */
static qcal_status out_value(tctx *c, const char *name, bool nchw, int *out) {
  char b[1200];
  snprintf(b, sizeof b, "%.1000s%s", name, nchw ? "#nchw" : "");
  return qcal_graph_add_value(c->g, b, QCAL_VAL_ACT, QCAL_DT_F32, 0, NULL, out);
}

static bool is_const(tctx *c, const char *name) {
  int v = qcal_graph_find(c->g, name);
  return v >= 0 && c->g->values[v].kind == QCAL_VAL_CONST;
}

/* true when the tensor exists only in NCHW (a convolution's output) */
static bool nchw_only(tctx *c, const char *name) {
  return find_nchw(c, name) >= 0 && qcal_graph_find(c->g, name) < 0;
}

/* A float constant of rank <= 4 brought to NCHW broadcasting against a 4-D
 * activation: right-aligned to NHWC, then transposed. */
static qcal_status const_to_nchw(tctx *c, int v, int *out) {
  const qcal_value *k = &c->g->values[v];
  if (k->ndim <= 1 && (k->ndim == 0 || k->shape[0] == 1)) {
    *out = v; /* a scalar broadcasts the same in both layouts */
    return QCAL_OK;
  }
  if (k->ndim > 4 || k->dtype != QCAL_DT_F32)
    return terr(c, QCAL_EUNSUPPORTED, "constant '%s' of rank %d cannot meet an NCHW activation",
                k->name, k->ndim);
  int64_t s4[4] = {1, 1, 1, 1};
  for (int d = 0; d < k->ndim; d++)
    s4[4 - k->ndim + d] = k->shape[d];
  int64_t ns[4] = {s4[0], s4[3], s4[1], s4[2]};
  size_t n = k->numel;
  float *tmp = malloc((n ? n : 1) * 4);
  if (!tmp)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  const float *src = k->data;
  for (int64_t a = 0; a < s4[0]; a++)
    for (int64_t h = 0; h < s4[1]; h++)
      for (int64_t w = 0; w < s4[2]; w++)
        for (int64_t ch = 0; ch < s4[3]; ch++)
          tmp[((a * s4[3] + ch) * s4[1] + h) * s4[2] + w] =
              src[((a * s4[1] + h) * s4[2] + w) * s4[3] + ch];
  char base[1100];
  snprintf(base, sizeof base, "%.1000s", k->name);
  qcal_status st = const_f32(c, base, 4, ns, tmp, n, out);
  free(tmp);
  return st;
}

/* ---- weights */
static qcal_status load_weights(tctx *c, json_object *root) {
  json_object *man = jget(root, "weightsManifest");
  if (!jlen(man))
    return terr(c, QCAL_EFORMAT, "no weightsManifest array");
  for (size_t gi = 0; gi < jlen(man); gi++) {
    json_object *grp = jat(man, gi), *ws = jget(grp, "weights"), *paths = jget(grp, "paths");
    if (!jlen(paths) && jlen(ws))
      return terr(c, QCAL_EFORMAT, "weightsManifest[%zu] names no files", gi);
    /* the group's shards, concatenated */
    size_t total = 0;
    unsigned char *buf = NULL;
    char files[256] = ""; /* the shards' names, for messages */
    for (size_t p = 0; p < jlen(paths); p++) {
      const char *rel = jstr(jat(paths, p));
      char nb[160];
      if (rel && strlen(files) < 200)
        snprintf(files + strlen(files), sizeof files - strlen(files), "%s%s", p ? ", " : "",
                 qcal_escape_text(rel, nb, sizeof nb));
      if (!rel || !*rel || rel[0] == '/' || strstr(rel, "..") || strlen(rel) > 1024) {
        free(buf);
        return terr(c, QCAL_EFORMAT, "weight file '%s' must be a plain path beside the model",
                    qcal_escape_text(rel ? rel : "", nb, sizeof nb));
      }
      char full[8192];
      snprintf(full, sizeof full, "%s/%s", c->dir, rel);
      unsigned char *part;
      size_t len;
      qcal_status st = qcal_read_file(full, &part, &len);
      if (st) {
        free(buf);
        return st;
      }
      unsigned char *nbuf = realloc(buf, total + len + 1);
      if (!nbuf) {
        free(buf), free(part);
        return qcal_error(QCAL_ENOMEM, "out of memory");
      }
      buf = nbuf;
      memcpy(buf + total, part, len);
      total += len;
      free(part);
    }
    size_t at = 0;
    for (size_t i = 0; i < jlen(ws); i++) {
      json_object *e = jat(ws, i), *shape = jget(e, "shape"), *q = jget(e, "quantization");
      const char *name = jstr(jget(e, "name")), *dtype = jstr(jget(e, "dtype"));
      char nb[160];
      if (!name || !dtype || !shape || !json_object_is_type(shape, json_type_array) ||
          jlen(shape) > QCAL_MAX_DIMS) {
        free(buf);
        return terr(c, QCAL_EFORMAT, "weight entry %zu lacks a name, dtype or shape", i);
      }
      int64_t dims[QCAL_MAX_DIMS];
      size_t numel = 1;
      for (size_t d = 0; d < jlen(shape); d++)
        if (!jint(jat(shape, d), &dims[d]) || dims[d] < 0 || dims[d] > (1 << 28) ||
            qcal_mul_size(numel, (size_t)dims[d], &numel) || numel > ((size_t)1 << 32)) {
          free(buf);
          return terr(c, QCAL_EFORMAT, "weight '%s' has a bad shape",
                      qcal_escape_text(name, nb, sizeof nb));
        }
      bool f32 = !strcmp(dtype, "float32"), i32 = !strcmp(dtype, "int32");
      const char *qd = q ? jstr(jget(q, "dtype")) : NULL;
      int qkind = !q                             ? 0
                  : qd && !strcmp(qd, "float16") ? 1
                  : qd && !strcmp(qd, "uint8")   ? 2
                  : qd && !strcmp(qd, "uint16")  ? 3
                                                 : -1;
      if ((!f32 && !i32) || qkind < 0 || (i32 && qkind)) {
        free(buf);
        return qcal_error(QCAL_EDTYPE, "%s: weight '%s' is %s%s%s, which is not supported", c->path,
                          qcal_escape_text(name, nb, sizeof nb), dtype, q ? " quantized as " : "",
                          q ? (qd ? qd : "?") : "");
      }
      size_t es = qkind == 1 || qkind == 3 ? 2 : qkind == 2 ? 1 : 4;
      if (numel * es > total - at || at > total) {
        free(buf);
        return terr(c, QCAL_EFORMAT,
                    "weight '%s' needs %zu bytes at offset %zu; the weight file%s (%s) hold%s "
                    "%zu",
                    qcal_escape_text(name, nb, sizeof nb), numel * es, at,
                    jlen(paths) > 1 ? "s" : "", files, jlen(paths) > 1 ? "" : "s", total);
      }
      double scale = 1, mn = 0;
      if (qkind >= 2) {
        json_object *js = jget(q, "scale"), *jm = jget(q, "min");
        if (!js || !jm) {
          free(buf);
          return terr(c, QCAL_EFORMAT, "quantized weight '%s' lacks scale or min",
                      qcal_escape_text(name, nb, sizeof nb));
        }
        scale = json_object_get_double(js);
        mn = json_object_get_double(jm);
      }
      void *d = qcal_alloc((numel ? numel : 1) * 4);
      if (!d) {
        free(buf);
        return qcal_error(QCAL_ENOMEM, "out of memory for weight '%s'", name);
      }
      const unsigned char *src = buf + at;
      for (size_t k = 0; k < numel; k++) {
        if (qkind == 0) {
          memcpy((char *)d + 4 * k, src + 4 * k, 4);
        } else if (qkind == 1) {
          ((float *)d)[k] = qcal_half_to_float((uint16_t)(src[2 * k] | src[2 * k + 1] << 8));
        } else {
          unsigned qv = qkind == 2 ? src[k] : (unsigned)(src[2 * k] | src[2 * k + 1] << 8);
          ((float *)d)[k] = (float)(qv * scale + mn);
        }
        /* +-Inf is legitimate (padding values, thresholds); NaN is not */
        if (f32 && isnan(((float *)d)[k])) {
          qcal_free(d);
          free(buf);
          return qcal_error(QCAL_EDATA, "%s: weight '%s' has a NaN at %zu", c->path,
                            qcal_escape_text(name, nb, sizeof nb), k);
        }
      }
      at += numel * es;
      qcal_status st = qcal_graph_add_const(c->g, name, f32 ? QCAL_DT_F32 : QCAL_DT_I32,
                                            (int)jlen(shape), dims, d, NULL);
      if (st) {
        free(buf);
        return st;
      }
    }
    free(buf);
    if (at != total)
      return terr(c, QCAL_EFORMAT,
                  "the weight files of group %zu hold %zu bytes; the manifest "
                  "describes %zu",
                  gi, total, at);
  }
  return QCAL_OK;
}

/* ---- op translations */
typedef struct tnode {
  json_object *j;
  const char *name, *op;
  int nin;
  const char *in[64];
  char inbuf[64][1100];
} tnode;

static qcal_status want_const(tctx *c, const tnode *t, int i, int *v) {
  *v = -1;
  if (i >= t->nin || !is_const(c, t->in[i]))
    return terr(c, QCAL_EUNSUPPORTED, "input %d must be a weight (constant)", i);
  *v = qcal_graph_find(c->g, t->in[i]);
  return QCAL_OK;
}

/* padding attribute -> auto_pad or explicit pads [t, l, b, r] (NCHW order) */
static qcal_status set_padding(tctx *c, json_object *j, int node) {
  char pad[32];
  attr_s(j, "padding", pad, sizeof pad);
  if (!strcmp(pad, "SAME"))
    return node_attr_str(c->g, node, "auto_pad", "SAME_UPPER");
  if (!strcmp(pad, "VALID"))
    return node_attr_str(c->g, node, "auto_pad", "VALID");
  if (!strcmp(pad, "EXPLICIT")) {
    int64_t e[8];
    if (attr_ints(j, "explicit_paddings", e, 8) != 8)
      return terr(c, QCAL_EFORMAT, "attribute 'explicit_paddings' needs 8 values");
    const int64_t p[4] = {e[2], e[4], e[3], e[5]};
    return node_attr_ints(c->g, node, "pads", 4, p);
  }
  return terr(c, QCAL_EUNSUPPORTED, "attribute 'padding' = '%s' is not supported", pad);
}

static qcal_status check_nhwc(tctx *c, json_object *j) {
  char df[16];
  attr_s(j, "data_format", df, sizeof df);
  if (*df && strcmp(df, "NHWC"))
    return terr(c, QCAL_EUNSUPPORTED, "attribute 'data_format' = '%s' (only NHWC)", df);
  return QCAL_OK;
}

/* [1, a, b, 1] list attribute -> a, b */
static qcal_status hw_pair(tctx *c, json_object *j, const char *k, int64_t def, int64_t *out) {
  int64_t v[4];
  int n = attr_ints(j, k, v, 4);
  if (n == 0) {
    out[0] = out[1] = def;
    return QCAL_OK;
  }
  if (n != 4 || v[0] != 1 || v[3] != 1)
    return terr(c, QCAL_EUNSUPPORTED, "attribute '%s' must be [1, h, w, 1]", k);
  out[0] = v[1], out[1] = v[2];
  return QCAL_OK;
}

/* Activation after a fused op: Relu, Relu6, Prelu (alpha input), LeakyRelu */
static qcal_status fused_act(tctx *c, const tnode *t, const char *act, int x, int alpha_in,
                             bool nchw, int out) {
  qcal_graph *g = c->g;
  int node;
  if (!strcmp(act, "Relu"))
    return emit(c, QCAL_GOP_Relu, 1, &x, out, NULL);
  if (!strcmp(act, "Relu6")) {
    const float lo = 0, hi = 6;
    int in[3] = {x, -1, -1};
    QCAL_TRY(const_f32(c, t->name, 0, NULL, &lo, 1, &in[1]));
    QCAL_TRY(const_f32(c, t->name, 0, NULL, &hi, 1, &in[2]));
    return emit(c, QCAL_GOP_Clip, 3, in, out, NULL);
  }
  if (!strcmp(act, "LeakyRelu")) {
    QCAL_TRY(emit(c, QCAL_GOP_LeakyRelu, 1, &x, out, &node));
    return node_attr_float(g, node, "alpha", (float)attr_f(t->j, "leakyrelu_alpha", 0.2));
  }
  if (!strcmp(act, "Prelu")) {
    int a;
    QCAL_TRY(want_const(c, t, alpha_in, &a));
    if (nchw)
      QCAL_TRY(const_to_nchw(c, a, &a));
    int in[2] = {x, a};
    return emit(c, QCAL_GOP_PRelu, 2, in, out, NULL);
  }
  return terr(c, QCAL_EUNSUPPORTED, "fused op '%s' is not supported", act);
}

/* fused_ops list: "BiasAdd" then at most one activation */
static qcal_status fused_ops(tctx *c, json_object *j, bool *bias, char *act, size_t cap) {
  json_object *l = jget(jget(attr(j, "fused_ops"), "list"), "s");
  *bias = false;
  act[0] = 0;
  for (size_t i = 0; i < jlen(l); i++) {
    char tmp[64];
    b64_decode(jstr(jat(l, i)), tmp, sizeof tmp);
    if (!strcmp(tmp, "BiasAdd") && i == 0)
      *bias = true;
    else if (i == (*bias ? 1u : 0u) && !*act && strcmp(tmp, "BiasAdd"))
      snprintf(act, cap, "%s", tmp);
    else
      return terr(c, QCAL_EUNSUPPORTED, "fused op '%s' is not supported", tmp);
  }
  return QCAL_OK;
}

/* A TF filter [kh, kw, a, b] as an OIHW constant [b, a, kh, kw]: HWIO for
 * Conv2D, and [kh, kw, out, in] -> ConvTranspose's [in, out, kh, kw] is the
 * same index map. Depthwise [kh, kw, channels a, multiplier b] becomes
 * [a * b, 1, kh, kw] in a groups (output p * b + q). */
static qcal_status filter_oihw(tctx *c, int w, bool depthwise, int *out, int64_t *group) {
  const qcal_value *f = &c->g->values[w];
  if (f->ndim != 4 || f->dtype != QCAL_DT_F32)
    return terr(c, QCAL_EFORMAT, "filter must be a 4-D float weight");
  int64_t kh = f->shape[0], kw = f->shape[1], a = f->shape[2], b = f->shape[3];
  *group = depthwise ? a : 1;
  size_t n = f->numel;
  float *d = malloc((n ? n : 1) * 4);
  if (!d)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  const float *s = f->data;
  for (int64_t y = 0; y < kh; y++)
    for (int64_t x = 0; x < kw; x++)
      for (int64_t p = 0; p < a; p++)
        for (int64_t q = 0; q < b; q++) {
          int64_t o = depthwise ? p * b + q : q * a + p; /* row of the OIHW weight */
          d[(o * kh + y) * kw + x] = s[((y * kw + x) * a + p) * b + q];
        }
  int64_t shape[4] = {depthwise ? a * b : b, depthwise ? 1 : a, kh, kw};
  char base[1100];
  snprintf(base, sizeof base, "%.1000s#oihw", f->name);
  qcal_status st = const_f32(c, base, 4, shape, d, n, out);
  free(d);
  return st;
}

static qcal_status op_conv(tctx *c, tnode *t, bool depthwise, bool fused) {
  QCAL_TRY(check_nhwc(c, t->j));
  if (t->nin < 2)
    return terr(c, QCAL_EFORMAT, "needs an input and a filter");
  int x, w, wo;
  int64_t group = 1, s[2], d[2];
  QCAL_TRY(nchw_value(c, t->in[0], &x));
  QCAL_TRY(want_const(c, t, 1, &w));
  QCAL_TRY(filter_oihw(c, w, depthwise, &wo, &group));
  QCAL_TRY(hw_pair(c, t->j, "strides", 1, s));
  QCAL_TRY(hw_pair(c, t->j, "dilations", 1, d));
  bool bias = false;
  char act[64] = "";
  if (fused)
    QCAL_TRY(fused_ops(c, t->j, &bias, act, sizeof act));
  int b = -1;
  if (bias)
    QCAL_TRY(want_const(c, t, 2, &b));
  int y;
  if (*act)
    QCAL_TRY(new_act(c, t->name, "#conv", &y));
  else
    QCAL_TRY(out_value(c, t->name, true, &y));
  int in[3] = {x, wo, b}, node;
  QCAL_TRY(emit(c, QCAL_GOP_Conv, bias ? 3 : 2, in, y, &node));
  const int64_t k2[2] = {c->g->values[wo].shape[2], c->g->values[wo].shape[3]};
  QCAL_TRY(node_attr_ints(c->g, node, "kernel_shape", 2, k2));
  QCAL_TRY(node_attr_ints(c->g, node, "strides", 2, s));
  QCAL_TRY(node_attr_ints(c->g, node, "dilations", 2, d));
  QCAL_TRY(node_attr_int(c->g, node, "group", group));
  QCAL_TRY(set_padding(c, t->j, node));
  if (!*act)
    return QCAL_OK;
  int out;
  QCAL_TRY(out_value(c, t->name, true, &out));
  return fused_act(c, t, act, y, 3, true, out);
}

static qcal_status op_deconv(tctx *c, tnode *t) {
  QCAL_TRY(check_nhwc(c, t->j));
  if (t->nin < 3)
    return terr(c, QCAL_EFORMAT, "needs output_shape, filter and input");
  int w, wo, x;
  int64_t shp[4] = {0, 0, 0, 0}, group = 1, s[2], d[2];
  /* output_shape: a constant, or computed by a shape sub-graph, in which
   * case it is Keras's default (SAME: in * stride; VALID: (in - 1) * stride
   * + kernel), which the auto_pad rules give */
  bool fixed = t->nin > 0 && is_const(c, t->in[0]);
  if (fixed) {
    qcal_value *v = &c->g->values[qcal_graph_find(c->g, t->in[0])];
    if (v->numel != 4 || (v->dtype != QCAL_DT_I32 && v->dtype != QCAL_DT_I64))
      return terr(c, QCAL_EFORMAT, "output_shape must be 4 integers");
    for (int k = 0; k < 4; k++)
      shp[k] = (int64_t)qcal_value_get(v, (size_t)k);
  }
  QCAL_TRY(want_const(c, t, 1, &w));
  QCAL_TRY(filter_oihw(c, w, false, &wo, &group));
  QCAL_TRY(nchw_value(c, t->in[2], &x));
  QCAL_TRY(hw_pair(c, t->j, "strides", 1, s));
  QCAL_TRY(hw_pair(c, t->j, "dilations", 1, d));
  int y, node;
  QCAL_TRY(out_value(c, t->name, true, &y));
  int in[2] = {x, wo};
  QCAL_TRY(emit(c, QCAL_GOP_ConvTranspose, 2, in, y, &node));
  const int64_t k2[2] = {c->g->values[wo].shape[2], c->g->values[wo].shape[3]};
  const int64_t out_hw[2] = {shp[1], shp[2]};
  QCAL_TRY(node_attr_ints(c->g, node, "kernel_shape", 2, k2));
  QCAL_TRY(node_attr_ints(c->g, node, "strides", 2, s));
  QCAL_TRY(node_attr_ints(c->g, node, "dilations", 2, d));
  if (fixed)
    QCAL_TRY(node_attr_ints(c->g, node, "output_shape", 2, out_hw));
  char pad[32];
  attr_s(t->j, "padding", pad, sizeof pad);
  if (!strcmp(pad, "SAME") || (!strcmp(pad, "VALID") && fixed))
    return node_attr_str(c->g, node, "auto_pad", "SAME_UPPER"); /* pads from output_shape */
  if (!strcmp(pad, "VALID"))
    return node_attr_str(c->g, node, "auto_pad", "VALID");
  return terr(c, QCAL_EUNSUPPORTED, "attribute 'padding' = '%s' is not supported", pad);
}

static qcal_status op_pool(tctx *c, tnode *t, bool max) {
  QCAL_TRY(check_nhwc(c, t->j));
  int x, y, node;
  int64_t k[2], s[2];
  QCAL_TRY(nchw_value(c, t->in[0], &x));
  QCAL_TRY(hw_pair(c, t->j, "ksize", 1, k));
  QCAL_TRY(hw_pair(c, t->j, "strides", 1, s));
  QCAL_TRY(out_value(c, t->name, true, &y));
  QCAL_TRY(emit(c, max ? QCAL_GOP_MaxPool : QCAL_GOP_AveragePool, 1, &x, y, &node));
  QCAL_TRY(node_attr_ints(c->g, node, "kernel_shape", 2, k));
  QCAL_TRY(node_attr_ints(c->g, node, "strides", 2, s));
  return set_padding(c, t->j, node);
}

/* Element-wise ops: in NCHW when an activation input exists only in NCHW */
static qcal_status op_eltwise(tctx *c, tnode *t, qcal_graph_op op, int arity) {
  if (t->nin < arity)
    return terr(c, QCAL_EFORMAT, "needs %d inputs", arity);
  bool nchw = false;
  for (int i = 0; i < arity; i++)
    nchw |= nchw_only(c, t->in[i]);
  int in[2];
  for (int i = 0; i < arity; i++) {
    if (is_const(c, t->in[i])) {
      in[i] = qcal_graph_find(c->g, t->in[i]);
      if (nchw)
        QCAL_TRY(const_to_nchw(c, in[i], &in[i]));
    } else if (nchw) {
      QCAL_TRY(nchw_value(c, t->in[i], &in[i]));
    } else {
      QCAL_TRY(tf_value(c, t->in[i], &in[i]));
    }
  }
  int y;
  QCAL_TRY(out_value(c, t->name, nchw, &y));
  return emit(c, op, arity, in, y, NULL);
}

/* ops written as two IR nodes over the same layout */
static qcal_status op_unary_chain(tctx *c, tnode *t, qcal_graph_op a, qcal_graph_op b) {
  bool nchw = nchw_only(c, t->in[0]);
  int x, m, y;
  QCAL_TRY(nchw ? nchw_value(c, t->in[0], &x) : tf_value(c, t->in[0], &x));
  QCAL_TRY(new_act(c, t->name, "#a", &m));
  QCAL_TRY(emit(c, a, 1, &x, m, NULL));
  QCAL_TRY(out_value(c, t->name, nchw, &y));
  return emit(c, b, 1, &m, y, NULL);
}

static qcal_status op_square(tctx *c, tnode *t) {
  bool nchw = nchw_only(c, t->in[0]);
  int x, y;
  QCAL_TRY(nchw ? nchw_value(c, t->in[0], &x) : tf_value(c, t->in[0], &x));
  QCAL_TRY(out_value(c, t->name, nchw, &y));
  int in[2] = {x, x};
  return emit(c, QCAL_GOP_Mul, 2, in, y, NULL);
}

static qcal_status op_addn(tctx *c, tnode *t) {
  if (t->nin < 1)
    return terr(c, QCAL_EFORMAT, "needs inputs");
  bool nchw = false;
  for (int i = 0; i < t->nin; i++)
    nchw |= nchw_only(c, t->in[i]);
  int acc;
  QCAL_TRY(nchw ? nchw_value(c, t->in[0], &acc) : tf_value(c, t->in[0], &acc));
  for (int i = 1; i < t->nin; i++) {
    int x, y;
    QCAL_TRY(nchw ? nchw_value(c, t->in[i], &x) : tf_value(c, t->in[i], &x));
    if (i == t->nin - 1)
      QCAL_TRY(out_value(c, t->name, nchw, &y));
    else
      QCAL_TRY(new_act(c, t->name, "#sum", &y));
    int in[2] = {acc, x};
    QCAL_TRY(emit(c, QCAL_GOP_Add, 2, in, y, NULL));
    acc = y;
  }
  if (t->nin == 1) {
    int y;
    QCAL_TRY(out_value(c, t->name, nchw, &y));
    return emit(c, QCAL_GOP_Identity, 1, &acc, y, NULL);
  }
  return QCAL_OK;
}

static qcal_status op_matmul(tctx *c, tnode *t, bool fused) {
  if (t->nin < 2)
    return terr(c, QCAL_EFORMAT, "needs two inputs");
  int a, b;
  QCAL_TRY(tf_value(c, t->in[0], &a));
  QCAL_TRY(tf_value(c, t->in[1], &b));
  bool bias = false;
  char act[64] = "";
  if (fused)
    QCAL_TRY(fused_ops(c, t->j, &bias, act, sizeof act));
  int bi = -1;
  if (bias)
    QCAL_TRY(want_const(c, t, 2, &bi));
  int y, node;
  if (*act)
    QCAL_TRY(new_act(c, t->name, "#mm", &y));
  else
    QCAL_TRY(out_value(c, t->name, false, &y));
  int in[3] = {a, b, bi};
  QCAL_TRY(emit(c, QCAL_GOP_Gemm, bias ? 3 : 2, in, y, &node));
  QCAL_TRY(node_attr_int(c->g, node, "transA", attr_b(t->j, "transpose_a")));
  QCAL_TRY(node_attr_int(c->g, node, "transB", attr_b(t->j, "transpose_b")));
  if (!*act)
    return QCAL_OK;
  int out;
  QCAL_TRY(out_value(c, t->name, false, &out));
  return fused_act(c, t, act, y, 3, false, out);
}

/* int constant input as int64 values */
static qcal_status const_ints(tctx *c, tnode *t, int i, int64_t *v, int max, int *n) {
  int k;
  QCAL_TRY(want_const(c, t, i, &k));
  const qcal_value *q = &c->g->values[k];
  if ((q->dtype != QCAL_DT_I32 && q->dtype != QCAL_DT_I64) || q->numel > (size_t)max)
    return terr(c, QCAL_EFORMAT, "input %d must hold at most %d integers", i, max);
  for (size_t e = 0; e < q->numel; e++)
    v[e] = (int64_t)qcal_value_get(q, e);
  *n = (int)q->numel;
  return QCAL_OK;
}

static const int nhwc_to_nchw_axis[4] = {0, 2, 3, 1};

static qcal_status op_reduce(tctx *c, tnode *t, qcal_graph_op op) {
  int64_t ax[QCAL_MAX_DIMS];
  int na;
  QCAL_TRY(const_ints(c, t, 1, ax, QCAL_MAX_DIMS, &na));
  bool keep = attr_b(t->j, "keep_dims");
  bool nchw = nchw_only(c, t->in[0]);
  if (nchw) {
    bool red[4] = {0};
    for (int k = 0; k < na; k++) {
      int64_t a = ax[k] < 0 ? ax[k] + 4 : ax[k];
      if (a < 0 || a > 3)
        return terr(c, QCAL_EFORMAT, "axis %lld out of range", (long long)ax[k]);
      red[a] = true;
    }
    /* without keep_dims, the NCHW result is in TF order only when the
     * remaining dims keep their relative order */
    bool ok = keep || red[3] || (red[1] && red[2]);
    if (!ok)
      nchw = false;
    else
      for (int k = 0; k < na; k++)
        ax[k] = nhwc_to_nchw_axis[ax[k] < 0 ? ax[k] + 4 : ax[k]];
  }
  int x, y, node;
  QCAL_TRY(nchw ? nchw_value(c, t->in[0], &x) : tf_value(c, t->in[0], &x));
  QCAL_TRY(out_value(c, t->name, nchw && keep, &y));
  if (op == QCAL_GOP_ReduceSum) {
    int axes;
    QCAL_TRY(const_i64(c, t->name, na, ax, &axes));
    int in[2] = {x, axes};
    QCAL_TRY(emit(c, op, 2, in, y, &node));
  } else {
    QCAL_TRY(emit(c, op, 1, &x, y, &node));
    QCAL_TRY(node_attr_ints(c->g, node, "axes", na, ax));
  }
  return node_attr_int(c->g, node, "keepdims", keep);
}

static qcal_status op_pad(tctx *c, tnode *t, bool v2) {
  int64_t p[2 * QCAL_MAX_DIMS];
  int n;
  QCAL_TRY(const_ints(c, t, 1, p, 2 * QCAL_MAX_DIMS, &n));
  int r = n / 2;
  bool nchw = nchw_only(c, t->in[0]) && r == 4;
  int64_t pads[2 * QCAL_MAX_DIMS];
  for (int d = 0; d < r; d++) {
    int dd = nchw ? nhwc_to_nchw_axis[d] : d;
    pads[dd] = p[2 * d];
    pads[dd + r] = p[2 * d + 1];
  }
  int x, y, pv, node;
  QCAL_TRY(nchw ? nchw_value(c, t->in[0], &x) : tf_value(c, t->in[0], &x));
  QCAL_TRY(const_i64(c, t->name, 2 * r, pads, &pv));
  int in[3] = {x, pv, -1};
  if (v2 && t->nin > 2) {
    QCAL_TRY(want_const(c, t, 2, &in[2]));
  }
  QCAL_TRY(out_value(c, t->name, nchw, &y));
  QCAL_TRY(emit(c, QCAL_GOP_Pad, in[2] >= 0 ? 3 : 2, in, y, &node));
  return node_attr_str(c->g, node, "mode", "constant");
}

static qcal_status op_concat(tctx *c, tnode *t) {
  if (t->nin < 2)
    return terr(c, QCAL_EFORMAT, "needs inputs and an axis");
  int64_t ax;
  int n;
  QCAL_TRY(const_ints(c, t, t->nin - 1, &ax, 1, &n));
  int k = t->nin - 1;
  bool nchw = false;
  for (int i = 0; i < k; i++)
    nchw |= nchw_only(c, t->in[i]);
  if (nchw && ax >= -4 && ax <= 3)
    ax = nhwc_to_nchw_axis[ax < 0 ? ax + 4 : ax];
  else
    nchw = false;
  int in[64];
  for (int i = 0; i < k; i++) {
    if (is_const(c, t->in[i]) && nchw) {
      in[i] = qcal_graph_find(c->g, t->in[i]);
      QCAL_TRY(const_to_nchw(c, in[i], &in[i]));
    } else {
      QCAL_TRY(nchw ? nchw_value(c, t->in[i], &in[i]) : tf_value(c, t->in[i], &in[i]));
    }
  }
  int y, node;
  QCAL_TRY(out_value(c, t->name, nchw, &y));
  QCAL_TRY(emit(c, QCAL_GOP_Concat, k, in, y, &node));
  return node_attr_int(c->g, node, "axis", ax);
}

static qcal_status op_reshape_like(tctx *c, tnode *t, qcal_graph_op op, int64_t *axes, int na) {
  int x, y, ax;
  QCAL_TRY(tf_value(c, t->in[0], &x));
  QCAL_TRY(out_value(c, t->name, false, &y));
  if (op == QCAL_GOP_Reshape) {
    int s;
    QCAL_TRY(tf_value(c, t->in[1], &s));
    int in[2] = {x, s};
    return emit(c, op, 2, in, y, NULL);
  }
  QCAL_TRY(const_i64(c, t->name, na, axes, &ax));
  int in[2] = {x, ax};
  return emit(c, op, na || op == QCAL_GOP_Unsqueeze ? 2 : 1, in, y, NULL);
}

static qcal_status op_strided_slice(tctx *c, tnode *t) {
  int64_t b[QCAL_MAX_DIMS], e[QCAL_MAX_DIMS], s[QCAL_MAX_DIMS];
  int nb, ne, ns;
  QCAL_TRY(const_ints(c, t, 1, b, QCAL_MAX_DIMS, &nb));
  QCAL_TRY(const_ints(c, t, 2, e, QCAL_MAX_DIMS, &ne));
  QCAL_TRY(const_ints(c, t, 3, s, QCAL_MAX_DIMS, &ns));
  if (nb != ne || nb != ns)
    return terr(c, QCAL_EFORMAT, "begin, end and strides differ in length");
  int64_t bm = attr_i(t->j, "begin_mask", 0), em = attr_i(t->j, "end_mask", 0);
  int64_t sm = attr_i(t->j, "shrink_axis_mask", 0);
  if (attr_i(t->j, "ellipsis_mask", 0) || attr_i(t->j, "new_axis_mask", 0))
    return terr(c, QCAL_EUNSUPPORTED, "ellipsis_mask and new_axis_mask are not supported");
  int64_t axes[QCAL_MAX_DIMS], shrink[QCAL_MAX_DIMS];
  int nsh = 0;
  for (int d = 0; d < nb; d++) {
    axes[d] = d;
    if (s[d] == 0)
      return terr(c, QCAL_EFORMAT, "stride 0");
    if (bm >> d & 1)
      b[d] = s[d] > 0 ? 0 : INT64_MAX / 2;
    if (em >> d & 1)
      e[d] = s[d] > 0 ? INT64_MAX / 2 : INT64_MIN / 2;
    if (sm >> d & 1) {
      e[d] = b[d] == -1 ? INT64_MAX / 2 : b[d] + 1;
      s[d] = 1;
      shrink[nsh++] = d;
    }
  }
  int x, in[5], sl, y;
  QCAL_TRY(tf_value(c, t->in[0], &x));
  in[0] = x;
  QCAL_TRY(const_i64(c, t->name, nb, b, &in[1]));
  QCAL_TRY(const_i64(c, t->name, nb, e, &in[2]));
  QCAL_TRY(const_i64(c, t->name, nb, axes, &in[3]));
  QCAL_TRY(const_i64(c, t->name, nb, s, &in[4]));
  if (!nsh) {
    QCAL_TRY(out_value(c, t->name, false, &y));
    return emit(c, QCAL_GOP_Slice, 5, in, y, NULL);
  }
  QCAL_TRY(new_act(c, t->name, "#slice", &sl));
  QCAL_TRY(emit(c, QCAL_GOP_Slice, 5, in, sl, NULL));
  int ax, in2[2];
  QCAL_TRY(const_i64(c, t->name, nsh, shrink, &ax));
  QCAL_TRY(out_value(c, t->name, false, &y));
  in2[0] = sl, in2[1] = ax;
  return emit(c, QCAL_GOP_Squeeze, 2, in2, y, NULL);
}

static qcal_status op_pack(tctx *c, tnode *t) {
  int64_t axis = attr_i(t->j, "axis", 0);
  int parts[64], ax;
  QCAL_TRY(const_i64(c, t->name, 1, &axis, &ax));
  for (int i = 0; i < t->nin; i++) {
    int x;
    QCAL_TRY(tf_value(c, t->in[i], &x));
    QCAL_TRY(new_act(c, t->name, "#u", &parts[i]));
    int in[2] = {x, ax};
    QCAL_TRY(emit(c, QCAL_GOP_Unsqueeze, 2, in, parts[i], NULL));
  }
  int y, node;
  QCAL_TRY(out_value(c, t->name, false, &y));
  QCAL_TRY(emit(c, QCAL_GOP_Concat, t->nin, parts, y, &node));
  return node_attr_int(c->g, node, "axis", axis);
}

static qcal_status op_shape(tctx *c, tnode *t) {
  int x, s, y, node;
  QCAL_TRY(tf_value(c, t->in[0], &x));
  QCAL_TRY(new_act(c, t->name, "#shape", &s));
  QCAL_TRY(emit(c, QCAL_GOP_Shape, 1, &x, s, NULL));
  QCAL_TRY(out_value(c, t->name, false, &y));
  QCAL_TRY(emit(c, QCAL_GOP_Cast, 1, &s, y, &node));
  /* TF's out_type: int32 unless int64 was asked for */
  const char *ty = jstr(jget(attr(t->j, "out_type"), "type"));
  return node_attr_int(c->g, node, "to", ty && !strcmp(ty, "DT_INT64") ? 7 : 6);
}

static qcal_status op_cast(tctx *c, tnode *t) {
  const char *ty = jstr(jget(attr(t->j, "DstT"), "type"));
  int to = !ty                       ? -1
           : !strcmp(ty, "DT_FLOAT") ? 1
           : !strcmp(ty, "DT_INT32") ? 6
           : !strcmp(ty, "DT_INT64") ? 7
           : !strcmp(ty, "DT_BOOL")  ? 9
                                     : -1;
  if (to < 0)
    return terr(c, QCAL_EUNSUPPORTED, "cast to %s is not supported", ty ? ty : "?");
  int x, y, node;
  QCAL_TRY(tf_value(c, t->in[0], &x));
  QCAL_TRY(out_value(c, t->name, false, &y));
  QCAL_TRY(emit(c, QCAL_GOP_Cast, 1, &x, y, &node));
  return node_attr_int(c->g, node, "to", to);
}

static qcal_status op_resize(tctx *c, tnode *t, bool bilinear) {
  int64_t hw[2];
  int n;
  QCAL_TRY(const_ints(c, t, 1, hw, 2, &n));
  if (n != 2)
    return terr(c, QCAL_EFORMAT, "size must hold 2 values");
  int x;
  QCAL_TRY(nchw_value(c, t->in[0], &x));
  /* sizes = Concat(Shape(x)[0:2], [h, w]): folded at prepare */
  int sh, nc, hwv, sizes, y, node;
  QCAL_TRY(new_act(c, t->name, "#shape", &sh));
  QCAL_TRY(emit(c, QCAL_GOP_Shape, 1, &x, sh, NULL));
  const int64_t z = 0, two = 2;
  int in[3] = {sh, -1, -1};
  QCAL_TRY(const_i64(c, t->name, 1, &z, &in[1]));
  QCAL_TRY(const_i64(c, t->name, 1, &two, &in[2]));
  QCAL_TRY(new_act(c, t->name, "#nc", &nc));
  QCAL_TRY(emit(c, QCAL_GOP_Slice, 3, in, nc, NULL));
  QCAL_TRY(const_i64(c, t->name, 2, hw, &hwv));
  QCAL_TRY(new_act(c, t->name, "#sizes", &sizes));
  int cat[2] = {nc, hwv};
  QCAL_TRY(emit(c, QCAL_GOP_Concat, 2, cat, sizes, &node));
  QCAL_TRY(node_attr_int(c->g, node, "axis", 0));
  QCAL_TRY(out_value(c, t->name, true, &y));
  int rin[4] = {x, -1, -1, sizes};
  QCAL_TRY(emit(c, QCAL_GOP_Resize, 4, rin, y, &node));
  bool ac = attr_b(t->j, "align_corners"), hp = attr_b(t->j, "half_pixel_centers");
  QCAL_TRY(node_attr_str(c->g, node, "mode", bilinear ? "linear" : "nearest"));
  QCAL_TRY(node_attr_str(c->g, node, "coordinate_transformation_mode",
                         ac   ? "align_corners"
                         : hp ? (bilinear ? "half_pixel" : "tf_half_pixel_for_nn")
                              : "asymmetric"));
  if (!bilinear)
    QCAL_TRY(node_attr_str(c->g, node, "nearest_mode", ac ? "round_prefer_ceil" : "floor"));
  return QCAL_OK;
}

static qcal_status op_depth_to_space(tctx *c, tnode *t) {
  QCAL_TRY(check_nhwc(c, t->j));
  int x, y, node;
  QCAL_TRY(nchw_value(c, t->in[0], &x));
  QCAL_TRY(out_value(c, t->name, true, &y));
  QCAL_TRY(emit(c, QCAL_GOP_DepthToSpace, 1, &x, y, &node));
  QCAL_TRY(node_attr_int(c->g, node, "blocksize", attr_i(t->j, "block_size", 0)));
  return node_attr_str(c->g, node, "mode", "DCR");
}

static qcal_status op_identity(tctx *c, tnode *t) {
  bool nchw = nchw_only(c, t->in[0]);
  int x, y;
  QCAL_TRY(nchw ? nchw_value(c, t->in[0], &x) : tf_value(c, t->in[0], &x));
  QCAL_TRY(out_value(c, t->name, nchw, &y));
  return emit(c, QCAL_GOP_Identity, 1, &x, y, NULL);
}

static qcal_status op_softmax(tctx *c, tnode *t) {
  int x, y, node;
  QCAL_TRY(tf_value(c, t->in[0], &x));
  QCAL_TRY(out_value(c, t->name, false, &y));
  QCAL_TRY(emit(c, QCAL_GOP_Softmax, 1, &x, y, &node));
  return node_attr_int(c->g, node, "axis", -1);
}

static qcal_status translate(tctx *c, tnode *t) {
  const char *op = t->op;
  /* every op reads at least its first input; Reshape its shape too */
  if (t->nin < 1 || (!strcmp(op, "Reshape") && t->nin < 2))
    return terr(c, QCAL_EFORMAT, "has %d inputs, too few for the op", t->nin);
#define IS(s) (!strcmp(op, s))
  if (IS("Conv2D") || IS("_FusedConv2D"))
    return op_conv(c, t, false, IS("_FusedConv2D"));
  if (IS("DepthwiseConv2dNative") || IS("FusedDepthwiseConv2dNative"))
    return op_conv(c, t, true, IS("FusedDepthwiseConv2dNative"));
  if (IS("Conv2DBackpropInput"))
    return op_deconv(c, t);
  if (IS("MaxPool") || IS("AvgPool"))
    return op_pool(c, t, IS("MaxPool"));
  if (IS("MatMul") || IS("_FusedMatMul"))
    return op_matmul(c, t, IS("_FusedMatMul"));
  if (IS("Add") || IS("AddV2") || IS("BiasAdd"))
    return op_eltwise(c, t, QCAL_GOP_Add, 2);
  if (IS("Sub"))
    return op_eltwise(c, t, QCAL_GOP_Sub, 2);
  if (IS("Mul"))
    return op_eltwise(c, t, QCAL_GOP_Mul, 2);
  if (IS("RealDiv"))
    return op_eltwise(c, t, QCAL_GOP_Div, 2);
  if (IS("Maximum"))
    return op_eltwise(c, t, QCAL_GOP_Max, 2);
  if (IS("Minimum"))
    return op_eltwise(c, t, QCAL_GOP_Min, 2);
  if (IS("Prelu"))
    return op_eltwise(c, t, QCAL_GOP_PRelu, 2);
  if (IS("AddN"))
    return op_addn(c, t);
  if (IS("Relu"))
    return op_eltwise(c, t, QCAL_GOP_Relu, 1);
  if (IS("Sigmoid"))
    return op_eltwise(c, t, QCAL_GOP_Sigmoid, 1);
  if (IS("Tanh"))
    return op_eltwise(c, t, QCAL_GOP_Tanh, 1);
  if (IS("Abs"))
    return op_eltwise(c, t, QCAL_GOP_Abs, 1);
  if (IS("Exp"))
    return op_eltwise(c, t, QCAL_GOP_Exp, 1);
  if (IS("Neg"))
    return op_eltwise(c, t, QCAL_GOP_Neg, 1);
  if (IS("Sqrt"))
    return op_eltwise(c, t, QCAL_GOP_Sqrt, 1);
  if (IS("Reciprocal"))
    return op_eltwise(c, t, QCAL_GOP_Reciprocal, 1);
  if (IS("Rsqrt"))
    return op_unary_chain(c, t, QCAL_GOP_Sqrt, QCAL_GOP_Reciprocal);
  if (IS("Square"))
    return op_square(c, t);
  if (IS("Relu6") || IS("LeakyRelu")) {
    bool nchw = nchw_only(c, t->in[0]);
    int x, y;
    QCAL_TRY(nchw ? nchw_value(c, t->in[0], &x) : tf_value(c, t->in[0], &x));
    QCAL_TRY(out_value(c, t->name, nchw, &y));
    if (IS("LeakyRelu")) {
      int node;
      QCAL_TRY(emit(c, QCAL_GOP_LeakyRelu, 1, &x, y, &node));
      return node_attr_float(c->g, node, "alpha", (float)attr_f(t->j, "alpha", 0.2));
    }
    return fused_act(c, t, "Relu6", x, -1, nchw, y);
  }
  if (IS("Softmax"))
    return op_softmax(c, t);
  if (IS("Mean"))
    return op_reduce(c, t, QCAL_GOP_ReduceMean);
  if (IS("Max"))
    return op_reduce(c, t, QCAL_GOP_ReduceMax);
  if (IS("Sum"))
    return op_reduce(c, t, QCAL_GOP_ReduceSum);
  if (IS("Pad") || IS("PadV2"))
    return op_pad(c, t, IS("PadV2"));
  if (IS("ConcatV2"))
    return op_concat(c, t);
  if (IS("Reshape"))
    return op_reshape_like(c, t, QCAL_GOP_Reshape, NULL, 0);
  if (IS("Squeeze")) {
    int64_t ax[QCAL_MAX_DIMS];
    int na = attr_ints(t->j, "squeeze_dims", ax, QCAL_MAX_DIMS);
    if (na < 0)
      return terr(c, QCAL_EFORMAT, "attribute 'squeeze_dims' is malformed");
    return op_reshape_like(c, t, QCAL_GOP_Squeeze, ax, na);
  }
  if (IS("ExpandDims")) {
    int64_t ax;
    int n;
    QCAL_TRY(const_ints(c, t, 1, &ax, 1, &n));
    return op_reshape_like(c, t, QCAL_GOP_Unsqueeze, &ax, 1);
  }
  if (IS("StridedSlice"))
    return op_strided_slice(c, t);
  if (IS("Pack"))
    return op_pack(c, t);
  if (IS("Shape"))
    return op_shape(c, t);
  if (IS("Cast"))
    return op_cast(c, t);
  if (IS("ResizeBilinear") || IS("ResizeNearestNeighbor"))
    return op_resize(c, t, IS("ResizeBilinear"));
  if (IS("DepthToSpace"))
    return op_depth_to_space(c, t);
  if (IS("Identity") || IS("StopGradient"))
    return op_identity(c, t);
#undef IS
  return terr(c, QCAL_EUNSUPPORTED, "op '%s' is not supported", op);
}

static qcal_status build(tctx *c, json_object *root) {
  json_object *nodes = jget(jget(root, "modelTopology"), "node");
  if (!jlen(nodes))
    return terr(c, QCAL_EFORMAT, "no modelTopology.node list");
  if (jlen(nodes) > (1u << 20))
    return terr(c, QCAL_EFORMAT, "too many nodes");
  QCAL_TRY(load_weights(c, root));
  c->g->opset = 13;
  size_t nn = jlen(nodes);
  tnode *t = calloc(1, sizeof *t);
  char *used = calloc(nn + 1, 1);
  bool *done = calloc(nn + 1, sizeof *done);
  qcal_status st = t && used && done ? QCAL_OK : qcal_error(QCAL_ENOMEM, "out of memory");
  /* placeholders first; then nodes whose inputs exist, in passes (the file
   * need not be sorted); a pass that translates nothing means a cycle or a
   * dangling input */
  for (size_t i = 0; i < nn && !st; i++) {
    json_object *j = jat(nodes, i);
    const char *op = jstr(jget(j, "op")), *name = jstr(jget(j, "name"));
    if (!op || !name) {
      st = terr(c, QCAL_EFORMAT, "node %zu lacks a name or op", i);
      break;
    }
    if (!strcmp(op, "Const")) {
      done[i] = true;
      if (qcal_graph_find(c->g, name) < 0) {
        char nb[160];
        st = qcal_error(QCAL_EFORMAT, "%s: constant '%s' has no weight in the manifest", c->path,
                        qcal_escape_text(name, nb, sizeof nb));
      }
    } else if (!strcmp(op, "NoOp")) {
      done[i] = true;
    } else if (!strcmp(op, "Placeholder")) {
      done[i] = true;
      const char *ty = jstr(jget(attr(j, "dtype"), "type"));
      json_object *dl = jget(jget(attr(j, "shape"), "shape"), "dim");
      int64_t shape[QCAL_MAX_DIMS];
      int nd = (int)jlen(dl);
      if (!ty || strcmp(ty, "DT_FLOAT") || nd > QCAL_MAX_DIMS || !dl) {
        char nb[160];
        st = qcal_error(QCAL_EUNSUPPORTED,
                        "%s: input '%s' is %s%s; only float32 inputs of declared rank <= %d are "
                        "supported",
                        c->path, qcal_escape_text(name, nb, sizeof nb), ty ? ty : "untyped",
                        dl ? "" : " without a shape", QCAL_MAX_DIMS);
        break;
      }
      for (int d = 0; d < nd; d++) {
        int64_t v;
        shape[d] = jint(jget(jat(dl, (size_t)d), "size"), &v) && v > 0 ? v : -1;
      }
      int idx;
      if (!(st = qcal_graph_add_value(c->g, name, QCAL_VAL_INPUT, QCAL_DT_F32, nd, shape, &idx)))
        st = qcal_graph_add_input(c->g, idx);
    }
  }
  /* node name -> index (json-c's hash table), to mark the nodes read */
  json_object *byname = st ? NULL : json_object_new_object();
  if (!st && !byname)
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  for (size_t i = 0; i < nn && !st; i++)
    json_object_object_add(byname, jstr(jget(jat(nodes, i), "name")),
                           json_object_new_int64((int64_t)i));
  for (bool progress = true; progress && !st;) {
    progress = false;
    for (size_t i = 0; i < nn && !st; i++) {
      if (done[i])
        continue;
      json_object *j = jat(nodes, i), *ins = jget(j, "input");
      t->j = j;
      t->name = jstr(jget(j, "name"));
      t->op = jstr(jget(j, "op"));
      t->nin = 0;
      bool ready = true;
      for (size_t k = 0; k < jlen(ins) && t->nin < 64; k++) {
        const char *r = tf_ref(jstr(jat(ins, k)), t->inbuf[t->nin], sizeof t->inbuf[0]);
        if (!r)
          continue;
        if (strchr(r, ':')) {
          c->node = t->name, c->nodeop = t->op;
          st = terr(c, QCAL_EUNSUPPORTED, "reads output '%s' (only first outputs)", r);
          break;
        }
        if (qcal_graph_find(c->g, r) < 0 && find_nchw(c, r) < 0)
          ready = false;
        t->in[t->nin++] = r;
      }
      if (st)
        break;
      if (jlen(ins) > 64) {
        c->node = t->name, c->nodeop = t->op;
        st = terr(c, QCAL_EUNSUPPORTED, "more than 64 inputs");
        break;
      }
      if (!ready)
        continue;
      c->node = t->name, c->nodeop = t->op;
      st = translate(c, t);
      c->node = NULL;
      done[i] = true;
      progress = true;
      /* inputs are consumed: outputs are the nodes nobody reads */
      for (int k = 0; k < t->nin; k++) {
        json_object *m = jget(byname, t->in[k]);
        if (m)
          used[json_object_get_int64(m)] = 1;
      }
    }
  }
  for (size_t i = 0; i < nn && !st; i++)
    if (!done[i]) {
      json_object *j = jat(nodes, i);
      c->node = jstr(jget(j, "name")), c->nodeop = jstr(jget(j, "op"));
      st = terr(c, QCAL_EFORMAT, "its inputs are never produced (a cycle or a dangling input)");
    }
  /* outputs: the signature's when it has them (TF.js does the same), else
   * the nodes no other node reads; in TF order */
  json_object *sig = jget(jget(root, "signature"), "outputs");
  if (!st && sig && json_object_is_type(sig, json_type_object) &&
      json_object_object_length(sig) > 0) {
    json_object_object_foreach(sig, key, val) {
      (void)key;
      char rb[1100];
      const char *r = tf_ref(jstr(jget(val, "name")), rb, sizeof rb);
      int v;
      if (!r || strchr(r, ':')) {
        char nb[160];
        st = qcal_error(QCAL_EUNSUPPORTED, "%s: signature output '%s' is not a first output",
                        c->path, qcal_escape_text(r ? r : "", nb, sizeof nb));
        break;
      }
      if ((st = tf_value(c, r, &v)) || (st = qcal_graph_add_output(c->g, v)))
        break;
    }
    for (size_t i = 0; i < nn; i++)
      used[i] = 1;
  }
  for (size_t i = 0; i < nn && !st; i++) {
    json_object *j = jat(nodes, i);
    const char *op = jstr(jget(j, "op")), *name = jstr(jget(j, "name"));
    if (used[i] || !strcmp(op, "Const") || !strcmp(op, "NoOp") || !strcmp(op, "Placeholder"))
      continue;
    int v;
    c->node = name, c->nodeop = op;
    if ((st = tf_value(c, name, &v)) || (st = qcal_graph_add_output(c->g, v)))
      break;
  }
  c->node = NULL;
  if (!st && !c->g->noutputs)
    st = terr(c, QCAL_EFORMAT, "the graph has no outputs");
  json_object_put(byname);
  free(t);
  free(used);
  free(done);
  return st;
}

qcal_status qcal_tfjs_graph_load(const char *path, qcal_graph **out) {
  *out = NULL;
  unsigned char *buf;
  size_t len;
  QCAL_TRY(qcal_read_file(path, &buf, &len));
  if (len > ((size_t)256 << 20)) {
    free(buf);
    return qcal_error(QCAL_EFORMAT, "%s: model.json of %zu bytes (at most 256 MiB)", path, len);
  }
  json_tokener *tok = json_tokener_new_ex(64);
  json_object *root = tok ? json_tokener_parse_ex(tok, (const char *)buf, (int)len) : NULL;
  enum json_tokener_error je = tok ? json_tokener_get_error(tok) : json_tokener_error_depth;
  if (tok)
    json_tokener_free(tok);
  free(buf);
  if (!root || je != json_tokener_success) {
    if (root)
      json_object_put(root);
    return qcal_error(QCAL_EFORMAT, "%s: not JSON (%s)", path, json_tokener_error_desc(je));
  }
  tctx c = {.path = path};
  qcal_status st = qcal_parent_dir(path, c.dir, sizeof c.dir);
  if (!st)
    st = qcal_graph_new(path, &c.g);
  if (!st)
    c.g->name_mark = '#'; /* TF node names cannot hold it: T#nchw, W#oihw, T#c0 */
  if (!st)
    st = build(&c, root);
  json_object_put(root);
  if (st) {
    qcal_graph_free(c.g);
    return st;
  }
  *out = c.g;
  return QCAL_OK;
}
