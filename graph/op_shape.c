/* Data movement on any dtype (Reshape, Flatten, Squeeze, Unsqueeze,
 * Transpose, Concat, Split, Slice, Gather, Expand, Pad) and the shape
 * computations that prepare folds into constants (Shape, Constant,
 * ConstantOfShape, Range). */
#include <math.h>
#include <string.h>

#include "graph/internal.h"

#define ESZ(v) qcal_dtype_size((v)->dtype)

/* ---- Reshape, Flatten, Squeeze, Unsqueeze: new shape, same bytes */
qcal_status qcal_infer_reshape(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int64_t s[QCAL_MAX_DIMS];
  int ns;
  QCAL_TRY(qcal_const_ints(g, n, 1, s, QCAL_MAX_DIMS, &ns));
  bool allowzero = qcal_attr_int(n, "allowzero", 0) != 0;
  int minus = -1;
  int64_t known = 1;
  for (int d = 0; d < ns; d++) {
    if (s[d] == 0 && !allowzero) {
      if (d >= x->ndim)
        return qcal_node_error(g, n, QCAL_EFORMAT, "shape[%d] = 0 copies a dim the input lacks", d);
      s[d] = x->shape[d];
    }
    if (s[d] == -1) {
      if (minus >= 0)
        return qcal_node_error(g, n, QCAL_EFORMAT, "shape has more than one -1");
      minus = d;
    } else if (s[d] < 0 || s[d] > ((int64_t)1 << 40)) {
      return qcal_node_error(g, n, QCAL_EFORMAT, "shape[%d] = %lld", d, (long long)s[d]);
    } else {
      size_t k;
      if (qcal_mul_size((size_t)known, (size_t)s[d], &k) || k > ((size_t)1 << 40))
        return qcal_node_error(g, n, QCAL_EFORMAT, "shape holds more than 2^40 elements");
      known = (int64_t)k;
    }
  }
  if (minus >= 0)
    s[minus] = known ? (int64_t)x->numel / known : 0;
  size_t total = 1;
  for (int d = 0; d < ns; d++)
    if (qcal_mul_size(total, (size_t)s[d], &total))
      return qcal_node_error(g, n, QCAL_EFORMAT, "shape overflows");
  if (total != x->numel)
    return qcal_node_error(g, n, QCAL_EFORMAT, "cannot reshape %zu elements into %zu", x->numel,
                           total);
  return qcal_set_out(g, n, 0, x->dtype, ns, s);
}

qcal_status qcal_infer_flatten(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int64_t axis = qcal_attr_int(n, "axis", 1);
  if (axis < -x->ndim || axis > x->ndim)
    return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'axis' = %lld out of range",
                           (long long)axis);
  if (axis < 0)
    axis += x->ndim;
  int64_t s[2] = {1, 1};
  for (int d = 0; d < x->ndim; d++)
    s[d < axis ? 0 : 1] *= x->shape[d];
  return qcal_set_out(g, n, 0, x->dtype, 2, s);
}

static qcal_status axes_of(qcal_graph *g, qcal_node *n, int64_t *ax, int *na) {
  if (g->opset >= 13 || qcal_in(g, n, 1))
    return qcal_const_ints(g, n, 1, ax, QCAL_MAX_DIMS, na);
  *na = qcal_attr_ints(n, "axes", ax, QCAL_MAX_DIMS);
  if (*na < 0)
    return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'axes' is malformed");
  return QCAL_OK;
}

qcal_status qcal_infer_squeeze(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int64_t ax[QCAL_MAX_DIMS];
  int na;
  QCAL_TRY(axes_of(g, n, ax, &na));
  bool drop[QCAL_MAX_DIMS] = {0};
  for (int k = 0; k < na; k++) {
    int a;
    QCAL_TRY(qcal_norm_axis(g, n, ax[k], x->ndim, &a));
    if (x->shape[a] != 1)
      return qcal_node_error(g, n, QCAL_EFORMAT, "cannot squeeze dim %d of size %lld", a,
                             (long long)x->shape[a]);
    drop[a] = true;
  }
  int64_t s[QCAL_MAX_DIMS];
  int r = 0;
  for (int d = 0; d < x->ndim; d++)
    if (!(na ? drop[d] : x->shape[d] == 1))
      s[r++] = x->shape[d];
  return qcal_set_out(g, n, 0, x->dtype, r, s);
}

qcal_status qcal_infer_unsqueeze(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int64_t ax[QCAL_MAX_DIMS];
  int na;
  QCAL_TRY(axes_of(g, n, ax, &na));
  int r = x->ndim + na;
  if (r > QCAL_MAX_DIMS)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "result would have %d dims", r);
  bool ins[QCAL_MAX_DIMS] = {0};
  for (int k = 0; k < na; k++) {
    int a;
    QCAL_TRY(qcal_norm_axis(g, n, ax[k], r, &a));
    if (ins[a])
      return qcal_node_error(g, n, QCAL_EFORMAT, "axis %d repeated", a);
    ins[a] = true;
  }
  int64_t s[QCAL_MAX_DIMS];
  for (int d = 0, j = 0; d < r; d++)
    s[d] = ins[d] ? 1 : x->shape[j++];
  return qcal_set_out(g, n, 0, x->dtype, r, s);
}

/* ---- Transpose */
static qcal_status perm_of(qcal_graph *g, qcal_node *n, const qcal_value *x, int64_t *perm) {
  int np = qcal_attr_ints(n, "perm", perm, QCAL_MAX_DIMS);
  if (np == 0)
    for (int d = 0; d < x->ndim; d++)
      perm[d] = x->ndim - 1 - d;
  else if (np != x->ndim)
    return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'perm' has %d values for rank %d", np,
                           x->ndim);
  bool seen[QCAL_MAX_DIMS] = {0};
  for (int d = 0; d < x->ndim; d++) {
    if (perm[d] < 0 || perm[d] >= x->ndim || seen[perm[d]])
      return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'perm' is not a permutation");
    seen[perm[d]] = true;
  }
  return QCAL_OK;
}

qcal_status qcal_infer_transpose(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int64_t perm[QCAL_MAX_DIMS], s[QCAL_MAX_DIMS];
  QCAL_TRY(perm_of(g, n, x, perm));
  for (int d = 0; d < x->ndim; d++)
    s[d] = x->shape[perm[d]];
  return qcal_set_out(g, n, 0, x->dtype, x->ndim, s);
}

/* Source offset of the row with flat index r over output dims 0..top. */
static int64_t row_offset(int64_t r, int top, const int64_t *shape, const int64_t *st) {
  int64_t off = 0;
  for (int d = top; d >= 0; d--) {
    off += (r % shape[d]) * st[d];
    r /= shape[d];
  }
  return off;
}

qcal_status qcal_fwd_transpose(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  int64_t perm[QCAL_MAX_DIMS], xs[QCAL_MAX_DIMS], st[QCAL_MAX_DIMS];
  QCAL_TRY(perm_of(g, n, x, perm));
  qcal_strides(x->ndim, x->shape, xs);
  for (int d = 0; d < x->ndim; d++)
    st[d] = xs[perm[d]];
  size_t es = ESZ(x);
  int nd = y->ndim;
  if (!y->numel)
    return QCAL_OK;
  if (nd == 0) {
    memcpy(y->data, x->data, es);
    return QCAL_OK;
  }
  const char *xd = x->data;
  char *yd = y->data;
  int64_t last = y->shape[nd - 1];
  if (perm[nd - 1] == nd - 1) { /* rows stay rows: one copy each */
    int64_t rows = (int64_t)(y->numel / (size_t)last);
#pragma omp parallel for if (y->numel > 65536)
    for (int64_t r = 0; r < rows; r++)
      memcpy(yd + (size_t)(r * last) * es, xd + (size_t)row_offset(r, nd - 2, y->shape, st) * es,
             (size_t)last * es);
    return QCAL_OK;
  }
  if (nd >= 2 && perm[nd - 2] == nd - 1 && es == 4) {
    /* the last two dims swap (k^T in attention): 32x32 tiles */
    int64_t A = y->shape[nd - 2], B = last, sb = st[nd - 1];
    int64_t outer = (int64_t)(y->numel / (size_t)(A * B));
#pragma omp parallel for collapse(2) if (y->numel > 65536)
    for (int64_t o = 0; o < outer; o++)
      for (int64_t a0 = 0; a0 < A; a0 += 32) {
        const float *xp = (const float *)xd + row_offset(o, nd - 3, y->shape, st);
        float *yp = (float *)yd + o * A * B;
        int64_t a1 = a0 + 32 < A ? a0 + 32 : A;
        for (int64_t b0 = 0; b0 < B; b0 += 32) {
          int64_t b1 = b0 + 32 < B ? b0 + 32 : B;
          for (int64_t a = a0; a < a1; a++)
            for (int64_t b = b0; b < b1; b++)
              yp[a * B + b] = xp[b * sb + a];
        }
      }
    return QCAL_OK;
  }
  int64_t rows = (int64_t)(y->numel / (size_t)last);
#pragma omp parallel for if (y->numel > 65536)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off = row_offset(r, nd - 2, y->shape, st), sl = st[nd - 1];
    char *yp = yd + (size_t)(r * last) * es;
    if (es == 4)
      for (int64_t i = 0; i < last; i++)
        ((float *)yp)[i] = ((const float *)xd)[off + i * sl];
    else
      for (int64_t i = 0; i < last; i++)
        memcpy(yp + (size_t)i * es, xd + (size_t)(off + i * sl) * es, es);
  }
  return QCAL_OK;
}

/* ---- Concat, Split */
qcal_status qcal_infer_concat(qcal_graph *g, qcal_node *n) {
  const qcal_value *x0 = qcal_in(g, n, 0);
  if (!qcal_node_attr(n, "axis"))
    return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'axis' is required");
  int axis;
  QCAL_TRY(qcal_norm_axis(g, n, qcal_attr_int(n, "axis", 0), x0->ndim, &axis));
  int64_t s[QCAL_MAX_DIMS];
  memcpy(s, x0->shape, sizeof s);
  s[axis] = 0;
  for (int k = 0; k < n->nin; k++) {
    const qcal_value *x = qcal_in(g, n, k);
    if (!x || x->dtype != x0->dtype || x->ndim != x0->ndim)
      return qcal_node_error(g, n, QCAL_EFORMAT, "input %d differs in dtype or rank", k);
    for (int d = 0; d < x->ndim; d++)
      if (d != axis && x->shape[d] != x0->shape[d])
        return qcal_node_error(g, n, QCAL_EFORMAT, "input %d differs in dim %d", k, d);
    s[axis] += x->shape[axis];
  }
  return qcal_set_out(g, n, 0, x0->dtype, x0->ndim, s);
}

qcal_status qcal_fwd_concat(qcal_graph *g, qcal_node *n) {
  qcal_value *y = qcal_out(g, n, 0);
  int axis;
  QCAL_TRY(qcal_norm_axis(g, n, qcal_attr_int(n, "axis", 0), y->ndim, &axis));
  qcal_layout l; /* [outer, axis, inner] around the (normalised) axis */
  QCAL_TRY(qcal_layout_make(y->ndim, y->shape, axis, &l));
  size_t outer = l.outer, inner = l.inner * ESZ(y);
  size_t row = (size_t)y->shape[axis] * inner, at = 0;
  for (int k = 0; k < n->nin; k++) {
    const qcal_value *x = qcal_in(g, n, k);
    size_t len = (size_t)x->shape[axis] * inner;
    for (size_t o = 0; o < outer; o++)
      memcpy((char *)y->data + o * row + at, (const char *)x->data + o * len, len);
    at += len;
  }
  return QCAL_OK;
}

static qcal_status split_sizes(qcal_graph *g, qcal_node *n, int *axis, int64_t *sz) {
  const qcal_value *x = qcal_in(g, n, 0);
  QCAL_TRY(qcal_norm_axis(g, n, qcal_attr_int(n, "axis", 0), x->ndim, axis));
  int ns = 0;
  if (qcal_in(g, n, 1))
    QCAL_TRY(qcal_const_ints(g, n, 1, sz, 64, &ns));
  else if ((ns = qcal_attr_ints(n, "split", sz, 64)) < 0)
    return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'split' is malformed");
  int64_t dim = x->shape[*axis], sum = 0;
  if (!ns) {
    if (dim % n->nout)
      return qcal_node_error(g, n, QCAL_EFORMAT, "dim %lld does not split into %d equal parts",
                             (long long)dim, n->nout);
    for (int k = 0; k < n->nout; k++)
      sz[k] = dim / n->nout;
    ns = n->nout;
  }
  for (int k = 0; k < ns; k++) {
    if (sz[k] < 0 || sz[k] > dim)
      return qcal_node_error(g, n, QCAL_EFORMAT, "split size %lld is out of range",
                             (long long)sz[k]);
    sum += sz[k];
  }
  if (ns != n->nout || sum != dim)
    return qcal_node_error(g, n, QCAL_EFORMAT, "split sizes do not add up to dim %lld in %d parts",
                           (long long)dim, n->nout);
  return QCAL_OK;
}

qcal_status qcal_infer_split(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int axis;
  int64_t sz[64];
  QCAL_TRY(split_sizes(g, n, &axis, sz));
  for (int k = 0; k < n->nout; k++) {
    int64_t s[QCAL_MAX_DIMS];
    memcpy(s, x->shape, sizeof s);
    s[axis] = sz[k];
    QCAL_TRY(qcal_set_out(g, n, k, x->dtype, x->ndim, s));
  }
  return QCAL_OK;
}

qcal_status qcal_fwd_split(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int axis;
  int64_t sz[64];
  QCAL_TRY(split_sizes(g, n, &axis, sz));
  qcal_layout l; /* [outer, axis, inner] around the (normalised) axis */
  QCAL_TRY(qcal_layout_make(x->ndim, x->shape, axis, &l));
  size_t outer = l.outer, inner = l.inner * ESZ(x);
  size_t row = (size_t)x->shape[axis] * inner, at = 0;
  for (int k = 0; k < n->nout; k++) {
    qcal_value *y = qcal_out(g, n, k);
    size_t len = (size_t)sz[k] * inner;
    if (y)
      for (size_t o = 0; o < outer; o++)
        memcpy((char *)y->data + o * len, (const char *)x->data + o * row + at, len);
    at += len;
  }
  return QCAL_OK;
}

/* ---- Slice */
typedef struct slice_plan {
  int64_t start[QCAL_MAX_DIMS], step[QCAL_MAX_DIMS], len[QCAL_MAX_DIMS];
} slice_plan;

static qcal_status slice_make(qcal_graph *g, qcal_node *n, slice_plan *p) {
  const qcal_value *x = qcal_in(g, n, 0);
  int64_t st[QCAL_MAX_DIMS], en[QCAL_MAX_DIMS], ax[QCAL_MAX_DIMS], sp[QCAL_MAX_DIMS];
  int ns, ne, na = 0, nsp = 0;
  if (g->opset < 10) {
    ns = qcal_attr_ints(n, "starts", st, QCAL_MAX_DIMS);
    ne = qcal_attr_ints(n, "ends", en, QCAL_MAX_DIMS);
    na = qcal_attr_ints(n, "axes", ax, QCAL_MAX_DIMS);
  } else {
    QCAL_TRY(qcal_const_ints(g, n, 1, st, QCAL_MAX_DIMS, &ns));
    QCAL_TRY(qcal_const_ints(g, n, 2, en, QCAL_MAX_DIMS, &ne));
    QCAL_TRY(qcal_const_ints(g, n, 3, ax, QCAL_MAX_DIMS, &na));
    QCAL_TRY(qcal_const_ints(g, n, 4, sp, QCAL_MAX_DIMS, &nsp));
  }
  if (ns != ne || ns < 0 || (na && na != ns) || (nsp && nsp != ns))
    return qcal_node_error(g, n, QCAL_EFORMAT, "starts, ends, axes and steps differ in length");
  for (int d = 0; d < x->ndim; d++)
    p->start[d] = 0, p->step[d] = 1, p->len[d] = x->shape[d];
  bool seen[QCAL_MAX_DIMS] = {0};
  for (int k = 0; k < ns; k++) {
    int a;
    QCAL_TRY(qcal_norm_axis(g, n, na ? ax[k] : k, x->ndim, &a));
    if (seen[a])
      return qcal_node_error(g, n, QCAL_EFORMAT, "axis %d repeated", a);
    seen[a] = true;
    int64_t dim = x->shape[a], s = st[k], e = en[k], step = nsp ? sp[k] : 1;
    if (step == 0)
      return qcal_node_error(g, n, QCAL_EFORMAT, "step 0");
    if (s < 0)
      s += dim;
    if (e < 0 && e > INT64_MIN / 2)
      e += dim;
    int64_t len;
    if (step > 0) {
      s = s < 0 ? 0 : s > dim ? dim : s;
      e = e < 0 ? 0 : e > dim ? dim : e;
      len = e > s ? (e - s + step - 1) / step : 0;
    } else {
      s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
      e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
      len = s > e ? (s - e + (-step) - 1) / (-step) : 0;
    }
    p->start[a] = s, p->step[a] = step, p->len[a] = len;
  }
  return QCAL_OK;
}

qcal_status qcal_infer_slice(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  slice_plan p;
  QCAL_TRY(slice_make(g, n, &p));
  return qcal_set_out(g, n, 0, x->dtype, x->ndim, p.len);
}

qcal_status qcal_fwd_slice(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  slice_plan p;
  QCAL_TRY(slice_make(g, n, &p));
  int64_t xs[QCAL_MAX_DIMS];
  qcal_strides(x->ndim, x->shape, xs);
  size_t es = ESZ(x);
  int nd = x->ndim;
  int64_t last = nd ? p.len[nd - 1] : 1, rows = last ? (int64_t)(y->numel / (size_t)last) : 0;
#pragma omp parallel for if (y->numel > 65536)
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, off = 0;
    for (int d = nd - 2; d >= 0; d--) {
      int64_t i = rem % p.len[d];
      rem /= p.len[d];
      off += (p.start[d] + i * p.step[d]) * xs[d];
    }
    int64_t s0 = nd ? p.start[nd - 1] : 0, sl = nd ? p.step[nd - 1] : 1;
    char *yp = (char *)y->data + (size_t)(r * last) * es;
    const char *xp = (const char *)x->data;
    if (sl == 1)
      memcpy(yp, xp + (size_t)(off + s0) * es, (size_t)last * es);
    else
      for (int64_t i = 0; i < last; i++)
        memcpy(yp + (size_t)i * es, xp + (size_t)(off + s0 + i * sl) * es, es);
  }
  return QCAL_OK;
}

/* ---- Gather (indices any int dtype, negative from the end) */
qcal_status qcal_infer_gather(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0), *idx = qcal_in(g, n, 1);
  if (idx->dtype != QCAL_DT_I64 && idx->dtype != QCAL_DT_I32)
    return qcal_node_error(g, n, QCAL_EDTYPE, "indices are %s, expected int64 or int32",
                           qcal_dtype_name(idx->dtype));
  int axis;
  QCAL_TRY(qcal_norm_axis(g, n, qcal_attr_int(n, "axis", 0), x->ndim, &axis));
  int r = x->ndim - 1 + idx->ndim;
  if (r > QCAL_MAX_DIMS)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "result would have %d dims", r);
  int64_t s[QCAL_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < axis; d++)
    s[k++] = x->shape[d];
  for (int d = 0; d < idx->ndim; d++)
    s[k++] = idx->shape[d];
  for (int d = axis + 1; d < x->ndim; d++)
    s[k++] = x->shape[d];
  return qcal_set_out(g, n, 0, x->dtype, r, s);
}

qcal_status qcal_fwd_gather(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0), *idx = qcal_in(g, n, 1);
  qcal_value *y = qcal_out(g, n, 0);
  int axis;
  QCAL_TRY(qcal_norm_axis(g, n, qcal_attr_int(n, "axis", 0), x->ndim, &axis));
  qcal_layout l; /* [outer, axis, inner] around the (normalised) axis */
  QCAL_TRY(qcal_layout_make(x->ndim, x->shape, axis, &l));
  size_t outer = l.outer, inner = l.inner * ESZ(x);
  int64_t dim = x->shape[axis];
  for (size_t o = 0; o < outer; o++)
    for (size_t k = 0; k < idx->numel; k++) {
      int64_t i = (int64_t)qcal_value_get(idx, k);
      if (i < 0)
        i += dim;
      if (i < 0 || i >= dim)
        return qcal_node_error(g, n, QCAL_EDATA, "index %lld is out of range for dim %lld",
                               (long long)qcal_value_get(idx, k), (long long)dim);
      memcpy((char *)y->data + (o * idx->numel + k) * inner,
             (const char *)x->data + (o * (size_t)dim + (size_t)i) * inner, inner);
    }
  return QCAL_OK;
}

/* ---- Expand: bidirectional broadcast to a shape */
qcal_status qcal_infer_expand(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int64_t s[QCAL_MAX_DIMS], out[QCAL_MAX_DIMS];
  int ns;
  QCAL_TRY(qcal_const_ints(g, n, 1, s, QCAL_MAX_DIMS, &ns));
  int r = ns > x->ndim ? ns : x->ndim;
  for (int d = 0; d < r; d++) {
    int dx = d - (r - x->ndim), ds = d - (r - ns);
    int64_t a = dx < 0 ? 1 : x->shape[dx], b = ds < 0 ? 1 : s[ds];
    if (b < 0 || b > ((int64_t)1 << 40))
      return qcal_node_error(g, n, QCAL_EFORMAT, "shape value %lld", (long long)b);
    if (a != b && a != 1 && b != 1)
      return qcal_node_error(g, n, QCAL_EFORMAT, "cannot expand dim %lld to %lld", (long long)a,
                             (long long)b);
    out[d] = a == 1 ? b : a;
  }
  return qcal_set_out(g, n, 0, x->dtype, r, out);
}

qcal_status qcal_fwd_expand(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  int64_t xs[QCAL_MAX_DIMS];
  qcal_strides(x->ndim, x->shape, xs);
  size_t es = ESZ(x);
  int r = y->ndim, off = r - x->ndim;
#pragma omp parallel for if (y->numel > 65536)
  for (size_t k = 0; k < y->numel; k++) {
    size_t rem = k, src = 0;
    for (int d = r - 1; d >= 0; d--) {
      size_t i = rem % (size_t)y->shape[d];
      rem /= (size_t)y->shape[d];
      int dx = d - off;
      if (dx >= 0 && x->shape[dx] != 1)
        src += i * (size_t)xs[dx];
    }
    memcpy((char *)y->data + k * es, (const char *)x->data + src * es, es);
  }
  return QCAL_OK;
}

/* ---- Pad: constant, reflect, edge (negative pads crop) */
static qcal_status pad_args(qcal_graph *g, qcal_node *n, int64_t *pads, int *mode, double *cval) {
  const qcal_value *x = qcal_in(g, n, 0);
  int np;
  if (g->opset < 11) {
    np = qcal_attr_ints(n, "pads", pads, 2 * QCAL_MAX_DIMS);
    *cval = qcal_attr_float(n, "value", 0);
  } else {
    QCAL_TRY(qcal_const_ints(g, n, 1, pads, 2 * QCAL_MAX_DIMS, &np));
    const qcal_value *cv = qcal_in(g, n, 2);
    *cval = 0;
    if (cv) {
      if (cv->kind != QCAL_VAL_CONST)
        return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "constant_value must be a constant");
      if (cv->numel)
        *cval = qcal_value_get(cv, 0);
    }
  }
  if (np != 2 * x->ndim)
    return qcal_node_error(g, n, QCAL_EFORMAT, "pads has %d values for rank %d", np, x->ndim);
  const char *m = qcal_attr_str(n, "mode", "constant");
  *mode = !strcmp(m, "constant") ? 0 : !strcmp(m, "reflect") ? 1 : !strcmp(m, "edge") ? 2 : -1;
  if (*mode < 0)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'mode' = '%s' is not supported", m);
  for (int d = 0; d < 2 * x->ndim; d++)
    if (pads[d] < -((int64_t)1 << 40) || pads[d] > ((int64_t)1 << 40))
      return qcal_node_error(g, n, QCAL_EFORMAT, "pad %lld is out of range", (long long)pads[d]);
  for (int d = 0; d < x->ndim; d++) {
    int64_t o = x->shape[d] + pads[d] + pads[d + x->ndim];
    if (o < 0)
      return qcal_node_error(g, n, QCAL_EFORMAT, "pads crop dim %d below zero", d);
    if (*mode == 1 && (pads[d] >= x->shape[d] || pads[d + x->ndim] >= x->shape[d]) &&
        (pads[d] > 0 || pads[d + x->ndim] > 0))
      return qcal_node_error(g, n, QCAL_EFORMAT, "reflect pad of %lld/%lld on dim %d of size %lld",
                             (long long)pads[d], (long long)pads[d + x->ndim], d,
                             (long long)x->shape[d]);
    if (*mode == 2 && x->shape[d] == 0 && o > 0)
      return qcal_node_error(g, n, QCAL_EFORMAT, "edge pad of an empty dim");
  }
  return QCAL_OK;
}

qcal_status qcal_infer_pad(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int64_t pads[2 * QCAL_MAX_DIMS], s[QCAL_MAX_DIMS];
  int mode;
  double cv;
  QCAL_TRY(pad_args(g, n, pads, &mode, &cv));
  for (int d = 0; d < x->ndim; d++)
    s[d] = x->shape[d] + pads[d] + pads[d + x->ndim];
  return qcal_set_out(g, n, 0, x->dtype, x->ndim, s);
}

/* Pad's source index for output position i - pad along a dimension of
 * length dim: itself inside; outside, -1 (constant mode), the reflection
 * (mode 1) or the nearest edge (mode 2). */
static int64_t pad_index(int64_t i, int64_t dim, int mode) {
  if (i >= 0 && i < dim)
    return i;
  if (mode == 0)
    return -1;
  if (mode == 1) {
    const int64_t period = 2 * (dim - 1);
    i = period ? ((i % period) + period) % period : 0;
    return i >= dim ? period - i : i;
  }
  return i < 0 ? 0 : dim - 1;
}

qcal_status qcal_fwd_pad(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  int64_t pads[2 * QCAL_MAX_DIMS], xs[QCAL_MAX_DIMS];
  int mode;
  double cv;
  QCAL_TRY(pad_args(g, n, pads, &mode, &cv));
  qcal_strides(x->ndim, x->shape, xs);
  const size_t es = ESZ(x);
  const int r = x->ndim;
  bool none = true;
  for (int d = 0; d < 2 * r; d++)
    none &= pads[d] == 0;
  if (none || r == 0) { /* exporters write zero pads (torch's AvgPool): a copy */
    if (es == 4)
      qcal_copy_f32(x->data, y->data, x->numel);
    else
      memcpy(y->data, x->data, x->numel * es);
    return QCAL_OK;
  }
  /* row by row of the last dimension: the source row from the outer
   * indices, then the row's inside part in one copy and its borders by
   * the mode */
  const int64_t W = y->shape[r - 1], xw = x->shape[r - 1], pl = pads[r - 1];
  const size_t rows = W ? y->numel / (size_t)W : 0;
#pragma omp parallel for schedule(static) if (y->numel > 65536)
  for (size_t row = 0; row < rows; row++) {
    size_t rem = row;
    int64_t src = 0;
    bool inside = true;
    for (int d = r - 2; d >= 0 && inside; d--) {
      int64_t i = pad_index((int64_t)(rem % (size_t)y->shape[d]) - pads[d], x->shape[d], mode);
      rem /= (size_t)y->shape[d];
      inside = i >= 0;
      src += i * xs[d];
    }
    const size_t k0 = row * (size_t)W;
    if (!inside) {
      for (int64_t j = 0; j < W; j++)
        qcal_value_put(y, k0 + (size_t)j, cv);
      continue;
    }
    const int64_t a = pl < 0 ? 0 : pl > W ? W : pl, b = pl + xw < W ? pl + xw : W;
    if (b > a)
      memcpy((char *)y->data + (k0 + (size_t)a) * es,
             (const char *)x->data + ((size_t)src + (size_t)(a - pl)) * es, (size_t)(b - a) * es);
    for (int64_t j = 0; j < W; j++) {
      if (j >= a && j < b)
        continue;
      const int64_t i = pad_index(j - pl, xw, mode);
      if (i < 0)
        qcal_value_put(y, k0 + (size_t)j, cv);
      else
        memcpy((char *)y->data + (k0 + (size_t)j) * es,
               (const char *)x->data + ((size_t)src + (size_t)i) * es, es);
    }
  }
  return QCAL_OK;
}

/* ---- Shape, Constant, ConstantOfShape, Range */
qcal_status qcal_infer_shape(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int64_t a = qcal_attr_int(n, "start", 0), b = qcal_attr_int(n, "end", x->ndim);
  a = a < 0 ? a + x->ndim : a;
  b = b < 0 ? b + x->ndim : b;
  a = a < 0 ? 0 : a > x->ndim ? x->ndim : a;
  b = b < 0 ? 0 : b > x->ndim ? x->ndim : b;
  int64_t len = b > a ? b - a : 0;
  return qcal_set_out(g, n, 0, QCAL_DT_I64, 1, &len);
}

qcal_status qcal_fwd_shape(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  int64_t a = qcal_attr_int(n, "start", 0);
  a = a < 0 ? a + x->ndim : a;
  a = a < 0 ? 0 : a;
  for (size_t k = 0; k < y->numel; k++)
    ((int64_t *)y->data)[k] = x->shape[a + (int64_t)k];
  return QCAL_OK;
}

qcal_status qcal_infer_constant(qcal_graph *g, qcal_node *n) {
  const qcal_attr *t = qcal_node_attr(n, "value");
  if (t && t->type == QCAL_ATTR_TENSOR) {
    const qcal_value *v = &g->values[t->i];
    return qcal_set_out(g, n, 0, v->dtype, v->ndim, v->shape);
  }
  const qcal_attr *a;
  if ((a = qcal_node_attr(n, "value_float")))
    return qcal_set_out(g, n, 0, QCAL_DT_F32, 0, NULL);
  if ((a = qcal_node_attr(n, "value_int")))
    return qcal_set_out(g, n, 0, QCAL_DT_I64, 0, NULL);
  int64_t len;
  if ((a = qcal_node_attr(n, "value_floats")) && a->type == QCAL_ATTR_FLOATS)
    return len = a->n, qcal_set_out(g, n, 0, QCAL_DT_F32, 1, &len);
  if ((a = qcal_node_attr(n, "value_ints")) && a->type == QCAL_ATTR_INTS)
    return len = a->n, qcal_set_out(g, n, 0, QCAL_DT_I64, 1, &len);
  return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                         "needs attribute 'value' (a tensor) or value_float(s)/value_int(s)");
}

qcal_status qcal_fwd_constant(qcal_graph *g, qcal_node *n) {
  qcal_value *y = qcal_out(g, n, 0);
  const qcal_attr *t = qcal_node_attr(n, "value"), *a;
  if (t && t->type == QCAL_ATTR_TENSOR)
    memcpy(y->data, g->values[t->i].data, y->numel * ESZ(y));
  else if ((a = qcal_node_attr(n, "value_float")))
    ((float *)y->data)[0] = a->f;
  else if ((a = qcal_node_attr(n, "value_int")))
    ((int64_t *)y->data)[0] = a->i;
  else if ((a = qcal_node_attr(n, "value_floats")))
    memcpy(y->data, a->floats, (size_t)a->n * 4);
  else if ((a = qcal_node_attr(n, "value_ints")))
    memcpy(y->data, a->ints, (size_t)a->n * 8);
  return QCAL_OK;
}

qcal_status qcal_infer_constant_of_shape(qcal_graph *g, qcal_node *n) {
  int64_t s[QCAL_MAX_DIMS];
  int ns;
  QCAL_TRY(qcal_const_ints(g, n, 0, s, QCAL_MAX_DIMS, &ns));
  const qcal_attr *t = qcal_node_attr(n, "value");
  qcal_dtype dt = QCAL_DT_F32;
  if (t) {
    if (t->type != QCAL_ATTR_TENSOR || g->values[t->i].numel != 1)
      return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'value' must be a one-element tensor");
    dt = g->values[t->i].dtype;
  }
  return qcal_set_out(g, n, 0, dt, ns, s);
}

qcal_status qcal_fwd_constant_of_shape(qcal_graph *g, qcal_node *n) {
  qcal_value *y = qcal_out(g, n, 0);
  const qcal_attr *t = qcal_node_attr(n, "value");
  double v = t ? qcal_value_get(&g->values[t->i], 0) : 0;
  for (size_t k = 0; k < y->numel; k++)
    qcal_value_put(y, k, v);
  return QCAL_OK;
}

qcal_status qcal_infer_range(qcal_graph *g, qcal_node *n) {
  const qcal_value *v[3] = {qcal_in(g, n, 0), qcal_in(g, n, 1), qcal_in(g, n, 2)};
  for (int k = 0; k < 3; k++) {
    if (v[k]->kind != QCAL_VAL_CONST || v[k]->numel != 1)
      return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "input %d must be a constant scalar", k);
    if (v[k]->dtype != v[0]->dtype)
      return qcal_node_error(g, n, QCAL_EDTYPE, "inputs differ in dtype");
  }
  double s = qcal_value_get(v[0], 0), l = qcal_value_get(v[1], 0), d = qcal_value_get(v[2], 0);
  if (d == 0)
    return qcal_node_error(g, n, QCAL_EFORMAT, "delta is 0");
  double cnt = ceil((l - s) / d);
  if (!(cnt < 1e12))
    return qcal_node_error(g, n, QCAL_EFORMAT, "range of %g elements", cnt);
  int64_t len = cnt > 0 ? (int64_t)cnt : 0;
  return qcal_set_out(g, n, 0, v[0]->dtype, 1, &len);
}

qcal_status qcal_fwd_range(qcal_graph *g, qcal_node *n) {
  const qcal_value *v0 = qcal_in(g, n, 0), *v2 = qcal_in(g, n, 2);
  qcal_value *y = qcal_out(g, n, 0);
  double s = qcal_value_get(v0, 0), d = qcal_value_get(v2, 0);
  for (size_t k = 0; k < y->numel; k++)
    qcal_value_put(y, k, s + (double)k * d);
  return QCAL_OK;
}

/* ---- DepthToSpace (DCR, as TF's NHWC depth_to_space maps to NCHW; CRD) */
qcal_status qcal_infer_depth_to_space(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int64_t bs = qcal_attr_int(n, "blocksize", 0);
  const char *mode = qcal_attr_str(n, "mode", "DCR");
  if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'mode' = '%s' is not supported",
                           mode);
  if (x->ndim != 4 || bs < 1 || bs > 4096 || x->shape[1] % (bs * bs))
    return qcal_node_error(g, n, QCAL_EFORMAT,
                           "needs a 4-D input whose channels divide by "
                           "blocksize^2 (blocksize %lld)",
                           (long long)bs);
  int64_t s[4] = {x->shape[0], x->shape[1] / (bs * bs), x->shape[2] * bs, x->shape[3] * bs};
  return qcal_set_out(g, n, 0, x->dtype, 4, s);
}

qcal_status qcal_fwd_depth_to_space(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  int64_t bs = qcal_attr_int(n, "blocksize", 0);
  bool crd = !strcmp(qcal_attr_str(n, "mode", "DCR"), "CRD");
  int64_t N = y->shape[0], C = y->shape[1], H = x->shape[2], W = x->shape[3];
  size_t es = ESZ(x);
  for (int64_t b = 0; b < N; b++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t h = 0; h < H * bs; h++)
        for (int64_t w = 0; w < W * bs; w++) {
          int64_t i = h % bs, j = w % bs;
          int64_t ic = crd ? c * bs * bs + i * bs + j : (i * bs + j) * C + c;
          size_t src = (size_t)(((b * x->shape[1] + ic) * H + h / bs) * W + w / bs);
          size_t dst = (size_t)(((b * C + c) * H * bs + h) * W * bs + w);
          memcpy((char *)y->data + dst * es, (const char *)x->data + src * es, es);
        }
  return QCAL_OK;
}
