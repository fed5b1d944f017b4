/* In-domain crops: a zoo detector on photos, each detection cropped as
 * npm @vladmandic/human 3.0.7 crops it (include/qcal/crops.h lists the
 * kinds and the source lines they follow). Face: BlazeFace's SSD anchors
 * (strides size/16 and size/8, 2 and 6 anchors per cell), box = anchor +
 * regressed centre and size in input pixels, sigmoid scores, greedy NMS,
 * the box scaled to the photo, enlarged 1.4x, made square (rounded), then
 * cropped with tf.image.cropAndResize's bilinear sampling (0 outside the
 * photo), no rotation (the library's default). Body: no detector (the
 * library's default for BlazePose): the photo padded to a square and
 * resized as blazepose.ts prepareImage does. Hand: the palm detector's
 * anchors (strides 8, 16, 32), boxes and 7 palm landmarks, NMS, the photo
 * turned so that the palm points up and the palm landmarks' box enlarged
 * 5x cropped from it (handposepipeline.ts). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcal/crops.h"
#include "qcal/datasets.h"
#include "qcal/graph.h"

const char *const qcal_crop_names[QCAL_CROP_COUNT + 1] = {
#define X(id, name, det, enlarge, marks, side, keep, iou, src) name,
    QCAL_CROPS(X)
#undef X
        NULL};
/* The rest of each kind's line of the list. */
static const struct kind_info {
  const char *detector, *landmarks; /* model files (NULL: none) */
  double enlarge, iou;
  int side, keep;
} kinds[QCAL_CROP_COUNT] = {
#define X(id, name, det, enlarge, marks, side, keep, iou, src)                                     \
  {det, marks, enlarge, iou, side, keep},
    QCAL_CROPS(X)
#undef X
};

enum { PALM = 7, HAND_ROW = 5 + 2 * PALM }; /* handdetect's palm landmarks, its row */

typedef struct det {
  float b[5];           /* score, x1, y1, x2, y2 in detector input pixels (qcal_blazeface_box) */
  float palm[2 * PALM]; /* hands: the palm landmarks' x, y in detector input pixels */
} det;

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static qcal_status oom(void) {
  return qcal_error(QCAL_ENOMEM, "out of memory");
}

/* BlazeFace's rows [score logit, cx, cy, w, h, 6 keypoints] from its
 * outputs out[noutputs] (as read after a run): one [1, N, 17] tensor (N 896,
 * or 2304 for FaceMesh's 192-pixel detector: the first such output, as the
 * library takes res[0]), or (the converted model the zoo ships) scores
 * [1, 512, 1], [1, 384, 1] and boxes [1, 512, 16], [1, 384, 16], joined 512
 * first as the library joins them. */
qcal_status qcal_blazeface_rows(const qcal_graph *g, float *const *out, const char *what,
                                float **rows, int *n) {
  int sc[2] = {-1, -1}, bx[2] = {-1, -1}, one = -1;
  for (int o = 0; o < g->noutputs; o++) {
    const qcal_value *v = &g->values[g->outputs[o]];
    if (v->ndim != 3 || v->shape[0] != 1 || !out[o])
      continue;
    if (v->shape[2] == 17 && (v->shape[1] == 896 || v->shape[1] == 2304) && one < 0)
      one = o;
    const int big = v->shape[1] == 512 ? 0 : v->shape[1] == 384 ? 1 : -1;
    if (big >= 0 && v->shape[2] == 1)
      sc[big] = o;
    if (big >= 0 && v->shape[2] == 16)
      bx[big] = o;
  }
  if (one < 0 && (sc[0] < 0 || sc[1] < 0 || bx[0] < 0 || bx[1] < 0))
    return qcal_error(QCAL_EUNSUPPORTED,
                      "%s: not a BlazeFace detector (outputs [1, 896|2304, 17] or [1, 512|384, 1] "
                      "and [1, 512|384, 16])",
                      what);
  *n = one >= 0 ? (int)g->values[g->outputs[one]].shape[1] : 896;
  float *r = malloc((size_t)*n * 17 * sizeof *r);
  if (!r)
    return oom();
  if (one >= 0)
    memcpy(r, out[one], (size_t)*n * 17 * sizeof *r);
  for (int part = 0; one < 0 && part < 2; part++) {
    const int cnt = part ? 384 : 512, base = part ? 512 : 0;
    for (int i = 0; i < cnt; i++) {
      r[(size_t)(base + i) * 17] = out[sc[part]][i];
      memcpy(&r[(size_t)(base + i) * 17 + 1], &out[bx[part]][(size_t)i * 16], 16 * sizeof *r);
    }
  }
  *rows = r;
  return QCAL_OK;
}

/* Anchor centres of a size x size BlazeFace input (facemeshutil.ts
 * generateAnchors: FaceMesh's 192-pixel detector one per 4-pixel cell, else
 * strides size/16 and size/8 with 2 and 6 anchors). */
static void face_anchor(int size, int i, float *ax, float *ay) {
  const bool mesh = size == 192;
  const int strides[2] = {mesh ? 4 : size / 16, size / 8}, per[2] = {mesh ? 1 : 2, 6};
  for (int l = 0; l < (mesh ? 1 : 2); l++) {
    const int grid = (size + strides[l] - 1) / strides[l], cnt = grid * grid * per[l];
    if (i < cnt) {
      const int cell = i / per[l];
      *ax = (float)strides[l] * ((float)(cell % grid) + 0.5f);
      *ay = (float)strides[l] * ((float)(cell / grid) + 0.5f);
      return;
    }
    i -= cnt;
  }
  *ax = *ay = 0;
}

void qcal_blazeface_box(const float *row, int size, int i, float box[5]) {
  float ax, ay;
  face_anchor(size, i, &ax, &ay);
  const float cx = row[1] + ax, cy = row[2] + ay, hw = row[3] / 2, hh = row[4] / 2;
  box[0] = 1.0f / (1.0f + expf(-row[0]));
  box[1] = cx - hw, box[2] = cy - hh, box[3] = cx + hw, box[4] = cy + hh;
}

float qcal_box_iou(const float a[5], const float b[5]) {
  const float ix = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
  const float iy = fminf(a[4], b[4]) - fmaxf(a[2], b[2]);
  if (ix <= 0 || iy <= 0)
    return 0;
  const float inter = ix * iy;
  const float ua = (a[3] - a[1]) * (a[4] - a[2]) + (b[3] - b[1]) * (b[4] - b[2]) - inter;
  return ua > 0 ? inter / ua : 0;
}

static int by_score(const void *a, const void *b) {
  const float x = ((const det *)a)->b[0], y = ((const det *)b)->b[0];
  return (x < y) - (x > y);
}

/* Greedy NMS as tf.image.nonMaxSuppression: highest score first, kept
 * when its IoU with every kept box is at most thr; n kept at most. */
static int nms(det *d, int n, int max, double thr, double min_score) {
  qsort(d, (size_t)n, sizeof *d, by_score);
  int k = 0;
  for (int i = 0; i < n && k < max; i++) {
    if (d[i].b[0] < min_score)
      break;
    bool keep = true;
    for (int j = 0; j < k && keep; j++)
      keep = qcal_box_iou(d[i].b, d[j].b) <= thr;
    if (keep)
      d[k++] = d[i];
  }
  return k;
}

/* tf.image.cropAndResize of the normalized box (y1, x1, y2, x2) of an
 * h x w RGB image (8-bit p8, or pd) to s x s, bilinear, 0 outside: the box
 * held in float32 as its tensor holds it, the sample positions in double
 * with TensorFlow.js's association (a sample exactly on the last row stays
 * inside). Written rounded to 8 bits (o8) or as computed (od); flip mirrors
 * the columns as tf.image.flipLeftRight does. */
static void crop_resize(const unsigned char *p8, const double *pd, int w, int h, const double bd[4],
                        int s, unsigned char *o8, double *od, bool flip) {
  const double b[4] = {(float)bd[0], (float)bd[1], (float)bd[2], (float)bd[3]};
  const double hs = (b[2] - b[0]) * (h - 1) / (s - 1), ws = (b[3] - b[1]) * (w - 1) / (s - 1);
  for (int y = 0; y < s; y++) {
    const double iy = b[0] * (h - 1) + y * hs;
    for (int x = 0; x < s; x++) {
      const double ix = b[1] * (w - 1) + x * ws;
      const size_t at = ((size_t)y * s + (size_t)(flip ? s - 1 - x : x)) * 3;
      const bool out = iy < 0 || iy > h - 1 || ix < 0 || ix > w - 1;
      const int y0 = out ? 0 : (int)floor(iy), y1 = out ? 0 : (int)ceil(iy);
      const int x0 = out ? 0 : (int)floor(ix), x1 = out ? 0 : (int)ceil(ix);
      const double wy = iy - y0, wx = ix - x0;
      for (int c = 0; c < 3; c++) {
        double v = 0;
        if (!out) {
          const size_t i00 = ((size_t)y0 * w + x0) * 3 + c, i01 = ((size_t)y0 * w + x1) * 3 + c;
          const size_t i10 = ((size_t)y1 * w + x0) * 3 + c, i11 = ((size_t)y1 * w + x1) * 3 + c;
          const double tl = p8 ? p8[i00] : pd[i00], tr = p8 ? p8[i01] : pd[i01];
          const double bl = p8 ? p8[i10] : pd[i10], br = p8 ? p8[i11] : pd[i11];
          const double top = tl + (tr - tl) * wx, bot = bl + (br - bl) * wx;
          v = top + (bot - top) * wy;
        }
        if (o8)
          o8[at + c] = (unsigned char)lrint(v < 0 ? 0 : v > 255 ? 255 : v);
        else
          od[at + c] = v;
      }
    }
  }
}

typedef struct crop_run {
  qcal_graph *g;
  qcal_preproc pre;
  qcal_crop_kind kind;
  const char *out_dir;
  const qcal_crop_opts *o;
  unsigned char *crop;
  int ncrops;
  qcal_crop_info *info; /* NULL: not wanted */
  int cap;
  float *x;         /* the detector's input */
  float **outs;     /* and its outputs */
  int side;         /* crop side */
  qcal_graph *mesh; /* eye: FaceMesh, its landmarks output, and the face it reads */
  int mesh_out;
  double *face;
  float *mx, *mout;
} crop_run;

enum { MESH = 192, MESH_LANDMARKS = 468 * 3 }; /* FaceMesh's input side, its x, y, z output */

/* The detector's input as the library makes it: tf.image.resizeBilinear
 * without half-pixel centres (source = destination x in / out), then
 * p / 127.5 - 0.5 as the model's preprocessing says (datasets/models.inc). */
static void detector_input(const unsigned char *px, int w, int h, const qcal_preproc *p,
                           float *out) {
  const int H = p->height, W = p->width;
  const float inv = (float)(1.0 / p->scale), off = (float)p->offset;
  const float sy = (float)h / (float)H, sx = (float)w / (float)W;
  for (int y = 0; y < H; y++) {
    const float fy = (float)y * sy;
    const int y0 = (int)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
    const float wy = fy - (float)y0;
    for (int x = 0; x < W; x++) {
      const float fx = (float)x * sx;
      const int x0 = (int)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
      const float wx = fx - (float)x0;
      for (int c = 0; c < 3; c++) {
        const float tl = px[((size_t)y0 * w + x0) * 3 + c], tr = px[((size_t)y0 * w + x1) * 3 + c];
        const float bl = px[((size_t)y1 * w + x0) * 3 + c], br = px[((size_t)y1 * w + x1) * 3 + c];
        const float top = tl + (tr - tl) * wx, bot = bl + (br - bl) * wx;
        out[((size_t)y * W + x) * 3 + c] = (top + (bot - top) * wy) / inv + off;
      }
    }
  }
}

/* Add crop info (file written at path out) to the run's list. */
static qcal_status note_crop(crop_run *c, const char *out, const char *what, float score,
                             const double box[4], double angle) {
  if (!c->info)
    return QCAL_OK;
  if (c->ncrops == c->cap) {
    const int cap = c->cap ? 2 * c->cap : 64;
    qcal_crop_info *m = realloc(c->info, (size_t)cap * sizeof *m);
    if (!m)
      return oom();
    c->info = m, c->cap = cap;
  }
  qcal_crop_info *ci = &c->info[c->ncrops];
  const char *base = strrchr(out, '/');
  snprintf(ci->file, sizeof ci->file, "%.*s", (int)sizeof ci->file - 1, base ? base + 1 : out);
  snprintf(ci->photo, sizeof ci->photo, "%.*s", (int)sizeof ci->photo - 1, what);
  ci->score = score;
  ci->angle = angle;
  memcpy(ci->box, box, sizeof ci->box);
  return QCAL_OK;
}

/* blazepose.ts prepareImage without a crop box: tf.pad with zeros, trunc
 * of half the difference on each side of the short dimension, then
 * tf.image.resizeBilinear to s x s (no half-pixel centres, no aligned
 * corners: source = destination x in / out). */
static qcal_status whole_photo(crop_run *c, const unsigned char *px, int w, int h, const char *stem,
                               const char *what) {
  const int ph = w > h ? (w - h) / 2 : 0, pw = h > w ? (h - w) / 2 : 0;
  const int H = h + 2 * ph, W = w + 2 * pw, s = c->side;
  const double ry = (double)H / s, rx = (double)W / s;
  for (int y = 0; y < s; y++) {
    const double fy = y * ry;
    const int y0 = (int)fy, y1 = y0 + 1 < H ? y0 + 1 : H - 1;
    const double wy = fy - y0;
    for (int x = 0; x < s; x++) {
      const double fx = x * rx;
      const int x0 = (int)fx, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
      const double wx = fx - x0;
      for (int ch = 0; ch < 3; ch++) {
        double v[4];
        const int ys[2] = {y0 - ph, y1 - ph}, xs[2] = {x0 - pw, x1 - pw};
        for (int k = 0; k < 4; k++) {
          const int yy = ys[k / 2], xx = xs[k % 2];
          v[k] = yy >= 0 && yy < h && xx >= 0 && xx < w ? px[((size_t)yy * w + xx) * 3 + ch] : 0;
        }
        const double top = v[0] + (v[1] - v[0]) * wx, bot = v[2] + (v[3] - v[2]) * wx;
        const double r = top + (bot - top) * wy;
        c->crop[((size_t)y * s + x) * 3 + ch] = (unsigned char)lrint(r < 0 ? 0 : r > 255 ? 255 : r);
      }
    }
  }
  char out[4600];
  snprintf(out, sizeof out, "%s/%s_%s0.png", c->out_dir, stem, qcal_crop_names[c->kind]);
  QCAL_TRY(qcal_image_write_png(out, c->crop, s, s));
  const double box[4] = {-pw, -ph, w + pw, h + ph};
  QCAL_TRY(note_crop(c, out, what, 0.0f, box, 0));
  c->ncrops++;
  return QCAL_OK;
}

/* The eye crops of one face (iris.ts getEyeBox): the face cut to FaceMesh's
 * 192 x 192 (box: normalized, as cropped; pbox: photo pixels), its
 * landmarks, then each eye's box (corners 33, 133 and 263, 362) enlarged
 * 2.3, squared, cropped from the face and mirrored. */
static qcal_status eyes(crop_run *c, const unsigned char *px, int w, int h, const double box[4],
                        const double pbox[4], const char *stem, int j, const char *what,
                        float score) {
  static const int corners[2][2] = {{33, 133}, {263, 362}}; /* right, left */
  crop_resize(px, NULL, w, h, box, MESH, NULL, c->face, false);
  for (size_t i = 0; i < (size_t)MESH * MESH * 3; i++)
    c->mx[i] = (float)(c->face[i] / 255.0);
  const void *in[1] = {c->mx};
  QCAL_TRY(qcal_graph_run(c->mesh, in));
  QCAL_TRY(qcal_graph_read(c->mesh, c->mesh->outputs[c->mesh_out], c->mout));
  for (int e = 0; e < 2; e++) {
    const float *a = &c->mout[corners[e][0] * 3], *b = &c->mout[corners[e][1] * 3];
    /* calculateLandmarksBoundingBox, enlargeBox 2.3, squarifyBox */
    const double cx = (fmin(a[0], b[0]) + fmax(a[0], b[0])) / 2;
    const double cy = (fmin(a[1], b[1]) + fmax(a[1], b[1])) / 2;
    const double half = fmax(2.3 * fabs(a[0] - b[0]) / 2, 2.3 * fabs(a[1] - b[1]) / 2);
    const double ex1 = round(cx - half), ey1 = round(cy - half), ex2 = round(cx + half),
                 ey2 = round(cy + half);
    const double ebox[4] = {ey1 / MESH, ex1 / MESH, ey2 / MESH, ex2 / MESH};
    crop_resize(NULL, c->face, MESH, MESH, ebox, c->side, c->crop, NULL, true);
    char out[4600];
    snprintf(out, sizeof out, "%s/%s_%s%d%c.png", c->out_dir, stem, qcal_crop_names[c->kind], j,
             e ? 'l' : 'r');
    QCAL_TRY(qcal_image_write_png(out, c->crop, c->side, c->side));
    const double f = (pbox[2] - pbox[0]) / MESH;
    const double ph[4] = {pbox[0] + ex1 * f, pbox[1] + ey1 * f, pbox[0] + ex2 * f,
                          pbox[1] + ey2 * f};
    QCAL_TRY(note_crop(c, out, what, score, ph, 0));
    c->ncrops++;
  }
  return QCAL_OK;
}

/* handposedetector.ts on a size-pixel input: row i [score logit, box
 * offset x, y, size w, h, 7 palm landmarks x, y] (input pixels, about its
 * anchor: strides 8, 16 and 32 with 2, 2 and 6 per cell) decoded in
 * float32 as its tensors are: centre = offset / size + anchor, corners =
 * (centre -+ box size / (2 size)) * size, landmarks (raw / size + anchor) *
 * size; the score through a sigmoid. */
static void hand_det(const float *row, int size, int i, det *d) {
  static const int stride[3] = {8, 16, 32}, per[3] = {2, 2, 6};
  float ax = 0, ay = 0;
  for (int l = 0; l < 3; l++) {
    const int grid = size / stride[l], cnt = grid * grid * per[l];
    if (i < cnt) {
      const int cell = i / per[l];
      ax = ((float)(cell % grid) + 0.5f) / (float)grid;
      ay = ((float)(cell / grid) + 0.5f) / (float)grid;
      break;
    }
    i -= cnt;
  }
  const float s = (float)size, s2 = 2 * s;
  const float cx = row[1] / s + ax, cy = row[2] / s + ay, hw = row[3] / s2, hh = row[4] / s2;
  d->b[0] = (float)(1.0 / (1.0 + exp(-(double)row[0])));
  d->b[1] = (cx - hw) * s, d->b[2] = (cy - hh) * s, d->b[3] = (cx + hw) * s,
  d->b[4] = (cy + hh) * s;
  for (int k = 0; k < 2 * PALM; k++)
    d->palm[k] = (row[5 + k] / s + (k % 2 ? ay : ax)) * s;
}

/* The anchors of a size-pixel hand detector (its rows). */
static int hand_anchors(int size) {
  return (size / 8) * (size / 8) * 2 + (size / 16) * (size / 16) * 2 +
         (size / 32) * (size / 32) * 6;
}

/* JavaScript's Math.round: the nearest integer, halves up. */
static double js_round(double v) {
  const double f = floor(v);
  return v - f >= 0.5 ? f + 1 : f;
}

/* The hand crop of detection d (detector input pixels of a size-pixel
 * input), handposepipeline.ts estimateHands with rotation on, the
 * arithmetic in double in the library's order: the detection scaled to the
 * photo (scaleBoxCoordinates), the angle of palm landmarks 0 -> 2
 * (computeRotation, normalizeRadians), the photo rotated about the palm
 * box's centre as tf.image.rotateWithOffset does (each pixel from the
 * nearest source pixel, Math.round, 0 outside), the palm landmarks through
 * buildRotationMatrix(-angle, centre), their box squarified and enlarged
 * 5x (getBoxForPalmLandmarks), then cropAndResize of the rotated photo. */
static qcal_status hand(crop_run *c, const unsigned char *px, int w, int h, const det *d, int size,
                        const char *stem, int j, const char *what) {
  const double fx = (double)w / size, fy = (double)h / size;
  double palm[2 * PALM];
  for (int k = 0; k < PALM; k++)
    palm[2 * k] = d->palm[2 * k] * fx, palm[2 * k + 1] = d->palm[2 * k + 1] * fy;
  const double sx = d->b[1] * fx, sy = d->b[2] * fy, ex = d->b[3] * fx, ey = d->b[4] * fy;
  const double r = M_PI / 2 - atan2(-(palm[5] - palm[1]), palm[4] - palm[0]);
  const double angle = r - 2 * M_PI * floor((r + M_PI) / (2 * M_PI));
  const double pcx = sx + (ex - sx) / 2, pcy = sy + (ey - sy) / 2;
  const double ccx = w * (pcx / w), ccy = h * (pcy / h), sn = sin(angle), cs = cos(angle);
  unsigned char *rot = malloc((size_t)w * h * 3);
  if (!rot)
    return oom();
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const double ux = (x - ccx) * cs - (y - ccy) * sn, uy = (x - ccx) * sn + (y - ccy) * cs;
      const double rx = js_round(ux + ccx), ry = js_round(uy + ccy);
      unsigned char *o = &rot[((size_t)y * w + x) * 3];
      if (rx >= 0 && rx < w && ry >= 0 && ry < h)
        memcpy(o, &px[((size_t)ry * w + (size_t)rx) * 3], 3);
      else
        memset(o, 0, 3);
    }
  const double ca = cos(-angle), sa = sin(-angle);
  const double m02 = (ca * -pcx + -sa * -pcy) + pcx, m12 = (sa * -pcx + ca * -pcy) + pcy;
  double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
  for (int k = 0; k < PALM; k++) {
    const double x = palm[2 * k], y = palm[2 * k + 1];
    const double q[2] = {(x * ca + y * -sa) + m02, (x * sa + y * ca) + m12};
    for (int a = 0; a < 2; a++)
      lo[a] = fmin(lo[a], q[a]), hi[a] = fmax(hi[a], q[a]);
  }
  double b[4]; /* squarifyBox, then enlargeBox */
  const double half = fmax(fabs(hi[0] - lo[0]), fabs(hi[1] - lo[1])) / 2;
  for (int a = 0; a < 2; a++) {
    const double m = lo[a] + (hi[a] - lo[a]) / 2;
    b[a] = m - half, b[a + 2] = m + half;
  }
  const double f = kinds[c->kind].enlarge;
  for (int a = 0; a < 2; a++) {
    const double m = b[a] + (b[a + 2] - b[a]) / 2, nh = f * fabs(b[a + 2] - b[a]) / 2;
    b[a] = m - nh, b[a + 2] = m + nh;
  }
  const double box[4] = {b[1] / h, b[0] / w, b[3] / h, b[2] / w};
  crop_resize(rot, NULL, w, h, box, c->side, c->crop, NULL, false);
  free(rot);
  char out[4600];
  snprintf(out, sizeof out, "%s/%s_%s%d.png", c->out_dir, stem, qcal_crop_names[c->kind], j);
  QCAL_TRY(qcal_image_write_png(out, c->crop, c->side, c->side));
  QCAL_TRY(note_crop(c, out, what, d->b[0], b, angle));
  c->ncrops++;
  return QCAL_OK;
}

/* The detections of one detector run: BlazeFace's or the hand detector's
 * rows decoded (*d malloc'ed, *n of them). */
static qcal_status detections(crop_run *c, const char *what, det **d, int *n) {
  *d = NULL, *n = 0;
  const int size = c->pre.width;
  if (c->kind == QCAL_CROP_HAND) {
    const int na = hand_anchors(size); /* the output's shape was checked at setup */
    if (!(*d = calloc((size_t)na, sizeof **d)))
      return oom();
    for (int i = 0; i < na; i++)
      hand_det(&c->outs[0][(size_t)i * HAND_ROW], size, i, &(*d)[i]);
    *n = na;
    return QCAL_OK;
  }
  float *rows;
  QCAL_TRY(qcal_blazeface_rows(c->g, c->outs, what, &rows, n));
  if (!(*d = calloc((size_t)*n, sizeof **d))) {
    free(rows);
    return oom();
  }
  for (int i = 0; i < *n; i++)
    qcal_blazeface_box(&rows[(size_t)i * 17], size, i, (*d)[i].b);
  free(rows);
  return QCAL_OK;
}

/* One photo (RGB pixels, named stem): detect, then write each kept
 * detection's crop. */
static qcal_status one_photo(crop_run *c, const unsigned char *px, int w, int h, const char *stem,
                             const char *what) {
  if (!c->g)
    return whole_photo(c, px, w, h, stem, what);
  detector_input(px, w, h, &c->pre, c->x);
  const void *in[1] = {c->x};
  qcal_status st = qcal_graph_run(c->g, in);
  for (int o = 0; o < c->g->noutputs && !st; o++)
    st = qcal_graph_read(c->g, c->g->outputs[o], c->outs[o]);
  det *d = NULL;
  int n = 0;
  if (!st)
    st = detections(c, what, &d, &n);
  const float size = (float)c->pre.width;
  const int k = st ? 0 : nms(d, n, c->o->max_per_photo, c->o->iou, c->o->min_score);
  for (int j = 0; j < k && !st; j++) {
    /* to photo pixels, enlarged, squared and rounded as squarifyBox does */
    const double sx = w / size, sy = h / size, f = kinds[c->kind].enlarge;
    const float *e = d[j].b;
    const double cx = (e[1] + e[3]) * sx / 2, cy = (e[2] + e[4]) * sy / 2;
    const double half = fmax((e[3] - e[1]) * sx, (e[4] - e[2]) * sy) * f / 2;
    const double x1 = round(cx - half), y1 = round(cy - half), x2 = round(cx + half),
                 y2 = round(cy + half);
    const double box[4] = {y1 / h, x1 / w, y2 / h, x2 / w};
    const double pbox[4] = {x1, y1, x2, y2};
    if (c->kind == QCAL_CROP_HAND) {
      st = hand(c, px, w, h, &d[j], c->pre.width, stem, j, what);
      continue;
    }
    if (c->mesh) {
      st = eyes(c, px, w, h, box, pbox, stem, j, what, d[j].b[0]);
      continue;
    }
    crop_resize(px, NULL, w, h, box, c->side, c->crop, NULL, false);
    char out[4600];
    snprintf(out, sizeof out, "%s/%s_%s%d.png", c->out_dir, stem, qcal_crop_names[c->kind], j);
    st = qcal_image_write_png(out, c->crop, c->side, c->side);
    if (!st)
      st = note_crop(c, out, what, d[j].b[0], pbox, 0);
    c->ncrops += !st;
  }
  free(d);
  return st;
}

static void stem_of(const char *name, char *stem, size_t cap) {
  snprintf(stem, cap, "%s", name);
  char *dot = strrchr(stem, '.');
  if (dot)
    *dot = 0;
}

/* An image file of a folder. */
static qcal_status file_photo(crop_run *c, const char *dir, const char *name) {
  char path[4400], stem[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  stem_of(name, stem, sizeof stem);
  unsigned char *px;
  int w, h;
  QCAL_TRY(qcal_image_decode_rgb(path, &px, &w, &h));
  qcal_status st = one_photo(c, px, w, h, stem, path);
  qcal_image_free(px);
  return st;
}

/* A stack of photos in a .npy file, [N, H, W] (grey) or [N, H, W, 3], values
 * in 0..1 (scikit-image's convention, e.g. its lfw_subset.npy) or 0..255. */
static qcal_status npy_photos(crop_run *c, const char *dir, const char *name) {
  char path[4400], stem[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  stem_of(name, stem, sizeof stem);
  qcal_tensor t;
  QCAL_TRY(qcal_npy_load(path, &t));
  const bool rgb = t.ndim == 4 && t.shape[3] == 3;
  qcal_status st = QCAL_OK;
  if ((t.ndim != 3 && !rgb) || t.shape[1] < 1 || t.shape[2] < 1 || t.shape[1] > 8192 ||
      t.shape[2] > 8192)
    st = qcal_error(QCAL_EDATA, "%s: a stack of photos is [N, H, W] or [N, H, W, 3]", path);
  float hi = 0, lo = 0;
  for (size_t i = 0; i < t.numel && !st; i++) {
    hi = t.data[i] > hi ? t.data[i] : hi;
    lo = t.data[i] < lo ? t.data[i] : lo;
    if (!isfinite(t.data[i]))
      st = qcal_error(QCAL_EDATA, "%s: element %zu is not finite", path, i);
  }
  if (!st && (lo < 0 || hi > 255))
    st = qcal_error(QCAL_EDATA, "%s: pixels from %g to %g (0..1 or 0..255 expected)", path, lo, hi);
  const int h = st ? 0 : (int)t.shape[1], w = st ? 0 : (int)t.shape[2];
  const float mul = hi <= 1 ? 255.0f : 1.0f;
  unsigned char *px = st ? NULL : malloc((size_t)w * h * 3);
  if (!st && !px)
    st = oom();
  for (int64_t k = 0; k < (st ? 0 : t.shape[0]); k++) {
    const float *src = t.data + (size_t)k * w * h * (rgb ? 3 : 1);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
      px[i] = (unsigned char)lrintf(src[rgb ? i : i / 3] * mul);
    char one[300], what[4500];
    snprintf(one, sizeof one, "%s_%04lld", stem, (long long)k);
    snprintf(what, sizeof what, "%s[%lld]", path, (long long)k);
    if ((st = one_photo(c, px, w, h, one, what)))
      break;
  }
  free(px);
  qcal_tensor_free(&t);
  return st;
}

/* The .npy files of a folder, sorted. */
static qcal_status npy_names(const char *dir, char ***names, int *n) {
  *names = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return QCAL_OK; /* qcal_image_dir has said what is wrong with it */
  struct dirent *e;
  qcal_status st = QCAL_OK;
  while (!st && (e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 5 || strcmp(e->d_name + l - 4, ".npy") || e->d_name[0] == '.')
      continue;
    char **m = realloc(*names, (size_t)(*n + 1) * sizeof *m);
    if (!m || !(m[*n] = strdup(e->d_name))) {
      if (m)
        *names = m;
      st = oom();
      break;
    }
    *names = m;
    ++*n;
  }
  closedir(d);
  if (!st && *n > 1)
    qsort(*names, (size_t)*n, sizeof **names, by_name);
  return st;
}

qcal_status qcal_crops_make(const char *models_dir, qcal_crop_kind kind, const char *const *dirs,
                            int ndirs, const char *out_dir, const qcal_crop_opts *o, int *ncrops,
                            qcal_crop_info **info) {
  *ncrops = 0;
  if (info)
    *info = NULL;
  if (kind < 0 || kind >= QCAL_CROP_COUNT)
    return qcal_error(QCAL_EINVAL, "unknown crop kind %d", (int)kind);
  const int side = o->size ? o->size : kinds[kind].side;
  const qcal_crop_opts ro = {side, o->max_per_photo ? o->max_per_photo : kinds[kind].keep,
                             o->min_score, o->iou >= 0 ? o->iou : kinds[kind].iou};
  if (side < 2 || side > 4096 || ro.max_per_photo < 1 || !(ro.iou <= 1) || !(o->min_score >= 0))
    return qcal_error(QCAL_EINVAL,
                      "crop size %d (2..4096), %d detections per photo (>= 1), IoU %g (<= 1), "
                      "score %g (>= 0)",
                      side, ro.max_per_photo, ro.iou, o->min_score);
  if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
    return qcal_error(QCAL_EIO, "%s: cannot create the crop folder: %s", out_dir, strerror(errno));
  qcal_graph *g = NULL;
  qcal_status st = QCAL_OK;
  qcal_preproc pre = {0};
  const bool detect = kinds[kind].detector != NULL;
  if (detect) {
    char model[4200];
    snprintf(model, sizeof model, "%s/%s", models_dir, kinds[kind].detector);
    QCAL_TRY(qcal_graph_load(model, &g));
    const qcal_value *iv = &g->values[g->inputs[0]];
    bool resize;
    qcal_preproc_opts po = {.scale = NAN, .offset = NAN};
    st = qcal_preproc_resolve(&po, model, iv->ndim, iv->shape, &pre, &resize);
    int64_t shape[4] = {1, pre.height, pre.width, 3};
    if (!st && (pre.nchw || pre.height != pre.width))
      st = qcal_error(QCAL_EUNSUPPORTED, "%s: a square NHWC detector input expected", model);
    if (!st)
      st = qcal_graph_bind_input(g, 0, 4, shape);
    qcal_graph_opts go = {0};
    if (!st)
      st = qcal_graph_prepare(g, &go);
    const qcal_value *ov = st ? NULL : &g->values[g->outputs[0]];
    const int na = hand_anchors(pre.width);
    if (!st && kind == QCAL_CROP_HAND &&
        (ov->ndim != 3 || ov->shape[1] != na || ov->shape[2] != HAND_ROW))
      st = qcal_error(QCAL_EUNSUPPORTED,
                      "%s: not a hand detector: its first output is not [1, %d, %d] (the anchors "
                      "of a %d-pixel input; score, box, 7 palm landmarks)",
                      model, na, HAND_ROW, pre.width);
  }
  crop_run c = {.g = g, .pre = pre, .kind = kind, .out_dir = out_dir, .o = &ro, .side = side};
  if (!st && kinds[kind].landmarks) { /* FaceMesh on a MESH x MESH face */
    char model[4200];
    snprintf(model, sizeof model, "%s/%s", models_dir, kinds[kind].landmarks);
    const int64_t shape[4] = {1, MESH, MESH, 3};
    st = qcal_graph_load(model, &c.mesh);
    if (!st)
      st = qcal_graph_bind_input(c.mesh, 0, 4, shape);
    qcal_graph_opts go = {0};
    if (!st)
      st = qcal_graph_prepare(c.mesh, &go);
    c.mesh_out = -1;
    for (int k = 0; !st && k < c.mesh->noutputs; k++)
      if (c.mesh->values[c.mesh->outputs[k]].numel == MESH_LANDMARKS)
        c.mesh_out = k;
    if (!st && c.mesh_out < 0)
      st = qcal_error(QCAL_EUNSUPPORTED, "%s: no output of 468 x 3 landmarks (FaceMesh expected)",
                      model);
    c.face = st ? NULL : malloc((size_t)MESH * MESH * 3 * sizeof *c.face);
    c.mx = st ? NULL : malloc((size_t)MESH * MESH * 3 * sizeof *c.mx);
    c.mout = st ? NULL : malloc(MESH_LANDMARKS * sizeof *c.mout);
    if (!st && (!c.face || !c.mx || !c.mout))
      st = oom();
  }
  if (!st && g && !(c.outs = calloc((size_t)g->noutputs + 1, sizeof *c.outs)))
    st = oom();
  for (int k = 0; !st && g && k < g->noutputs; k++)
    if (!(c.outs[k] = malloc(g->values[g->outputs[k]].numel * sizeof(float) + 1)))
      st = oom();
  if (!st && !(c.info = malloc(64 * sizeof *c.info))) /* kept to undo a failed run too */
    st = oom();
  c.cap = c.info ? 64 : 0;
  c.crop = st ? NULL : malloc((size_t)side * side * 3);
  c.x = st ? NULL : malloc(((size_t)pre.height * pre.width * 3 + 1) * sizeof *c.x);
  if (!st && (!c.crop || !c.x))
    st = oom();
  for (int k = 0; k < ndirs && !st; k++) {
    char **names = NULL, **stacks = NULL;
    int n = 0, ns = 0;
    st = qcal_image_dir(dirs[k], &names, &n);
    if (!st && detect && kind != QCAL_CROP_HAND) /* stacks of faces: no hands */
      st = npy_names(dirs[k], &stacks, &ns);
    for (int i = 0; i < n && !st; i++)
      st = file_photo(&c, dirs[k], names[i]);
    for (int i = 0; i < ns && !st; i++)
      st = npy_photos(&c, dirs[k], stacks[i]);
    if (!st && n + ns == 0)
      st = qcal_error(QCAL_EDATA, "%s: no image file or .npy stack of photos", dirs[k]);
    if (names)
      qcal_image_dir_free(names, n);
    qcal_image_dir_free(stacks, ns);
  }
  for (int i = 0; st && i < c.ncrops; i++) { /* no half-made folder of crops */
    char p[4600];
    snprintf(p, sizeof p, "%s/%s", out_dir, c.info[i].file);
    unlink(p);
  }
  *ncrops = st ? 0 : c.ncrops;
  if (info && !st)
    *info = c.info;
  else
    free(c.info);
  for (int k = 0; c.outs && g && k < g->noutputs; k++)
    free(c.outs[k]);
  free(c.outs);
  free(c.crop), free(c.x);
  free(c.face), free(c.mx), free(c.mout);
  qcal_graph_free(c.mesh);
  qcal_graph_free(g);
  return st;
}
