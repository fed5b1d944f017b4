/* Element-wise ops: one-input activations, Identity/Dropout, Cast, and the
 * numpy-broadcasting binary ops and Where. float32 runs a tight loop; the
 * integer dtypes that shape sub-graphs use go through a generic path. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "graph/internal.h"
#include "graph/simd.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* glibc's libmvec (linked; within 4 ulp): loops over these vectorize
 * through its SSE, AVX2 and AVX-512 variants, as -ffast-math's math.h
 * would declare them. */
float erff(float) __attribute__((simd("notinbranch")));
float expf(float) __attribute__((simd("notinbranch")));
float tanhf(float) __attribute__((simd("notinbranch")));
#endif

/* ---- one input */

/* This thread's part [*lo, *hi) of n elements: whole 64-byte lines, so
 * that no two threads write one. */
static void thread_span(size_t n, size_t *lo, size_t *hi) {
  const size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
  *lo = (n * t / nt) & ~(size_t)15;
  *hi = t + 1 == nt ? n : (n * (t + 1) / nt) & ~(size_t)15;
}

/* One thread's span of an activation. The result of every branch is
 * computed unconditionally so that the compiler can vectorize (a
 * multiplication only on some lanes would need trapping-math exceptions);
 * x == y is allowed: lane i reads x[i] before it writes y[i]. */
QCAL_SIMD_CLONES static void act_span(qcal_act act, float alpha, float beta, const float *x,
                                      float *y, size_t n) {
  switch (act) {
  case QCAL_ACT_NONE:
    if (x != y)
      memmove(y, x, n * sizeof *x);
    break;
  case QCAL_ACT_RELU:
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
      const float v = x[i], m = v * alpha;
      y[i] = v < 0 ? m : v;
    }
    break;
  case QCAL_ACT_CLIP:
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
      const float v = x[i];
      y[i] = v < alpha ? alpha : v > beta ? beta : v;
    }
    break;
  case QCAL_ACT_SIGMOID:
    for (size_t i = 0; i < n; i++)
      y[i] = 1.0f / (1.0f + expf(-x[i]));
    break;
  case QCAL_ACT_HARDSWISH:
#pragma omp simd
    for (size_t i = 0; i < n; i++)
      y[i] = qcal_hswish(x[i]);
    break;
  case QCAL_ACT_SWISH:
    for (size_t i = 0; i < n; i++)
      y[i] = x[i] / (1.0f + expf(-x[i]));
    break;
  }
}

void qcal_act_apply_to(qcal_act act, float alpha, float beta, const float *x, float *y, size_t n) {
  const bool cheap = act != QCAL_ACT_SIGMOID && act != QCAL_ACT_SWISH;
  if (n < (cheap ? 65536u : 16384u)) {
    act_span(act, alpha, beta, x, y, n);
    return;
  }
#pragma omp parallel
  {
    size_t lo, hi;
    thread_span(n, &lo, &hi);
    act_span(act, alpha, beta, x + lo, y + lo, hi - lo);
  }
}

void qcal_act_apply(qcal_act act, float alpha, float beta, float *x, size_t n) {
  qcal_act_apply_to(act, alpha, beta, x, x, n);
}

/* A large copy split over the team (one thread's memcpy reaches a fraction
 * of the memory bandwidth two cores have). */
void qcal_copy_f32(const float *x, float *y, size_t n) {
  qcal_act_apply_to(QCAL_ACT_NONE, 0, 0, x, y, n);
}

bool qcal_node_act(qcal_graph *g, qcal_node *c, qcal_act *a, float *alpha, float *beta) {
  *alpha = 0, *beta = 0;
  switch (c->op) {
  case QCAL_GOP_Relu:
    *a = QCAL_ACT_RELU;
    return true;
  case QCAL_GOP_LeakyRelu:
    *a = QCAL_ACT_RELU;
    *alpha = qcal_attr_float(c, "alpha", 0.01f);
    return true;
  case QCAL_GOP_Sigmoid:
    *a = QCAL_ACT_SIGMOID;
    return true;
  case QCAL_GOP_HardSwish:
    *a = QCAL_ACT_HARDSWISH;
    return true;
  case QCAL_GOP_Clip: {
    *alpha = qcal_attr_float(c, "min", -INFINITY);
    *beta = qcal_attr_float(c, "max", INFINITY);
    for (int k = 1; k < 3 && k < c->nin; k++) {
      const qcal_value *v = qcal_in(g, c, k);
      if (v && v->kind != QCAL_VAL_CONST)
        return false;
    }
    if (qcal_const_float(g, c, 1, *alpha, alpha) || qcal_const_float(g, c, 2, *beta, beta))
      return false;
    *a = QCAL_ACT_CLIP;
    return true;
  }
  default:
    return false;
  }
}

qcal_status qcal_infer_unary(qcal_graph *g, qcal_node *n) {
  QCAL_TRY(qcal_want_f32(g, n, 0));
  const qcal_value *x = qcal_in(g, n, 0);
  if (n->op == QCAL_GOP_LeakyRelu)
    (void)qcal_attr_float(n, "alpha", 0.01f);
  if (n->op == QCAL_GOP_HardSigmoid) {
    (void)qcal_attr_float(n, "alpha", 0.2f);
    (void)qcal_attr_float(n, "beta", 0.5f);
  }
  if (n->op == QCAL_GOP_Clip) {
    (void)qcal_attr_float(n, "min", -INFINITY); /* opset < 11 */
    (void)qcal_attr_float(n, "max", INFINITY);
    for (int k = 1; k < 3; k++) {
      QCAL_TRY(qcal_want_f32(g, n, k));
      float f;
      QCAL_TRY(qcal_const_float(g, n, k, 0, &f));
    }
  }
  return qcal_set_out(g, n, 0, QCAL_DT_F32, x->ndim, x->shape);
}

/* One thread's span of a unary op, a loop per op so that each vectorizes
 * (Tanh, Erf and Exp through libmvec, declared above). */
/* y[i] = e of v = x[i], vectorized */
#define MAP(e)                                                                                     \
  _Pragma("omp simd") for (size_t i = 0; i < n; i++) {                                             \
    const float v = x[i];                                                                          \
    y[i] = (e);                                                                                    \
  }                                                                                                \
  break

/* One thread's span of a unary op, a loop per op so that each vectorizes
 * (Tanh, Erf and Exp through libmvec, declared above). */
QCAL_SIMD_CLONES static void unary_span(qcal_graph_op op, const float *x, float *y, size_t n) {
  switch (op) {
  case QCAL_GOP_Tanh:
    MAP(tanhf(v));
  case QCAL_GOP_Erf:
    MAP(erff(v));
  case QCAL_GOP_Exp:
    MAP(expf(v));
  case QCAL_GOP_Log:
    MAP(logf(v));
  case QCAL_GOP_Sqrt:
    MAP(sqrtf(v));
  case QCAL_GOP_Neg:
    MAP(-v);
  case QCAL_GOP_Abs:
    MAP(fabsf(v));
  case QCAL_GOP_Reciprocal:
    MAP(1.0f / v);
  default:
    if (x != y)
      memmove(y, x, n * sizeof *x);
    break;
  }
}
#undef MAP

qcal_status qcal_fwd_unary(qcal_graph *g, qcal_node *n) {
  const qcal_value *xv = qcal_in(g, n, 0);
  const float *x = xv->data;
  float *y = qcal_out(g, n, 0)->data;
  size_t cnt = xv->numel;
  float a = 0, b = 0;
  qcal_act act;
  /* the activations a Conv can fuse run through the same code unfused
   * (Clip's bounds are constants: inference refused the others) */
  if (qcal_node_act(g, n, &act, &a, &b)) {
    qcal_act_apply_to(act, a, b, x, y, cnt);
    return QCAL_OK;
  }
  switch (n->op) {
  case QCAL_GOP_Clip: /* inference accepts only constant scalar bounds */
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "bounds must be constant scalars");
  case QCAL_GOP_HardSigmoid:
    a = qcal_attr_float(n, "alpha", 0.2f);
    b = qcal_attr_float(n, "beta", 0.5f);
#pragma omp parallel for simd if (cnt > 65536)
    for (size_t i = 0; i < cnt; i++) {
      float v = a * x[i] + b;
      y[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    return QCAL_OK;
  default:
    break;
  }
  if (cnt < 16384) {
    unary_span(n->op, x, y, cnt);
    return QCAL_OK;
  }
#pragma omp parallel
  {
    size_t lo, hi;
    thread_span(cnt, &lo, &hi);
    unary_span(n->op, x + lo, y + lo, hi - lo);
  }
  return QCAL_OK;
}

/* ---- Identity, Dropout (inference: a copy, mask all true) */
qcal_status qcal_infer_identity(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  if (n->op == QCAL_GOP_Dropout) {
    (void)qcal_attr_int(n, "seed", 0);
    (void)qcal_attr_float(n, "ratio", 0.5f); /* opset < 12 */
    if (qcal_attr_int(n, "is_test", 1) == 0)
      return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'is_test' = 0 (training mode)");
    const qcal_value *tm = qcal_in(g, n, 2), *ratio = qcal_in(g, n, 1);
    /* training mode with a constant ratio of 0 drops nothing (torchvision's
     * Swin exports its attention dropout so) */
    bool none_dropped = ratio && ratio->kind == QCAL_VAL_CONST && ratio->numel == 1 &&
                        qcal_value_get(ratio, 0) == 0;
    if (tm && (tm->kind != QCAL_VAL_CONST || (qcal_value_get(tm, 0) != 0 && !none_dropped)))
      return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                             "input 'training_mode' must be a constant false (or the ratio 0)");
    QCAL_TRY(qcal_set_out(g, n, 1, QCAL_DT_BOOL, x->ndim, x->shape));
  }
  return qcal_set_out(g, n, 0, x->dtype, x->ndim, x->shape);
}

qcal_status qcal_fwd_identity(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  if (y->data != x->data && x->numel)
    memcpy(y->data, x->data, x->numel * qcal_dtype_size(x->dtype));
  qcal_value *mask = qcal_out(g, n, 1);
  if (mask && n->op == QCAL_GOP_Dropout)
    memset(mask->data, 1, mask->numel);
  return QCAL_OK;
}

/* ---- Cast */
int qcal_onnx_dtype_to_qcal(int onnx); /* graph/onnx.c; -1 when unsupported */

qcal_status qcal_infer_cast(qcal_graph *g, qcal_node *n) {
  int64_t to = qcal_attr_int(n, "to", -1);
  int dt = qcal_onnx_dtype_to_qcal((int)to);
  if (dt < 0)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'to' = %lld: unsupported dtype",
                           (long long)to);
  (void)qcal_attr_int(n, "saturate", 1);
  const qcal_value *x = qcal_in(g, n, 0);
  return qcal_set_out(g, n, 0, (qcal_dtype)dt, x->ndim, x->shape);
}

qcal_status qcal_fwd_cast(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  for (size_t k = 0; k < x->numel; k++)
    qcal_value_put(y, k, qcal_value_get(x, k));
  return QCAL_OK;
}

/* ---- broadcasting */
typedef struct bcast {
  int nd;
  int64_t dim[QCAL_MAX_DIMS];
  int64_t st[3][QCAL_MAX_DIMS]; /* per operand, 0 where broadcast */
} bcast;

static qcal_status bshape(qcal_graph *g, const qcal_node *n, int nops, const qcal_value *const *v,
                          int *nd, int64_t *out) {
  int r = 0;
  for (int k = 0; k < nops; k++)
    r = v[k]->ndim > r ? v[k]->ndim : r;
  for (int d = 0; d < r; d++) {
    int64_t s = 1;
    for (int k = 0; k < nops; k++) {
      int dd = d - (r - v[k]->ndim);
      int64_t e = dd < 0 ? 1 : v[k]->shape[dd];
      if (e == s || e == 1)
        continue;
      if (s != 1)
        return qcal_node_error(g, n, QCAL_EFORMAT,
                               "inputs cannot be broadcast together (dim %d: %lld vs %lld)", d,
                               (long long)s, (long long)e);
      s = e;
    }
    out[d] = s;
  }
  *nd = r;
  return QCAL_OK;
}

/* Strides per operand over the output shape, then adjacent dims merged where
 * every operand walks them contiguously (or all broadcast them). */
static void bplan(int nops, const qcal_value *const *v, int r, const int64_t *oshape, bcast *b) {
  int64_t st[3][QCAL_MAX_DIMS];
  for (int k = 0; k < nops; k++) {
    int64_t s = 1;
    for (int d = r - 1; d >= 0; d--) {
      int dd = d - (r - v[k]->ndim);
      int64_t e = dd < 0 ? 1 : v[k]->shape[dd];
      st[k][d] = e == 1 ? 0 : s;
      s *= e;
    }
  }
  b->nd = 0;
  for (int d = 0; d < r; d++) {
    if (oshape[d] == 1)
      continue;
    int m = b->nd;
    bool merge = m > 0;
    for (int k = 0; k < nops && merge; k++)
      merge = b->st[k][m - 1] == st[k][d] * oshape[d];
    if (merge) {
      b->dim[m - 1] *= oshape[d];
      for (int k = 0; k < nops; k++)
        b->st[k][m - 1] = st[k][d];
    } else {
      b->dim[m] = oshape[d];
      for (int k = 0; k < nops; k++)
        b->st[k][m] = st[k][d];
      b->nd++;
    }
  }
  if (!b->nd) {
    b->nd = 1;
    b->dim[0] = 1;
    for (int k = 0; k < nops; k++)
      b->st[k][0] = 0;
  }
}

qcal_status qcal_infer_binary(qcal_graph *g, qcal_node *n) {
  if (!qcal_in(g, n, 1)) /* Max/Min of one input */
    return qcal_infer_identity(g, n);
  const qcal_value *v[2] = {qcal_in(g, n, 0), qcal_in(g, n, 1)};
  qcal_dtype dt = v[0]->dtype;
  if (n->op == QCAL_GOP_Pow) {
    if (dt != QCAL_DT_F32 ||
        (v[1]->dtype != QCAL_DT_F32 && v[1]->dtype != QCAL_DT_I64 && v[1]->dtype != QCAL_DT_I32))
      return qcal_node_error(g, n, QCAL_EDTYPE, "Pow of %s by %s is not supported",
                             qcal_dtype_name(dt), qcal_dtype_name(v[1]->dtype));
  } else if (v[1]->dtype != dt) {
    return qcal_node_error(g, n, QCAL_EDTYPE, "inputs are %s and %s; they must match",
                           qcal_dtype_name(dt), qcal_dtype_name(v[1]->dtype));
  }
  bool f32 = dt == QCAL_DT_F32, ints = dt == QCAL_DT_I64 || dt == QCAL_DT_I32;
  bool ok = n->op == QCAL_GOP_PRelu   ? f32
            : n->op == QCAL_GOP_Equal ? f32 || ints || dt == QCAL_DT_BOOL
                                      : f32 || ints;
  if (!ok)
    return qcal_node_error(g, n, QCAL_EDTYPE, "%s inputs are not supported", qcal_dtype_name(dt));
  if (n->op == QCAL_GOP_Mod) {
    int64_t fm = qcal_attr_int(n, "fmod", 0);
    if (fm != 0 && fm != 1)
      return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'fmod' is %lld (0 or 1)",
                             (long long)fm);
    if (f32 && fm != 1)
      return qcal_node_error(g, n, QCAL_EFORMAT, "float inputs need fmod = 1 (ONNX Mod)");
  }
  if (n->op == QCAL_GOP_Add || n->op == QCAL_GOP_Sub || n->op == QCAL_GOP_Mul ||
      n->op == QCAL_GOP_Div) {
    if (qcal_attr_int(n, "broadcast", 1) == 0 || qcal_node_attr(n, "axis"))
      return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                             "legacy attributes 'broadcast'/'axis' (opset < 7)");
  }
  int nd = 0;
  int64_t shape[QCAL_MAX_DIMS];
  qcal_value *slope = qcal_in(g, n, 1);
  if (n->op == QCAL_GOP_PRelu && slope->kind == QCAL_VAL_CONST && slope->ndim == 1 &&
      v[0]->ndim > 2 && slope->shape[0] == v[0]->shape[1] &&
      slope->shape[0] != v[0]->shape[v[0]->ndim - 1]) {
    /* one slope per channel (PyTorch's nn.PReLU in opset < 7 exports): [C, 1, ...] */
    slope->ndim = v[0]->ndim - 1;
    for (int d = 1; d < slope->ndim; d++)
      slope->shape[d] = 1;
  }
  QCAL_TRY(bshape(g, n, 2, v, &nd, shape));
  return qcal_set_out(g, n, 0, n->op == QCAL_GOP_Equal ? QCAL_DT_BOOL : dt, nd, shape);
}

static inline float bin_f32(qcal_graph_op op, float a, float b) {
  switch (op) {
  case QCAL_GOP_Add:
    return a + b;
  case QCAL_GOP_Sub:
    return a - b;
  case QCAL_GOP_Mul:
    return a * b;
  case QCAL_GOP_Div:
    return a / b;
  case QCAL_GOP_Pow:
    return powf(a, b);
  case QCAL_GOP_PRelu:
    return a < 0 ? a * b : a;
  case QCAL_GOP_Max:
    return a > b || a != a ? a : b;
  case QCAL_GOP_Min:
    return a < b || a != a ? a : b;
  default:
    return 0;
  }
}

static double bin_gen(qcal_graph_op op, qcal_dtype dt, double a, double b) {
  bool ints = dt == QCAL_DT_I64 || dt == QCAL_DT_I32;
  switch (op) {
  case QCAL_GOP_Add:
    return a + b;
  case QCAL_GOP_Sub:
    return a - b;
  case QCAL_GOP_Mul:
    return a * b;
  case QCAL_GOP_Div:
    return ints ? (b != 0 ? trunc(a / b) : 0) : a / b;
  case QCAL_GOP_Pow:
    return pow(a, b);
  case QCAL_GOP_Equal:
    return a == b;
  case QCAL_GOP_Max:
    return a > b ? a : b;
  case QCAL_GOP_Min:
    return a < b ? a : b;
  default:
    return 0;
  }
}

/* ONNX Mod: fmod = 1 is C's fmod (the dividend's sign); fmod = 0, integers
 * only, takes the divisor's sign (Python's %). A zero divisor gives 0
 * rather than a trap (the spec leaves it undefined). */
static double mod_of(double a, double b, bool c_fmod) {
  if (b == 0)
    return 0;
  double r = fmod(a, b);
  if (!c_fmod && r != 0 && (r < 0) != (b < 0))
    r += b;
  return r;
}

/* Inner loop over the last merged dim with strides sa, sb in {0, 1}. */
static void f32_row(qcal_graph_op op, const float *a, int64_t sa, const float *b, int64_t sb,
                    float *y, int64_t len) {
#define ROW(expr)                                                                                  \
  do {                                                                                             \
    if (sa && sb) {                                                                                \
      _Pragma("omp simd") for (int64_t i = 0; i < len; i++) {                                      \
        float x0 = a[i], x1 = b[i];                                                                \
        y[i] = (expr);                                                                             \
      }                                                                                            \
    } else if (sa) {                                                                               \
      const float x1 = b[0];                                                                       \
      _Pragma("omp simd") for (int64_t i = 0; i < len; i++) {                                      \
        float x0 = a[i];                                                                           \
        y[i] = (expr);                                                                             \
      }                                                                                            \
    } else if (sb) {                                                                               \
      const float x0 = a[0];                                                                       \
      _Pragma("omp simd") for (int64_t i = 0; i < len; i++) {                                      \
        float x1 = b[i];                                                                           \
        y[i] = (expr);                                                                             \
      }                                                                                            \
    } else {                                                                                       \
      float x0 = a[0], x1 = b[0];                                                                  \
      for (int64_t i = 0; i < len; i++)                                                            \
        y[i] = (expr);                                                                             \
    }                                                                                              \
  } while (0)
  switch (op) {
  case QCAL_GOP_Add:
    ROW(x0 + x1);
    break;
  case QCAL_GOP_Sub:
    ROW(x0 - x1);
    break;
  case QCAL_GOP_Mul:
    ROW(x0 * x1);
    break;
  case QCAL_GOP_Div:
    ROW(x0 / x1);
    break;
  case QCAL_GOP_PRelu:
    ROW(x0 < 0 ? x0 * x1 : x0);
    break;
  case QCAL_GOP_Max:
    ROW(x0 > x1 || x0 != x0 ? x0 : x1);
    break;
  case QCAL_GOP_Min:
    ROW(x0 < x1 || x0 != x0 ? x0 : x1);
    break;
  default:
    for (int64_t i = 0; i < len; i++)
      y[i] = bin_f32(op, a[sa * i], b[sb * i]);
  }
#undef ROW
}

int qcal_mul_channel_scale(qcal_graph *g, const qcal_node *n) {
  if (n->op != QCAL_GOP_Mul)
    return -1;
  for (int xi = 0; xi < 2; xi++) {
    const qcal_value *x = qcal_in(g, n, xi), *s = qcal_in(g, n, 1 - xi);
    if (x->ndim == 4 && s->ndim == 4 && x->dtype == QCAL_DT_F32 && s->dtype == QCAL_DT_F32 &&
        s->shape[1] == x->shape[1] && s->shape[2] == 1 && s->shape[3] == 1 &&
        (s->shape[0] == 1 || s->shape[0] == x->shape[0]) && (x->shape[2] > 1 || x->shape[3] > 1))
      return xi;
  }
  return -1;
}

/* y = x * s[n, c] with x and y in a [N][C/B][H][W][B] layout. */
static void mul_blocked(const qcal_value *x, const qcal_value *s, qcal_value *y) {
  int B = qcal_fmt_cblock(x->fmt);
  int64_t N = x->shape[0], C = x->shape[1], CB = (C + B - 1) / B, HW = x->shape[2] * x->shape[3];
  const float *xd = x->data, *sd = s->data;
  float *yd = y->data;
#pragma omp parallel for collapse(2) if (x->numel > 32768)
  for (int64_t nn = 0; nn < N; nn++)
    for (int64_t cb = 0; cb < CB; cb++) {
      float sc[64];
      for (int b = 0; b < B; b++) {
        int64_t c = cb * B + b;
        sc[b] = c < C ? sd[(s->shape[0] == 1 ? 0 : nn) * C + c] : 0;
      }
      const float *xp = xd + (nn * CB + cb) * HW * B;
      float *yp = yd + (nn * CB + cb) * HW * B;
      for (int64_t i = 0; i < HW; i++)
        for (int b = 0; b < B; b++)
          yp[i * B + b] = xp[i * B + b] * sc[b];
    }
}

qcal_status qcal_fwd_binary(qcal_graph *g, qcal_node *n) {
  if (!qcal_in(g, n, 1))
    return qcal_fwd_identity(g, n);
  const qcal_value *v[2] = {qcal_in(g, n, 0), qcal_in(g, n, 1)};
  qcal_value *y = qcal_out(g, n, 0);
  if (y->fmt) {
    int xi = qcal_mul_channel_scale(g, n);
    mul_blocked(v[xi], v[1 - xi], y);
    return QCAL_OK;
  }
  bcast b;
  bplan(2, v, y->ndim, y->shape, &b);
  int last = b.nd - 1;
  int64_t len = b.dim[last], rows = (int64_t)(y->numel / (size_t)(len ? len : 1));
  if (!y->numel)
    return QCAL_OK;
  /* x ** 2 (LayerNorm as exporters decompose it): a multiply */
  if (n->op == QCAL_GOP_Pow && v[1]->numel == 1 && v[0]->dtype == QCAL_DT_F32 &&
      qcal_value_get(v[1], 0) == 2.0 && v[0]->numel == y->numel) {
    const float *xd = v[0]->data;
    float *yd = y->data;
#pragma omp parallel for simd if (y->numel > 65536)
    for (size_t i = 0; i < y->numel; i++)
      yd[i] = xd[i] * xd[i];
    return QCAL_OK;
  }
  bool fast = v[0]->dtype == QCAL_DT_F32 && v[1]->dtype == QCAL_DT_F32 &&
              y->dtype == QCAL_DT_F32 && /* Equal writes bool */
              (b.st[0][last] <= 1 && b.st[1][last] <= 1) && n->op != QCAL_GOP_Mod;
  const bool c_fmod = n->op == QCAL_GOP_Mod && qcal_attr_int(n, "fmod", 0) == 1;
#pragma omp parallel for schedule(static) if (y->numel > 32768 && rows > 1)
  for (int64_t r = 0; r < rows; r++) {
    int64_t oa = 0, ob = 0, rem = r;
    for (int d = last - 1; d >= 0; d--) {
      int64_t i = rem % b.dim[d];
      rem /= b.dim[d];
      oa += i * b.st[0][d];
      ob += i * b.st[1][d];
    }
    if (fast) {
      f32_row(n->op, (const float *)v[0]->data + oa, b.st[0][last], (const float *)v[1]->data + ob,
              b.st[1][last], (float *)y->data + r * len, len);
    } else {
      for (int64_t i = 0; i < len; i++) {
        double x0 = qcal_value_get(v[0], (size_t)(oa + i * b.st[0][last]));
        double x1 = qcal_value_get(v[1], (size_t)(ob + i * b.st[1][last]));
        qcal_value_put(y, (size_t)(r * len + i),
                       n->op == QCAL_GOP_Mod ? mod_of(x0, x1, c_fmod)
                                             : bin_gen(n->op, v[0]->dtype, x0, x1));
      }
    }
  }
  return QCAL_OK;
}

/* ---- Where(cond, x, y) */
qcal_status qcal_infer_where(qcal_graph *g, qcal_node *n) {
  const qcal_value *v[3] = {qcal_in(g, n, 0), qcal_in(g, n, 1), qcal_in(g, n, 2)};
  if (v[0]->dtype != QCAL_DT_BOOL)
    return qcal_node_error(g, n, QCAL_EDTYPE, "condition is %s, expected bool",
                           qcal_dtype_name(v[0]->dtype));
  if (v[1]->dtype != v[2]->dtype)
    return qcal_node_error(g, n, QCAL_EDTYPE, "X is %s and Y is %s; they must match",
                           qcal_dtype_name(v[1]->dtype), qcal_dtype_name(v[2]->dtype));
  int nd = 0;
  int64_t shape[QCAL_MAX_DIMS];
  QCAL_TRY(bshape(g, n, 3, v, &nd, shape));
  return qcal_set_out(g, n, 0, v[1]->dtype, nd, shape);
}

qcal_status qcal_fwd_where(qcal_graph *g, qcal_node *n) {
  const qcal_value *v[3] = {qcal_in(g, n, 0), qcal_in(g, n, 1), qcal_in(g, n, 2)};
  qcal_value *y = qcal_out(g, n, 0);
  bcast b;
  bplan(3, v, y->ndim, y->shape, &b);
  size_t es = qcal_dtype_size(y->dtype);
  for (size_t k = 0; k < y->numel; k++) {
    int64_t off[3] = {0, 0, 0}, rem = (int64_t)k;
    for (int d = b.nd - 1; d >= 0; d--) {
      int64_t i = rem % b.dim[d];
      rem /= b.dim[d];
      for (int o = 0; o < 3; o++)
        off[o] += i * b.st[o][d];
    }
    const qcal_value *src = ((const uint8_t *)v[0]->data)[off[0]] ? v[1] : v[2];
    int64_t so = src == v[1] ? off[1] : off[2];
    memcpy((char *)y->data + k * es, (const char *)src->data + (size_t)so * es, es);
  }
  return QCAL_OK;
}

/* ---- Not (bool): masks in shape sub-graphs (Swin), folded at prepare */
qcal_status qcal_infer_not(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  if (x->dtype != QCAL_DT_BOOL)
    return qcal_node_error(g, n, QCAL_EDTYPE, "input is %s, expected bool",
                           qcal_dtype_name(x->dtype));
  return qcal_set_out(g, n, 0, QCAL_DT_BOOL, x->ndim, x->shape);
}

qcal_status qcal_fwd_not(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  const uint8_t *xd = x->data;
  uint8_t *yd = qcal_out(g, n, 0)->data;
  for (size_t i = 0; i < x->numel; i++)
    yd[i] = !xd[i];
  return QCAL_OK;
}
