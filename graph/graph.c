/* Graph construction: values, nodes, attributes, the name index. */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "graph/internal.h"
#include "qcal/escape.h"
#include "qcal_config.h"

const qcal_op_info qcal_op_infos[QCAL_GOP_COUNT] = {
#define QCAL_OP(id, name, min_in, max_in, min_out, max_out, flags, infer, fwd, wslot, waxis, tfwd, \
                bwd)                                                                               \
  [QCAL_GOP_##id] = {name, min_in, max_in, min_out, max_out, flags, wslot, waxis},
#include "graph/ops.inc"
#undef QCAL_OP
};

qcal_graph_op qcal_op_find(const char *name) {
  for (int i = 0; i < QCAL_GOP_COUNT; i++)
    if (!(qcal_op_infos[i].flags & QCAL_OPF_LOWERED) && !strcmp(qcal_op_infos[i].name, name))
      return (qcal_graph_op)i;
  return QCAL_GOP_COUNT;
}

size_t qcal_dtype_size(qcal_dtype t) {
  static const size_t s[QCAL_DT_COUNT] = {4, 8, 4, 1, 1, 1};
  return t < QCAL_DT_COUNT ? s[t] : 0;
}

const char *qcal_dtype_name(qcal_dtype t) {
  static const char *const n[QCAL_DT_COUNT] = {"float32", "int64", "int32",
                                               "int8",    "uint8", "bool"};
  return t < QCAL_DT_COUNT ? n[t] : "?";
}

/* ---- growable arrays (values, nodes, attributes)
 * An element pointer taken from one of these arrays is valid only until the
 * next addition: keep indices across any call that may add. Sanitizer builds
 * (QCAL_MOVE_ARRAYS) move the array on every addition and free the old block,
 * so a pointer kept across an addition is a use-after-free that ASan reports
 * every time, not a crash that depends on where realloc happened to land. */
static qcal_status grow(void **arr, int *cap, int n, size_t elem, int first) {
#if QCAL_MOVE_ARRAYS
  int want = n < *cap ? *cap : *cap ? *cap * 2 : first;
  void *a = malloc((size_t)want * elem);
  if (!a)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  if (n)
    memcpy(a, *arr, (size_t)n * elem);
  free(*arr);
#else
  if (n < *cap)
    return QCAL_OK;
  int want = *cap ? *cap * 2 : first;
  void *a = realloc(*arr, (size_t)want * elem);
  if (!a)
    return qcal_error(QCAL_ENOMEM, "out of memory");
#endif
  *arr = a;
  *cap = want;
  return QCAL_OK;
}

void qcal_graph_relocate(qcal_graph *g) {
#if QCAL_MOVE_ARRAYS
  int cap = g->nvalues;
  if (grow((void **)&g->values, &cap, g->nvalues, sizeof *g->values, 1) == QCAL_OK)
    g->cap_values = cap;
  cap = g->nnodes;
  if (grow((void **)&g->nodes, &cap, g->nnodes, sizeof *g->nodes, 1) == QCAL_OK)
    g->cap_nodes = cap;
#else
  (void)g;
#endif
}

/* ---- name index: open addressing over value indices */
typedef struct names {
  size_t cap;
  int *slot; /* value index + 1; 0 empty */
} names;

static uint64_t hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static qcal_status names_put(qcal_graph *g, int idx);

static qcal_status names_grow(qcal_graph *g) {
  names *nm = g->names;
  size_t cap = nm->cap ? nm->cap * 2 : 256;
  int *slot = calloc(cap, sizeof *slot);
  if (!slot)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  free(nm->slot);
  nm->slot = slot;
  nm->cap = cap;
  for (int i = 0; i < g->nvalues; i++)
    if (g->values[i].name)
      QCAL_TRY(names_put(g, i));
  return QCAL_OK;
}

static qcal_status names_put(qcal_graph *g, int idx) {
  names *nm = g->names;
  size_t m = nm->cap - 1;
  for (size_t h = hash(g->values[idx].name) & m;; h = (h + 1) & m)
    if (!nm->slot[h]) {
      nm->slot[h] = idx + 1;
      return QCAL_OK;
    }
}

int qcal_graph_find(const qcal_graph *g, const char *name) {
  const names *nm = g->names;
  if (!nm->cap)
    return -1;
  size_t m = nm->cap - 1;
  for (size_t h = hash(name) & m; nm->slot[h]; h = (h + 1) & m)
    if (!strcmp(g->values[nm->slot[h] - 1].name, name))
      return nm->slot[h] - 1;
  return -1;
}

qcal_status qcal_graph_new(const char *path, qcal_graph **out) {
  qcal_graph *g = calloc(1, sizeof *g);
  names *nm = calloc(1, sizeof *nm);
  char *p = strdup(path ? path : "graph");
  if (!g || !nm || !p) {
    free(g), free(nm), free(p);
    return qcal_error(QCAL_ENOMEM, "out of memory");
  }
  g->names = nm;
  g->path = p;
  *out = g;
  return QCAL_OK;
}

static void attr_free(qcal_attr *a) {
  free(a->name);
  free(a->ints);
  free(a->floats);
  free(a->s);
}

void qcal_node_clear_attrs(qcal_node *n) {
  for (int a = 0; a < n->nattr; a++)
    attr_free(&n->attr[a]);
  free(n->attr);
  n->attr = NULL;
  n->nattr = 0;
}

void qcal_graph_const_changed(qcal_graph *g, int v) {
  g->values[v].data_gen = ++g->fq_gen ? g->fq_gen : ++g->fq_gen; /* never 0 */
}

bool qcal_conv_depthwise(const qcal_graph *g, const qcal_node *n) {
  if ((n->op != QCAL_GOP_Conv && n->op != QCAL_GOP_Int8Conv) || n->nin < 2 || n->in[0] < 0 ||
      n->in[1] < 0)
    return false;
  int64_t group = 1; /* read without marking: qcal_attr_int is for the op's own use */
  for (int a = 0; a < n->nattr; a++)
    if (!strcmp(n->attr[a].name, "group") && n->attr[a].type == QCAL_ATTR_INT)
      group = n->attr[a].i;
  const qcal_value *x = &g->values[n->in[0]], *w = &g->values[n->in[1]];
  return group > 1 && x->ndim >= 3 && w->ndim >= 1 && group == x->shape[1] && w->shape[0] == group;
}

const char *qcal_value_model_name(const qcal_graph *g, const qcal_value *v, char *buf, size_t cap) {
  const char *m = g->name_mark ? strchr(v->name, g->name_mark) : NULL;
  snprintf(buf, cap, "%.*s", m ? (int)(m - v->name) : (int)strlen(v->name), v->name);
  return buf;
}

void qcal_graph_free(qcal_graph *g) {
  if (!g)
    return;
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->x.state_free && n->x.state)
      n->x.state_free(n->x.state);
    for (int a = 0; a < n->nattr; a++)
      attr_free(&n->attr[a]);
    free(n->attr);
    free(n->in);
    free(n->out);
    free(n->name);
  }
  for (int i = 0; i < g->nvalues; i++) {
    if (g->values[i].kind == QCAL_VAL_CONST)
      qcal_free(g->values[i].data);
    free(g->values[i].name);
  }
  qcal_fq_free(g);
  qcal_plan_free(g);
  for (int k = 0; k < g->nbn; k++)
    free(g->bn[k].beta), free(g->bn[k].gamma), free(g->bn[k].bias), free(g->bn[k].wnorm);
  free(g->bn);
  names *nm = g->names;
  free(nm->slot);
  free(nm);
  free(g->values);
  free(g->nodes);
  free(g->inputs);
  free(g->outputs);
  free(g->path);
  free(g);
}

qcal_status qcal_graph_add_value(qcal_graph *g, const char *name, qcal_value_kind kind,
                                 qcal_dtype dtype, int ndim, const int64_t *shape, int *index) {
  if (ndim < 0 || ndim > QCAL_MAX_DIMS)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: value '%s' has %d dims (at most %d supported)",
                      g->path, name, ndim, QCAL_MAX_DIMS);
  if (qcal_graph_find(g, name) >= 0)
    return qcal_error(QCAL_EFORMAT, "%s: value '%s' is defined twice", g->path, name);
  QCAL_TRY(grow((void **)&g->values, &g->cap_values, g->nvalues, sizeof *g->values, 64));
  names *nm = g->names;
  if ((size_t)(g->nvalues + 1) * 2 > nm->cap)
    QCAL_TRY(names_grow(g));
  qcal_value *v = &g->values[g->nvalues];
  memset(v, 0, sizeof *v);
  v->name = strdup(name);
  if (!v->name)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  v->kind = kind;
  v->dtype = dtype;
  v->ndim = ndim;
  v->producer = -1;
  v->numel = 1;
  for (int d = 0; d < ndim; d++) {
    v->shape[d] = shape[d];
    v->numel *= shape[d] > 0 ? (size_t)shape[d] : shape[d] == 0 ? 0 : 1;
  }
  int idx = g->nvalues++;
  QCAL_TRY(names_put(g, idx));
  if (index)
    *index = idx;
  return QCAL_OK;
}

qcal_status qcal_graph_add_const(qcal_graph *g, const char *name, qcal_dtype dtype, int ndim,
                                 const int64_t *shape, void *data, int *index) {
  int idx;
  qcal_status st = qcal_graph_add_value(g, name, QCAL_VAL_CONST, dtype, ndim, shape, &idx);
  if (st) {
    qcal_free(data);
    return st;
  }
  g->values[idx].data = data;
  if (index)
    *index = idx;
  return QCAL_OK;
}

qcal_status qcal_graph_add_node(qcal_graph *g, qcal_graph_op op, const char *name, int nin,
                                const int *in, int nout, const int *out, int *index) {
  QCAL_TRY(grow((void **)&g->nodes, &g->cap_nodes, g->nnodes, sizeof *g->nodes, 64));
  qcal_node *n = &g->nodes[g->nnodes];
  memset(n, 0, sizeof *n);
  n->op = op;
  n->x.sum_in = -1;
  n->name = strdup(name ? name : "");
  n->in = malloc((size_t)(nin ? nin : 1) * sizeof(int));
  n->out = malloc((size_t)(nout ? nout : 1) * sizeof(int));
  if (!n->name || !n->in || !n->out) {
    free(n->name), free(n->in), free(n->out);
    return qcal_error(QCAL_ENOMEM, "out of memory");
  }
  if (nin)
    memcpy(n->in, in, (size_t)nin * sizeof(int));
  if (nout)
    memcpy(n->out, out, (size_t)nout * sizeof(int));
  n->nin = nin;
  n->nout = nout;
  int idx = g->nnodes++;
  if (index)
    *index = idx;
  return QCAL_OK;
}

static qcal_status append(int **list, int *n, int v) {
  int *l = realloc(*list, (size_t)(*n + 1) * sizeof *l);
  if (!l)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  l[(*n)++] = v;
  *list = l;
  return QCAL_OK;
}

qcal_status qcal_graph_add_input(qcal_graph *g, int v) {
  return append(&g->inputs, &g->ninputs, v);
}

qcal_status qcal_graph_add_output(qcal_graph *g, int v) {
  return append(&g->outputs, &g->noutputs, v);
}

qcal_status qcal_node_add_attr(qcal_node *n, const qcal_attr *a) {
  int cap = n->nattr; /* exact fit: attributes are few */
  QCAL_TRY(grow((void **)&n->attr, &cap, n->nattr, sizeof *n->attr, 1));
  qcal_attr *d = &n->attr[n->nattr];
  *d = *a;
  d->used = false;
  d->name = strdup(a->name);
  d->ints = NULL;
  d->floats = NULL;
  d->s = NULL;
  bool ok = d->name != NULL;
  if (a->n && a->ints && ok) {
    d->ints = malloc((size_t)a->n * sizeof *d->ints);
    ok = d->ints && memcpy(d->ints, a->ints, (size_t)a->n * sizeof *d->ints);
  }
  if (a->n && a->floats && ok) {
    d->floats = malloc((size_t)a->n * sizeof *d->floats);
    ok = d->floats && memcpy(d->floats, a->floats, (size_t)a->n * sizeof *d->floats);
  }
  if (a->s && ok)
    ok = (d->s = strdup(a->s)) != NULL;
  if (!ok) {
    attr_free(d);
    return qcal_error(QCAL_ENOMEM, "out of memory");
  }
  n->nattr++;
  return QCAL_OK;
}

const qcal_attr *qcal_node_attr(qcal_node *n, const char *name) {
  for (int i = 0; i < n->nattr; i++)
    if (!strcmp(n->attr[i].name, name)) {
      n->attr[i].used = true;
      return &n->attr[i];
    }
  return NULL;
}

int64_t qcal_attr_int(qcal_node *n, const char *name, int64_t def) {
  const qcal_attr *a = qcal_node_attr(n, name);
  return a && a->type == QCAL_ATTR_INT ? a->i : def;
}

float qcal_attr_float(qcal_node *n, const char *name, float def) {
  const qcal_attr *a = qcal_node_attr(n, name);
  return a && a->type == QCAL_ATTR_FLOAT ? a->f : a && a->type == QCAL_ATTR_INT ? (float)a->i : def;
}

const char *qcal_attr_str(qcal_node *n, const char *name, const char *def) {
  const qcal_attr *a = qcal_node_attr(n, name);
  return a && a->type == QCAL_ATTR_STRING ? a->s : def;
}

int qcal_attr_ints(qcal_node *n, const char *name, int64_t *out, int max) {
  const qcal_attr *a = qcal_node_attr(n, name);
  if (!a)
    return 0;
  if (a->type != QCAL_ATTR_INTS || a->n > max)
    return -1;
  if (a->n)
    memcpy(out, a->ints, (size_t)a->n * sizeof *out);
  return a->n;
}

void qcal_int8_params_get(const qcal_node *n, qcal_int8_params *p) {
  *p = (qcal_int8_params){0};
  /* read without marking: these are the lowering's own attributes */
  for (int a = 0; a < n->nattr; a++) {
    const qcal_attr *at = &n->attr[a];
    if (!strcmp(at->name, "scales") && at->type == QCAL_ATTR_FLOATS)
      p->scales = at->floats, p->nscales = at->n;
    else if (!strcmp(at->name, "a_scale") && at->type == QCAL_ATTR_FLOAT)
      p->a_scale = at->f;
    else if (!strcmp(at->name, "b_scale") && at->type == QCAL_ATTR_FLOAT)
      p->b_scale = at->f;
    else if (!strcmp(at->name, "y_scale") && at->type == QCAL_ATTR_FLOAT)
      p->y_scale = at->f;
    else if (!strcmp(at->name, "y_max") && at->type == QCAL_ATTR_INT)
      p->y_max = (int)at->i;
  }
}

qcal_status qcal_node_set_float(qcal_node *n, const char *name, float f) {
  return qcal_node_add_attr(n, &(qcal_attr){.name = (char *)name, .type = QCAL_ATTR_FLOAT, .f = f});
}

qcal_status qcal_node_set_floats(qcal_node *n, const char *name, const float *f, int count) {
  return qcal_node_add_attr(
      n, &(qcal_attr){
             .name = (char *)name, .type = QCAL_ATTR_FLOATS, .n = count, .floats = (float *)f});
}

qcal_status qcal_node_set_int(qcal_node *n, const char *name, int64_t i) {
  return qcal_node_add_attr(n, &(qcal_attr){.name = (char *)name, .type = QCAL_ATTR_INT, .i = i});
}

const char *qcal_node_desc(const qcal_graph *g, const qcal_node *n, char *buf, size_t len) {
  (void)g;
  char name[96];
  qcal_escape_text(n->name, name, sizeof name);
  snprintf(buf, len, "%s node '%s'", qcal_op_infos[n->op].name, name);
  return buf;
}
