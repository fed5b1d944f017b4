/* Preprocessing resolution shared by infer and sweep: what the user gave,
 * over the model's known defaults (models.inc), over its declared input. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/datasets.h"

typedef struct {
  const char *file;
  int height, width, channels;
  double scale, offset;
  int quick;
} model_defaults;

static const model_defaults known[] = {
#define QCAL_MODEL_DEFAULTS(f, h, w, c, s, o, q, why) {f, h, w, c, s, o, q},
#include "datasets/models.inc"
#undef QCAL_MODEL_DEFAULTS
};

static int parse_floats(const char *s, float *v, int max) {
  int n = 0;
  const char *p = s;
  while (*p && n < max) {
    char *end;
    errno = 0;
    double x = strtod(p, &end);
    if (end == p || errno || !isfinite(x))
      return -1;
    v[n++] = (float)x;
    p = end;
    if (*p == ',')
      p++;
    else if (*p)
      return -1;
  }
  return *p ? -1 : n;
}

qcal_status qcal_preproc_resolve(const qcal_preproc_opts *o, const char *model_path, int ndim,
                                 const int64_t *d, qcal_preproc *p, bool *resize) {
  memset(p, 0, sizeof *p);
  *resize = false;
  if (ndim != 4)
    return qcal_error(QCAL_EINVAL, "%s: images need a model whose input has rank 4 (this one: %d)",
                      model_path, ndim);
  const char *base = strrchr(model_path, '/');
  base = base ? base + 1 : model_path;
  const model_defaults *k = NULL;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (!strcmp(base, known[i].file))
      k = &known[i];
  bool decl_nhwc = (d[3] == 1 || d[3] == 3) && !(d[1] == 1 || d[1] == 3);
  p->nchw = o->layout ? !strcmp(o->layout, "nchw") : !decl_nhwc;
  int64_t dc = p->nchw ? d[1] : d[3], dh = p->nchw ? d[2] : d[1], dw = p->nchw ? d[3] : d[2];
  p->channels = o->channels ? o->channels : k && k->channels ? k->channels : dc > 0 ? (int)dc : 3;
  p->height = k && k->height ? k->height : dh > 0 ? (int)dh : 0; /* 0: as declared */
  p->width = k && k->width ? k->width : dw > 0 ? (int)dw : 0;
  if (o->quick && k && k->quick)
    p->height = p->width = k->quick;
  if (o->size) {
    float hw[2];
    int n = parse_floats(o->size, hw, 2);
    if (n < 1 || hw[0] < 1 || hw[0] > 8192 || (n == 2 && (hw[1] < 1 || hw[1] > 8192)) ||
        hw[0] != (int)hw[0] || (n == 2 && hw[1] != (int)hw[1]))
      return qcal_error(QCAL_EINVAL, "--input-size expects H or H,W (1..8192), got '%s'", o->size);
    p->height = (int)hw[0];
    p->width = n == 2 ? (int)hw[1] : (int)hw[0];
  }
  if (!p->height || !p->width)
    return qcal_error(
        QCAL_EINVAL, "%s: the model's input size is symbolic; give --input-size H[,W]", model_path);
  if (dc > 0 && dc != p->channels)
    return qcal_error(QCAL_EINVAL, "%s: the model's input has %lld channels, not %d (--channels)",
                      model_path, (long long)dc, p->channels);
  *resize = (dh > 0 && dh != p->height) || (dw > 0 && dw != p->width);
  bool scale_given = !isnan(o->scale), offset_given = !isnan(o->offset);
  p->scale = scale_given ? o->scale : k ? k->scale : 1.0 / 255;
  p->offset = offset_given ? o->offset : k && !scale_given ? k->offset : 0.0;
  if (o->mean || o->std) {
    if (!o->mean || !o->std)
      return qcal_error(QCAL_EINVAL, "--mean and --std go together");
    if (scale_given || offset_given)
      return qcal_error(QCAL_EINVAL, "--mean/--std and --scale/--offset exclude each other");
    int nm = parse_floats(o->mean, p->mean, 3), ns = parse_floats(o->std, p->std, 3);
    if (nm != p->channels || ns != p->channels)
      return qcal_error(QCAL_EINVAL, "--mean and --std need %d comma-separated values",
                        p->channels);
    for (int c = 0; c < ns; c++)
      if (!(p->std[c] > 0))
        return qcal_error(QCAL_EINVAL, "--std values must be positive");
    p->use_mean_std = true;
  }
  return QCAL_OK;
}

void qcal_preproc_describe(const qcal_preproc *p, char *out, size_t cap) {
  int u = snprintf(out, cap, "%s %dx%d, %d channel%s, ", p->nchw ? "nchw" : "nhwc", p->height,
                   p->width, p->channels, p->channels > 1 ? "s" : "");
  if (u < 0 || (size_t)u >= cap)
    return;
  if (p->use_mean_std) {
    u += snprintf(out + u, cap - (size_t)u, "(p/255 - mean) / std, mean");
    for (int c = 0; c < p->channels && (size_t)u < cap; c++)
      u += snprintf(out + u, cap - (size_t)u, "%s%g", c ? "," : " ", p->mean[c]);
    for (int c = 0; c < p->channels && (size_t)u < cap; c++)
      u += snprintf(out + u, cap - (size_t)u, "%s%g", c ? "," : " std ", p->std[c]);
  } else {
    snprintf(out + u, cap - (size_t)u, "p * %g %+g", p->scale, p->offset);
  }
}
