/* Output sizes and padding of convolution and pooling windows, with ONNX's
 * auto_pad rules (SAME_UPPER puts the odd pad at the end). */
#include <string.h>

#include "graph/internal.h"

qcal_status qcal_geom_parse(qcal_graph *g, qcal_node *n, const qcal_value *x, const int64_t *ksize,
                            bool transpose, bool pool, qcal_geom *o) {
  int nsp = x->ndim - 2;
  if (nsp < 1 || nsp > 2)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                           "input has rank %d; only 1-D and 2-D spatial inputs are supported",
                           x->ndim);
  int64_t k[2], s[2] = {1, 1}, d[2] = {1, 1}, p[4] = {0, 0, 0, 0}, op[2] = {0, 0}, os[2];
  int nk = qcal_attr_ints(n, "kernel_shape", k, 2);
  if (nk < 0 || (nk && nk != nsp))
    return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'kernel_shape' must have %d values", nsp);
  if (!nk) {
    if (!ksize)
      return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'kernel_shape' is missing");
    memcpy(k, ksize, (size_t)nsp * sizeof *k);
  } else if (ksize) {
    for (int i = 0; i < nsp; i++)
      if (k[i] != ksize[i])
        return qcal_node_error(g, n, QCAL_EFORMAT,
                               "attribute 'kernel_shape' disagrees with the weight's shape");
  }
  int ns = qcal_attr_ints(n, "strides", s, 2), nd = qcal_attr_ints(n, "dilations", d, 2);
  int np = qcal_attr_ints(n, "pads", p, 4);
  if ((ns && ns != nsp) || (nd && nd != nsp) || (np && np != 2 * nsp))
    return qcal_node_error(g, n, QCAL_EFORMAT,
                           "attributes 'strides', 'dilations' and 'pads' must match %d spatial "
                           "dims",
                           nsp);
  int nop = 0, nos = 0;
  if (transpose) {
    nop = qcal_attr_ints(n, "output_padding", op, 2);
    nos = qcal_attr_ints(n, "output_shape", os, 2);
    if ((nop && nop != nsp) || (nos && nos != nsp))
      return qcal_node_error(g, n, QCAL_EFORMAT,
                             "attributes 'output_padding'/'output_shape' must have %d values", nsp);
  }
  bool ceil = pool && qcal_attr_int(n, "ceil_mode", 0) != 0;
  const char *ap = qcal_attr_str(n, "auto_pad", "NOTSET");
  int mode = !strcmp(ap, "NOTSET")       ? 0
             : !strcmp(ap, "SAME_UPPER") ? 1
             : !strcmp(ap, "SAME_LOWER") ? 2
             : !strcmp(ap, "VALID")      ? 3
                                         : -1;
  if (mode < 0)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'auto_pad' = '%s' is not supported",
                           ap);
  /* 1-D: a unit leading spatial dim */
  int off = 2 - nsp;
  for (int i = 0; i < 2; i++) {
    o->k[i] = 1, o->s[i] = 1, o->d[i] = 1, o->pb[i] = 0, o->pe[i] = 0, o->opad[i] = 0;
    o->in[i] = 1, o->out[i] = 1;
  }
  for (int i = 0; i < nsp; i++) {
    int j = i + off;
    o->k[j] = k[i];
    o->s[j] = s[i];
    o->d[j] = d[i];
    o->pb[j] = p[i];
    o->pe[j] = p[i + nsp];
    o->opad[j] = op[i];
    o->in[j] = x->shape[2 + i];
    const int64_t big = (int64_t)1 << 24;
    if (k[i] < 1 || s[i] < 1 || d[i] < 1 || p[i] < 0 || p[i + nsp] < 0 || op[i] < 0 || k[i] > big ||
        s[i] > big || d[i] > big || p[i] > big || p[i + nsp] > big || op[i] > big)
      return qcal_node_error(g, n, QCAL_EFORMAT,
                             "kernel, strides and dilations must be 1..2^24 and pads 0..2^24");
  }
  for (int j = off; j < 2; j++) {
    int64_t ext = (o->k[j] - 1) * o->d[j] + 1;
    if (!transpose) {
      if (mode == 1 || mode == 2) {
        int64_t out = (o->in[j] + o->s[j] - 1) / o->s[j];
        int64_t tot = (out - 1) * o->s[j] + ext - o->in[j];
        tot = tot < 0 ? 0 : tot;
        o->pb[j] = mode == 1 ? tot / 2 : tot - tot / 2;
        o->pe[j] = tot - o->pb[j];
      } else if (mode == 3) {
        o->pb[j] = o->pe[j] = 0;
      }
      int64_t span = o->in[j] + o->pb[j] + o->pe[j] - ext;
      if (span < 0)
        return qcal_node_error(g, n, QCAL_EFORMAT,
                               "window %lld is larger than the padded input %lld", (long long)ext,
                               (long long)(o->in[j] + o->pb[j] + o->pe[j]));
      o->out[j] = (ceil ? (span + o->s[j] - 1) / o->s[j] : span / o->s[j]) + 1;
      /* ceil mode: the last window must start inside the input or left pad */
      if (ceil && (o->out[j] - 1) * o->s[j] >= o->in[j] + o->pb[j])
        o->out[j]--;
    } else {
      int64_t full = o->s[j] * (o->in[j] - 1) + o->opad[j] + ext;
      if (nos) {
        int64_t want = os[j - off], tot = full - want;
        if (want < 1 || want > ((int64_t)1 << 40))
          return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'output_shape' out of range");
        if (tot < 0) /* a larger output_shape pads the end (bias only there) */
          return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                                 "attribute 'output_shape' larger than the full output");
        /* ONNX ConvTranspose: the odd pad goes to the end for SAME_UPPER */
        o->pb[j] = mode == 1 ? tot / 2 : tot - tot / 2;
        o->pe[j] = tot - o->pb[j];
      } else if (mode == 1 || mode == 2) {
        int64_t want = o->in[j] * o->s[j], tot = full - want;
        tot = tot < 0 ? 0 : tot;
        o->pb[j] = mode == 1 ? tot / 2 : tot - tot / 2;
        o->pe[j] = tot - o->pb[j];
      } else if (mode == 3) {
        o->pb[j] = o->pe[j] = 0;
      }
      o->out[j] = full - o->pb[j] - o->pe[j];
      if (o->out[j] < 1)
        return qcal_node_error(g, n, QCAL_EFORMAT, "output size would be %lld",
                               (long long)o->out[j]);
    }
  }
  return QCAL_OK;
}

int64_t qcal_geom_taps(const qcal_geom *ge, int64_t oy, int64_t ox, int64_t *taps) {
  int64_t n = 0;
  for (int64_t ky = 0; ky < ge->k[0]; ky++) {
    int64_t yy = oy * ge->s[0] - ge->pb[0] + ky * ge->d[0];
    for (int64_t kx = 0; kx < ge->k[1] && yy >= 0 && yy < ge->in[0]; kx++) {
      int64_t xx = ox * ge->s[1] - ge->pb[1] + kx * ge->d[1];
      if (xx >= 0 && xx < ge->in[1])
        taps[n++] = yy * ge->in[1] + xx;
    }
  }
  return n;
}

size_t qcal_geom_taps_cap(const qcal_geom *ge) {
  int64_t r = ge->k[0] < ge->in[0] ? ge->k[0] : ge->in[0];
  int64_t c = ge->k[1] < ge->in[1] ? ge->k[1] : ge->in[1];
  return (size_t)(r * c);
}
