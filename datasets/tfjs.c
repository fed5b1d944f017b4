/* TF.js graph-model reader: model.json (topology + weights manifest, parsed
 * with json-c) and the float32 weights it names. Supports the ops PoseNet's
 * MobileNetV1 uses: _FusedConv2D and FusedDepthwiseConv2dNative with fused
 * BiasAdd and optional Relu6, NHWC, SAME/VALID padding, no dilation. */
#include <errno.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/json_get.h"
#include "qcal/model.h"

/* base64 of the attribute strings we accept (TF.js stores them encoded) */
#define B64_SAME "U0FNRQ=="
#define B64_VALID "VkFMSUQ="
#define B64_BIASADD "Qmlhc0FkZA=="
#define B64_RELU6 "UmVsdTY="
#define B64_NHWC "TkhXQw=="

typedef struct {
  const char *name;
  int ndim;
  int64_t shape[QCAL_MAX_DIMS];
  size_t offset, numel; /* in floats */
} weight_entry;

typedef struct {
  const char *path;
  const char *input_name; /* the Placeholder */
  weight_entry *w;
  size_t nw;
  float *data;
} ctx;

#define BAD(...) qcal_error(QCAL_EFORMAT, __VA_ARGS__)

static int str_is(json_object *s, const char *want) {
  const char *v = jstr(s);
  return v && !strcmp(v, want);
}

static const weight_entry *find_weight(const ctx *c, const char *name) {
  for (size_t i = 0; i < c->nw; i++)
    if (!strcmp(c->w[i].name, name))
      return &c->w[i];
  return NULL;
}

static qcal_status read_manifest(ctx *c, json_object *root, const char *dir) {
  json_object *man = jget(root, "weightsManifest");
  if (!jlen(man))
    return BAD("%s: no weightsManifest array", c->path);
  size_t total = 0, cap = 0;
  for (size_t g = 0; g < jlen(man); g++) {
    json_object *ws = jget(jat(man, g), "weights");
    if (!ws || !json_object_is_type(ws, json_type_array))
      return BAD("%s: weightsManifest[%zu] has no weights list", c->path, g);
    for (size_t i = 0; i < jlen(ws); i++) {
      json_object *e = jat(ws, i), *shape = jget(e, "shape");
      const char *name = jstr(jget(e, "name"));
      const char *dtype = jstr(jget(e, "dtype"));
      if (!name || !shape || !json_object_is_type(shape, json_type_array))
        return BAD("%s: weight entry %zu lacks name or shape", c->path, i);
      if (!dtype || strcmp(dtype, "float32") || jget(e, "quantization"))
        return qcal_error(QCAL_EDTYPE, "%s: weight '%s' is %s%s, only float32 is supported",
                          c->path, name, dtype ? dtype : "of no dtype",
                          jget(e, "quantization") ? " (quantized)" : "");
      if (c->nw == cap) {
        cap = cap ? 2 * cap : 64;
        weight_entry *nw = realloc(c->w, cap * sizeof *nw);
        if (!nw)
          return qcal_error(QCAL_ENOMEM, "%s: out of memory", c->path);
        c->w = nw;
      }
      weight_entry *we = &c->w[c->nw++];
      memset(we, 0, sizeof *we);
      we->name = name;
      we->ndim = (int)jlen(shape);
      if (we->ndim > QCAL_MAX_DIMS)
        return BAD("%s: weight '%s' has %d dimensions", c->path, name, we->ndim);
      we->numel = 1;
      for (int d = 0; d < we->ndim; d++) {
        int64_t v = json_object_get_int64(jat(shape, (size_t)d));
        if (v < 0 || v > (1 << 28))
          return BAD("%s: weight '%s' has dimension %lld", c->path, name, (long long)v);
        we->shape[d] = v;
        we->numel *= (size_t)v;
      }
      we->offset = total;
      total += we->numel;
    }
  }
  /* the weight files of all groups, in order */
  size_t have = 0;
  char last[4096] = "(none)";
  c->data = qcal_alloc((total ? total : 1) * sizeof(float));
  if (!c->data)
    return qcal_error(QCAL_ENOMEM, "%s: cannot allocate %zu weights", c->path, total);
  for (size_t g = 0; g < jlen(man); g++) {
    json_object *paths = jget(jat(man, g), "paths");
    for (size_t p = 0; paths && p < jlen(paths); p++) {
      const char *rel = jstr(jat(paths, p));
      char full[4096];
      if (!rel || strchr(rel, '/') ||
          snprintf(full, sizeof full, "%s/%s", dir, rel) >= (int)sizeof full)
        return BAD("%s: bad weights path in manifest", c->path);
      FILE *f = fopen(full, "rb");
      if (!f)
        return qcal_error(QCAL_EIO, "%s: cannot open: %s", full, strerror(errno));
      struct stat sb;
      fstat(fileno(f), &sb);
      size_t bytes = (size_t)sb.st_size;
      if (bytes % 4 || have + bytes / 4 > total) {
        fclose(f);
        return BAD("%s: %zu bytes, but the manifest in %s describes %zu bytes of float32 weights",
                   full, bytes, c->path, total * 4);
      }
      size_t got = fread(c->data + have, 1, bytes, f);
      fclose(f);
      if (got != bytes)
        return qcal_error(QCAL_EIO, "%s: short read", full);
      have += bytes / 4;
      snprintf(last, sizeof last, "%s", full);
    }
  }
  if (have != total)
    return BAD("%s: weights file holds %zu bytes, but the manifest in %s describes %zu", last,
               have * 4, c->path, total * 4);
  return QCAL_OK;
}

static qcal_status copy_weight(const ctx *c, const char *name, qcal_tensor *t) {
  if (!name)
    return BAD("%s: a node input is not a name", c->path);
  const weight_entry *w = find_weight(c, name);
  if (!w)
    return BAD("%s: node input '%s' is not a weight in the manifest", c->path, name);
  QCAL_TRY(qcal_tensor_alloc(t, w->ndim, w->shape));
  memcpy(t->data, c->data + w->offset, w->numel * sizeof(float));
  snprintf(t->name, sizeof t->name, "%s", name);
  return QCAL_OK;
}

static int list_int(json_object *attr, const char *key, size_t i, int dflt) {
  json_object *l = jget(jget(jget(attr, key), "list"), "i");
  const char *v = jstr(jat(l, i));
  return v ? atoi(v) : dflt;
}

static qcal_status parse_conv(const ctx *c, json_object *node, const char *name, bool depthwise,
                              qcal_model *m, qcal_layer *L) {
  json_object *attr = jget(node, "attr"), *in = jget(node, "input");
  if (!in || jlen(in) != 3)
    return BAD("%s: node '%s' needs 3 inputs (x, filter, bias)", c->path, name);
  const char *pad = jstr(jget(jget(attr, "padding"), "s"));
  const char *fmt = jstr(jget(jget(attr, "data_format"), "s"));
  if (!pad || (strcmp(pad, B64_SAME) && strcmp(pad, B64_VALID)))
    return qcal_error(QCAL_EUNSUPPORTED, "%s: node '%s': padding must be SAME or VALID", c->path,
                      name);
  if (fmt && strcmp(fmt, B64_NHWC))
    return qcal_error(QCAL_EUNSUPPORTED, "%s: node '%s': only NHWC is supported", c->path, name);
  for (size_t i = 0; i < 4; i++)
    if (list_int(attr, "dilations", i, 1) != 1)
      return qcal_error(QCAL_EUNSUPPORTED, "%s: node '%s': dilation is not supported", c->path,
                        name);
  int sh = list_int(attr, "strides", 1, 1), sw = list_int(attr, "strides", 2, 1);
  if (sh != sw || sh < 1)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: node '%s': strides %d,%d", c->path, name, sh, sw);
  json_object *fused = jget(jget(jget(attr, "fused_ops"), "list"), "s");
  size_t nf = fused ? jlen(fused) : 0;
  if (nf < 1 || !str_is(jat(fused, 0), B64_BIASADD))
    return qcal_error(QCAL_EUNSUPPORTED, "%s: node '%s': fused ops must start with BiasAdd",
                      c->path, name);
  L->relu6 = false;
  if (nf == 2) {
    if (!str_is(jat(fused, 1), B64_RELU6))
      return qcal_error(QCAL_EUNSUPPORTED, "%s: node '%s': only Relu6 may follow BiasAdd", c->path,
                        name);
    L->relu6 = true;
  } else if (nf > 2) {
    return qcal_error(QCAL_EUNSUPPORTED, "%s: node '%s': too many fused ops", c->path, name);
  }
  snprintf(L->name, sizeof L->name, "%s", name);
  L->op = depthwise ? QCAL_OP_DWCONV : QCAL_OP_CONV;
  L->stride = sh;
  L->same_pad = !strcmp(pad, B64_SAME);
  const char *src = jstr(jat(in, 0));
  if (!src)
    return BAD("%s: node '%s': input 0 is not a name", c->path, name);
  L->input = c->input_name && !strcmp(src, c->input_name) ? -1 : -2;
  for (int i = 0; i < m->nlayers; i++)
    if (!strcmp(m->layers[i].name, src))
      L->input = i;
  if (L->input == -2)
    return BAD("%s: node '%s' reads '%s', which is not defined before it", c->path, name, src);
  QCAL_TRY(copy_weight(c, jstr(jat(in, 1)), &L->weight));
  QCAL_TRY(copy_weight(c, jstr(jat(in, 2)), &L->bias));
  const qcal_tensor *w = &L->weight;
  if (w->ndim != 4 || (depthwise && w->shape[3] != 1))
    return qcal_error(QCAL_EUNSUPPORTED, "%s: node '%s': filter must be 4-D%s", c->path, name,
                      depthwise ? " with multiplier 1" : "");
  L->kh = (int)w->shape[0];
  L->kw = (int)w->shape[1];
  L->cin = (int)w->shape[2];
  L->cout = depthwise ? L->cin : (int)w->shape[3];
  L->weight_axis = depthwise ? 2 : 3;
  int expect_in = L->input < 0 ? m->in_channels : m->layers[L->input].cout;
  if (L->cin != expect_in)
    return BAD("%s: node '%s': filter expects %d input channels, its input has %d", c->path, name,
               L->cin, expect_in);
  if (L->bias.ndim != 1 || L->bias.shape[0] != L->cout)
    return BAD("%s: node '%s': bias has %zu values for %d channels", c->path, name, L->bias.numel,
               L->cout);
  return QCAL_OK;
}

qcal_status qcal_tfjs_load(const char *json_path, qcal_model *m) {
  memset(m, 0, sizeof *m);
  for (int i = 0; i < 4; i++)
    m->heads[i] = -1;
  json_object *root = json_object_from_file(json_path);
  if (!root) {
    struct stat sb;
    if (stat(json_path, &sb) != 0)
      return qcal_error(QCAL_EIO, "%s: cannot open: %s", json_path, strerror(errno));
    return BAD("%s: not valid JSON (%s)", json_path, json_util_get_last_err());
  }
  char dirbuf[4096];
  snprintf(dirbuf, sizeof dirbuf, "%s", json_path);
  ctx c = {json_path, NULL, NULL, 0, NULL};
  qcal_status st = QCAL_OK;
  json_object *nodes = jget(jget(root, "modelTopology"), "node");
  if (!jlen(nodes)) {
    st = BAD("%s: no modelTopology.node array (not a TF.js graph model)", json_path);
    goto done;
  }
  if ((st = read_manifest(&c, root, dirname(dirbuf))) != QCAL_OK)
    goto done;
  size_t n = jlen(nodes);
  m->layers = calloc(n ? n : 1, sizeof *m->layers);
  if (!m->layers) {
    st = qcal_error(QCAL_ENOMEM, "out of memory");
    goto done;
  }
  m->in_channels = 3;
  for (size_t i = 0; i < n && st == QCAL_OK; i++) {
    json_object *node = jat(nodes, i);
    const char *op = jstr(jget(node, "op"));
    const char *name = jstr(jget(node, "name"));
    if (!op || !name) {
      st = BAD("%s: node %zu lacks op or name", json_path, i);
    } else if (!strcmp(op, "Const")) {
      continue;
    } else if (!strcmp(op, "Placeholder")) {
      if (c.input_name) {
        st = qcal_error(QCAL_EUNSUPPORTED, "%s: more than one input", json_path);
        break;
      }
      c.input_name = name;
      snprintf(m->input_name, sizeof m->input_name, "%s", name);
      json_object *dims = jget(jget(jget(jget(node, "attr"), "shape"), "shape"), "dim");
      size_t nd = dims ? jlen(dims) : 0;
      const char *sz = jstr(jget(jat(dims, 3), "size"));
      if (nd == 4 && sz)
        m->in_channels = atoi(sz);
      if (m->in_channels < 1)
        st = BAD("%s: input '%s' has no channel count", json_path, name);
    } else if (!strcmp(op, "_FusedConv2D") || !strcmp(op, "FusedDepthwiseConv2dNative")) {
      qcal_layer *L = &m->layers[m->nlayers];
      st = parse_conv(&c, node, name, op[0] == 'F', m, L);
      m->nlayers++;
      if (st == QCAL_OK) {
        const char *heads[4] = {"heatmap", "offset", "displacement_fwd", "displacement_bwd"};
        for (int h = 0; h < 4; h++)
          if (strstr(name, heads[h]))
            m->heads[h] = m->nlayers - 1;
      }
    } else {
      st = qcal_error(QCAL_EUNSUPPORTED, "%s: unsupported op '%s' in node '%s'", json_path, op,
                      name);
    }
  }
  if (st == QCAL_OK && m->nlayers == 0)
    st = BAD("%s: no convolution layers", json_path);
done:
  free(c.w);
  qcal_free(c.data);
  json_object_put(root);
  if (st != QCAL_OK)
    qcal_model_free(m);
  return st;
}

void qcal_model_free(qcal_model *m) {
  for (int i = 0; i < m->nlayers; i++) {
    qcal_tensor_free(&m->layers[i].weight);
    qcal_tensor_free(&m->layers[i].bias);
  }
  free(m->layers);
  memset(m, 0, sizeof *m);
}

qcal_status qcal_model_copy(qcal_model *dst, const qcal_model *src) {
  *dst = *src;
  dst->layers = calloc((size_t)src->nlayers, sizeof *dst->layers);
  if (!dst->layers)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (int i = 0; i < src->nlayers; i++) {
    const qcal_layer *s = &src->layers[i];
    qcal_layer *d = &dst->layers[i];
    *d = *s;
    d->weight.data = NULL;
    d->bias.data = NULL;
    qcal_status st = qcal_tensor_alloc(&d->weight, s->weight.ndim, s->weight.shape);
    if (st == QCAL_OK)
      st = qcal_tensor_alloc(&d->bias, s->bias.ndim, s->bias.shape);
    if (st != QCAL_OK) {
      dst->nlayers = i + 1;
      qcal_model_free(dst);
      return st;
    }
    memcpy(d->weight.data, s->weight.data, s->weight.numel * sizeof(float));
    memcpy(d->bias.data, s->bias.data, s->bias.numel * sizeof(float));
    memcpy(d->weight.name, s->weight.name, sizeof d->weight.name);
  }
  return QCAL_OK;
}

qcal_status qcal_model_fake_quant_weights(qcal_model *m, float *const *amax, bool per_channel,
                                          qcal_qformat f) {
  for (int i = 0; i < m->nlayers; i++) {
    if (!amax[i])
      continue; /* this layer's weights stay float */
    qcal_tensor *w = &m->layers[i].weight;
    qcal_layout l;
    QCAL_TRY(qcal_layout_make(w->ndim, w->shape,
                              per_channel ? m->layers[i].weight_axis : QCAL_PER_TENSOR, &l));
    QCAL_TRY(qcal_fake_quant(&l, w->data, amax[i], f, w->data));
  }
  return QCAL_OK;
}
