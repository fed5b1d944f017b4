/* Resize (opset 11+) and Upsample (opset 7-9): nearest on any dims, linear
 * on the last two (bilinear), with ONNX's coordinate transformation and
 * nearest rounding modes. */
#include <math.h>
#include <string.h>

#include "graph/internal.h"

typedef struct rz {
  int linear;  /* 0 nearest, 1 linear */
  int coord;   /* 0 half_pixel, 1 pytorch_half_pixel, 2 align_corners, 3 asymmetric,
                  4 tf_half_pixel_for_nn */
  int nearest; /* 0 round_prefer_floor, 1 round_prefer_ceil, 2 floor, 3 ceil */
  float scale[QCAL_MAX_DIMS];
  float lenf[QCAL_MAX_DIMS]; /* resized length before flooring (align_corners) */
  int64_t out[QCAL_MAX_DIMS];
} rz;

static int pick(const char *s, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(s, names[i]))
      return i;
  return -1;
}

static qcal_status rz_make(qcal_graph *g, qcal_node *n, rz *r) {
  const qcal_value *x = qcal_in(g, n, 0);
  static const char *const modes[] = {"nearest", "linear"};
  static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                       "asymmetric", "tf_half_pixel_for_nn"};
  static const char *const nears[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  bool up = n->op == QCAL_GOP_Upsample;
  const char *m = qcal_attr_str(n, "mode", "nearest");
  r->linear = pick(m, modes, 2);
  if (r->linear < 0 && up && !strcmp(m, "bilinear"))
    r->linear = 1;
  if (r->linear < 0)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'mode' = '%s' is not supported", m);
  const char *c =
      up ? "asymmetric" : qcal_attr_str(n, "coordinate_transformation_mode", "half_pixel");
  r->coord = pick(c, coords, 5);
  if (r->coord < 0)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                           "attribute 'coordinate_transformation_mode' = '%s' is not supported", c);
  const char *nm = up ? "floor" : qcal_attr_str(n, "nearest_mode", "round_prefer_floor");
  if (up)
    r->nearest = 2;
  else if ((r->nearest = pick(nm, nears, 4)) < 0)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                           "attribute 'nearest_mode' = '%s' is not supported", nm);
  if (!up) {
    (void)qcal_attr_float(n, "cubic_coeff_a", -0.75f);
    if (qcal_attr_int(n, "exclude_outside", 0))
      return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'exclude_outside' = 1");
    (void)qcal_attr_float(n, "extrapolation_value", 0);
  }
  /* scales or sizes */
  const qcal_value *sc = NULL, *sz = NULL;
  float sattr[QCAL_MAX_DIMS];
  const qcal_attr *sa = up ? qcal_node_attr(n, "scales") : NULL;
  if (up) {
    sc = qcal_in(g, n, 1);
  } else if (g->opset >= 11) {
    sc = qcal_in(g, n, 2);
    sz = qcal_in(g, n, 3);
  } else {
    sc = qcal_in(g, n, 1);
  }
  if (sc && sc->numel == 0)
    sc = NULL;
  if (sz && sz->numel == 0)
    sz = NULL;
  if (sz) {
    int64_t s[QCAL_MAX_DIMS];
    int ns;
    QCAL_TRY(qcal_const_ints(g, n, 3, s, QCAL_MAX_DIMS, &ns));
    if (ns != x->ndim)
      return qcal_node_error(g, n, QCAL_EFORMAT, "sizes has %d values for rank %d", ns, x->ndim);
    for (int d = 0; d < ns; d++) {
      if (s[d] < 0 || s[d] > ((int64_t)1 << 40))
        return qcal_node_error(g, n, QCAL_EFORMAT, "size %lld is out of range", (long long)s[d]);
      r->out[d] = s[d];
      r->lenf[d] = (float)s[d];
      r->scale[d] = x->shape[d] ? (float)s[d] / (float)x->shape[d] : 1;
    }
  } else if (sc || sa) {
    if (sc && (sc->kind != QCAL_VAL_CONST || sc->dtype != QCAL_DT_F32))
      return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "scales must be a float32 constant");
    int ns = sc ? (int)sc->numel : sa->n;
    if (ns != x->ndim || (!sc && sa->type != QCAL_ATTR_FLOATS))
      return qcal_node_error(g, n, QCAL_EFORMAT, "scales has %d values for rank %d", ns, x->ndim);
    for (int d = 0; d < ns; d++) {
      sattr[d] = sc ? ((const float *)sc->data)[d] : sa->floats[d];
      if (!(sattr[d] > 0) || !((float)x->shape[d] * sattr[d] < 1e12f))
        return qcal_node_error(g, n, QCAL_EFORMAT, "scale %g is out of range", sattr[d]);
      r->scale[d] = sattr[d];
      r->lenf[d] = (float)x->shape[d] * sattr[d];
      r->out[d] = (int64_t)floorf(r->lenf[d]);
    }
  } else {
    return qcal_node_error(g, n, QCAL_EFORMAT, "needs scales or sizes");
  }
  if (!up && qcal_in(g, n, 1) && qcal_in(g, n, 1)->numel && r->coord != 5)
    (void)0; /* roi only matters for tf_crop_and_resize, which is refused */
  if (r->linear)
    for (int d = 0; d + 2 < x->ndim; d++)
      if (r->out[d] != x->shape[d])
        return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                               "linear resize of dim %d (only the last two dims)", d);
  return QCAL_OK;
}

qcal_status qcal_infer_resize(qcal_graph *g, qcal_node *n) {
  QCAL_TRY(qcal_want_f32(g, n, 0));
  const qcal_value *x = qcal_in(g, n, 0);
  rz r;
  QCAL_TRY(rz_make(g, n, &r));
  return qcal_set_out(g, n, 0, QCAL_DT_F32, x->ndim, r.out);
}

static float src_coord(const rz *r, int64_t o, int64_t in, int64_t out, float scale, float lenf) {
  switch (r->coord) {
  case 0:
    return ((float)o + 0.5f) / scale - 0.5f;
  case 1:
    return out > 1 ? ((float)o + 0.5f) / scale - 0.5f : 0.0f;
  case 2:
    return lenf <= 1 ? 0.0f : (float)o * (float)(in - 1) / (lenf - 1);
  case 3:
    return (float)o / scale;
  default:
    return ((float)o + 0.5f) / scale;
  }
}

static int64_t nearest_idx(const rz *r, float x, int64_t in) {
  float f = floorf(x);
  int64_t i;
  switch (r->nearest) {
  case 0:
    i = (int64_t)(x - f == 0.5f ? f : roundf(x));
    break;
  case 1:
    i = (int64_t)(x - f == 0.5f ? f + 1 : roundf(x));
    break;
  case 2:
    i = (int64_t)f;
    break;
  default:
    i = (int64_t)ceilf(x);
    break;
  }
  return i < 0 ? 0 : i >= in ? in - 1 : i;
}

qcal_status qcal_fwd_resize(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  rz r;
  QCAL_TRY(rz_make(g, n, &r));
  const float *xd = x->data;
  float *yd = y->data;
  int nd = x->ndim;
  int64_t xs[QCAL_MAX_DIMS];
  qcal_strides(nd, x->shape, xs);
  if (!r.linear) {
    int64_t *map[QCAL_MAX_DIMS] = {0};
    qcal_status st = QCAL_OK;
    for (int d = 0; d < nd && !st; d++) {
      map[d] = qcal_alloc((size_t)(r.out[d] ? r.out[d] : 1) * sizeof(int64_t));
      if (!map[d]) {
        st = qcal_node_error(g, n, QCAL_ENOMEM, "out of memory");
        break;
      }
      for (int64_t o = 0; o < r.out[d]; o++)
        map[d][o] = nearest_idx(&r, src_coord(&r, o, x->shape[d], r.out[d], r.scale[d], r.lenf[d]),
                                x->shape[d]) *
                    xs[d];
    }
    if (!st) {
      int64_t last = r.out[nd - 1], rows = last ? (int64_t)(y->numel / (size_t)last) : 0;
#pragma omp parallel for if (y->numel > 65536)
      for (int64_t row = 0; row < rows; row++) {
        int64_t rem = row, off = 0;
        for (int d = nd - 2; d >= 0; d--) {
          off += map[d][rem % r.out[d]];
          rem /= r.out[d];
        }
        for (int64_t i = 0; i < last; i++)
          yd[row * last + i] = xd[off + map[nd - 1][i]];
      }
    }
    for (int d = 0; d < nd; d++)
      qcal_free(map[d]);
    return st;
  }
  /* bilinear over the last two dims (rank 1..: missing ones are unit) */
  int64_t ih = nd >= 2 ? x->shape[nd - 2] : 1, iw = x->shape[nd - 1];
  int64_t oh = nd >= 2 ? r.out[nd - 2] : 1, ow = r.out[nd - 1];
  float sh = nd >= 2 ? r.scale[nd - 2] : 1, sw = r.scale[nd - 1];
  int64_t planes = ih * iw > 0 ? (int64_t)(x->numel / (size_t)(ih * iw)) : 0;
#pragma omp parallel for if (y->numel > 16384)
  for (int64_t p = 0; p < planes; p++)
    for (int64_t oy = 0; oy < oh; oy++) {
      float fy = src_coord(&r, oy, ih, oh, sh, nd >= 2 ? r.lenf[nd - 2] : 1);
      fy = fy < 0 ? 0 : fy > (float)(ih - 1) ? (float)(ih - 1) : fy;
      int64_t y0 = (int64_t)fy, y1 = y0 + 1 < ih ? y0 + 1 : ih - 1;
      float wy = fy - (float)y0;
      for (int64_t ox = 0; ox < ow; ox++) {
        float fx = src_coord(&r, ox, iw, ow, sw, r.lenf[nd - 1]);
        fx = fx < 0 ? 0 : fx > (float)(iw - 1) ? (float)(iw - 1) : fx;
        int64_t x0 = (int64_t)fx, x1 = x0 + 1 < iw ? x0 + 1 : iw - 1;
        float wx = fx - (float)x0;
        const float *xp = xd + p * ih * iw;
        float top = xp[y0 * iw + x0] * (1 - wx) + xp[y0 * iw + x1] * wx;
        float bot = xp[y1 * iw + x0] * (1 - wx) + xp[y1 * iw + x1] * wx;
        yd[(p * oh + oy) * ow + ox] = top * (1 - wy) + bot * wy;
      }
    }
  return QCAL_OK;
}
