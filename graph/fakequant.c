/* Fake quantization while a graph runs: chosen node inputs are read
 * through quantize-dequantize. Constants (weights) are quantized once when
 * the list is set; activations after their producer ran, into a scratch
 * buffer that stands in for the value while its reader executes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

typedef struct fq_entry {
  int node, slot, value;
  qcal_layout lay;
  float *amax; /* lay.channels values */
  qcal_qformat fmt;
  float *buf;   /* quantized constant, or activation scratch */
  unsigned gen; /* the constant's stand-in generation (value.data_gen) */
  unsigned saved_gen;
  size_t buf_len; /* floats */
  void *saved;    /* the value's own data while swapped */
} fq_entry;

typedef struct fq_state {
  int n;
  fq_entry *e;
  int *first; /* per node: first entry, -1 when none (entries sorted by node) */
} fq_state;

void qcal_fq_free(qcal_graph *g) {
  fq_state *s = g->fq;
  if (!s)
    return;
  for (int k = 0; k < s->n; k++) {
    free(s->e[k].amax);
    qcal_free(s->e[k].buf);
  }
  free(s->e);
  free(s->first);
  free(s);
  g->fq = NULL;
}

static int cmp_node(const void *a, const void *b) {
  const fq_entry *x = a, *y = b;
  return x->node != y->node ? (x->node > y->node) - (x->node < y->node)
                            : (x->slot > y->slot) - (x->slot < y->slot);
}

/* Floats in the value's buffer: a blocked execution layout pads channels. */
static size_t value_floats(const qcal_value *v) {
  return v->fmt ? qcal_fmt_bytes(v->fmt) / sizeof(float) : v->numel;
}

qcal_status qcal_graph_fake_quant(qcal_graph *g, const qcal_graph_fq *fq, int n) {
  qcal_fq_free(g);
  if (n <= 0)
    return QCAL_OK;
  if (!g->prepared)
    return qcal_error(QCAL_EINVAL, "%s: fake quantization needs a prepared graph", g->path);
  fq_state *s = calloc(1, sizeof *s);
  if (!s)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  g->fq = s;
  s->e = calloc((size_t)n, sizeof *s->e);
  s->first = malloc(((size_t)g->nnodes + 1) * sizeof *s->first);
  if (!s->e || !s->first) {
    qcal_fq_free(g);
    return qcal_error(QCAL_ENOMEM, "out of memory");
  }
  qcal_status st = QCAL_OK;
  for (int k = 0; k < n && !st; k++) {
    const qcal_graph_fq *f = &fq[k];
    fq_entry *e = &s->e[s->n];
    if (f->node < 0 || f->node >= g->nnodes || g->nodes[f->node].dead || f->slot < 0 ||
        f->slot >= g->nodes[f->node].nin || g->nodes[f->node].in[f->slot] < 0) {
      st = qcal_error(QCAL_EINVAL, "%s: fake quantization of node %d input %d: no such input",
                      g->path, f->node, f->slot);
      break;
    }
    qcal_node *nd = &g->nodes[f->node];
    qcal_value *v = &g->values[nd->in[f->slot]];
    char desc[256];
    if (v->dtype != QCAL_DT_F32) {
      st = qcal_error(QCAL_EDTYPE, "%s: input %d is %s; only float32 is fake-quantized",
                      qcal_node_desc(g, nd, desc, sizeof desc), f->slot, qcal_dtype_name(v->dtype));
      break;
    }
    bool is_const = v->kind == QCAL_VAL_CONST;
    if (f->axis != QCAL_PER_TENSOR && !is_const) {
      st = qcal_error(QCAL_EUNSUPPORTED,
                      "%s: input %d: per-channel fake quantization of activations is not "
                      "supported",
                      qcal_node_desc(g, nd, desc, sizeof desc), f->slot);
      break;
    }
    if (is_const)
      st = qcal_layout_make(v->ndim, v->shape, f->axis, &e->lay);
    else
      e->lay = (qcal_layout){1, 1, value_floats(v)};
    if (st)
      break;
    e->node = f->node, e->slot = f->slot, e->value = nd->in[f->slot], e->fmt = f->fmt;
    e->amax = malloc(e->lay.channels * sizeof *e->amax);
    if (!e->amax) {
      st = qcal_error(QCAL_ENOMEM, "out of memory");
      break;
    }
    s->n++;
    memcpy(e->amax, f->amax, e->lay.channels * sizeof *e->amax);
    if (is_const) {
      e->gen = ++g->fq_gen ? g->fq_gen : ++g->fq_gen; /* never 0 */
      e->buf_len = v->numel;
      e->buf = qcal_alloc((v->numel ? v->numel : 1) * sizeof(float));
      st = e->buf ? qcal_fake_quant(&e->lay, v->data, e->amax, e->fmt, e->buf)
                  : qcal_error(QCAL_ENOMEM, "out of memory");
    }
  }
  if (st) {
    qcal_fq_free(g);
    return st;
  }
  qsort(s->e, (size_t)s->n, sizeof *s->e, cmp_node);
  for (int i = 0; i <= g->nnodes; i++)
    s->first[i] = -1;
  for (int k = s->n - 1; k >= 0; k--)
    s->first[s->e[k].node] = k;
  return QCAL_OK;
}

qcal_status qcal_fq_enter(qcal_graph *g, int i) {
  fq_state *s = g->fq;
  if (!s || s->first[i] < 0)
    return QCAL_OK;
  for (int k = s->first[i]; k < s->n && s->e[k].node == i; k++) {
    fq_entry *e = &s->e[k];
    qcal_value *v = &g->values[e->value];
    e->saved = v->data;
    e->saved_gen = v->data_gen;
    if (v->kind == QCAL_VAL_CONST)
      v->data_gen = e->gen;
    else {
      size_t need = value_floats(v);
      if (need > e->buf_len) {
        qcal_free(e->buf);
        e->buf_len = 0;
        if (!(e->buf = qcal_alloc(need * sizeof(float))))
          return qcal_error(QCAL_ENOMEM, "out of memory");
        e->buf_len = need;
      }
      e->lay = (qcal_layout){1, 1, need};
      QCAL_TRY(qcal_fake_quant(&e->lay, v->data, e->amax, e->fmt, e->buf));
    }
    v->data = e->buf;
  }
  return QCAL_OK;
}

void qcal_fq_leave(qcal_graph *g, int i) {
  fq_state *s = g->fq;
  if (!s || s->first[i] < 0)
    return;
  int last = s->first[i];
  while (last + 1 < s->n && s->e[last + 1].node == i)
    last++;
  for (int k = last; k >= s->first[i]; k--) /* reverse: a value read twice unwinds */
    if (s->e[k].saved) {
      g->values[s->e[k].value].data = s->e[k].saved, s->e[k].saved = NULL;
      g->values[s->e[k].value].data_gen = s->e[k].saved_gen;
    }
}

qcal_status qcal_graph_read(qcal_graph *g, int vi, float *dst) {
  if (vi < 0 || vi >= g->nvalues)
    return qcal_error(QCAL_EINVAL, "%s: no value %d", g->path, vi);
  const qcal_value *v = &g->values[vi];
  if (v->dtype != QCAL_DT_F32 || !v->data)
    return qcal_error(QCAL_EINVAL, "%s: value '%s' is not a float32 result", g->path, v->name);
  if (!v->fmt) {
    memcpy(dst, v->data, v->numel * sizeof(float));
    return QCAL_OK;
  }
  return qcal_fmt_to_plain(v->fmt, v->data, dst);
}
