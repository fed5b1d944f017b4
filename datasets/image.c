/* Photos via stb_image (Debian libstb-dev): decode, bilinear resize, then
 * the preprocessing of infer and sweep (qcal_image_preprocess). */
#include <errno.h>
#include <stb/stb_image.h>
#include <string.h>

#include "qcal/datasets.h"

/* RGB pixels of path (free with stbi_image_free). Checked before decoding:
 * the size (a header may claim gigapixels), and 16 bits per channel, whose
 * PNM path in Debian's stb_image reads past its buffer (found by
 * fuzz_image). */
qcal_status qcal_image_decode_rgb(const char *path, unsigned char **px, int *w, int *h) {
  int n;
  if (!stbi_info(path, w, h, &n))
    return qcal_error(QCAL_EFORMAT, "%s: cannot decode image: %s", path, stbi_failure_reason());
  if (*w < 1 || *h < 1 || (int64_t)*w * *h > ((int64_t)1 << 26))
    return qcal_error(QCAL_EFORMAT, "%s: image is %dx%d pixels (at most 64 megapixels)", path, *w,
                      *h);
  if (stbi_is_16_bit(path))
    return qcal_error(QCAL_EFORMAT, "%s: 16-bit images are not supported", path);
  *px = stbi_load(path, w, h, &n, 3);
  if (!*px)
    return qcal_error(QCAL_EFORMAT, "%s: cannot decode image: %s", path, stbi_failure_reason());
  if (*w < 1 || *h < 1) { /* stb_image accepts some headers with a zero dimension */
    stbi_image_free(*px);
    return qcal_error(QCAL_EFORMAT, "%s: image is %dx%d pixels", path, *w, *h);
  }
  return QCAL_OK;
}

/* Output pixel (y, x) of a w x h image resized to W x H: align-corners =
 * false bilinear sampling, like tf.image.resize. */
static void sample_rgb(const unsigned char *px, int w, int h, int W, int H, int y, int x,
                       float rgb[3]) {
  const float sy = (float)h / (float)H, sx = (float)w / (float)W;
  float fy = ((float)y + 0.5f) * sy - 0.5f, fx = ((float)x + 0.5f) * sx - 0.5f;
  fy = fy < 0 ? 0 : fy;
  fx = fx < 0 ? 0 : fx;
  int y0 = (int)fy < h ? (int)fy : h - 1, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
  int x0 = (int)fx < w ? (int)fx : w - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
  float wy = fy - (float)y0, wx = fx - (float)x0;
  for (int c = 0; c < 3; c++) {
    float a = px[((size_t)y0 * w + x0) * 3 + c], b = px[((size_t)y0 * w + x1) * 3 + c];
    float d = px[((size_t)y1 * w + x0) * 3 + c], e = px[((size_t)y1 * w + x1) * 3 + c];
    rgb[c] = (a + (b - a) * wx) * (1 - wy) + (d + (e - d) * wx) * wy;
  }
}

static void name_after(qcal_tensor *t, const char *path) {
  const char *base = strrchr(path, '/');
  snprintf(t->name, sizeof t->name, "%s", base ? base + 1 : path);
}

static qcal_status check_preproc(const qcal_preproc *p) {
  if (p->height < 1 || p->width < 1 || p->height > 8192 || p->width > 8192)
    return qcal_error(QCAL_EINVAL, "input size %dx%d out of range (1..8192)", p->height, p->width);
  if (p->channels != 1 && p->channels != 3)
    return qcal_error(QCAL_EINVAL, "channels must be 1 or 3, got %d", p->channels);
  return QCAL_OK;
}

qcal_status qcal_image_preprocess(const char *path, const qcal_preproc *p, qcal_tensor *out) {
  memset(out, 0, sizeof *out);
  QCAL_TRY(check_preproc(p));
  unsigned char *px = NULL;
  int w, h;
  QCAL_TRY(qcal_image_decode_rgb(path, &px, &w, &h));
  qcal_status st = qcal_image_preprocess_rgb(px, w, h, p, out);
  stbi_image_free(px);
  if (!st)
    name_after(out, path);
  return st;
}

qcal_status qcal_image_preprocess_rgb(const unsigned char *px, int w, int h, const qcal_preproc *p,
                                      qcal_tensor *out) {
  memset(out, 0, sizeof *out);
  QCAL_TRY(check_preproc(p));
  int H = p->height, W = p->width, C = p->channels;
  /* p * scale as the frameworks write it, p / 127.5 - 1 or p / 255: dividing
   * by the reciprocal gives those bit for bit (1/127.5 is not a float) */
  const float inv = p->scale != 0 ? (float)(1.0 / p->scale) : 0.0f, off = (float)p->offset;
  int64_t shape[4] = {1, p->nchw ? C : H, p->nchw ? H : W, p->nchw ? W : C};
  QCAL_TRY(qcal_tensor_alloc(out, 4, shape));
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      float rgb[3];
      sample_rgb(px, w, h, W, H, y, x, rgb);
      if (C == 1) /* ITU-R BT.601 luma, as PIL's convert('L') */
        rgb[0] = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
      for (int c = 0; c < C; c++) {
        float v = p->use_mean_std ? (rgb[c] / 255.0f - p->mean[c]) / p->std[c]
                  : p->scale != 0 ? rgb[c] / inv + off
                                  : off;
        size_t at = p->nchw ? ((size_t)c * H + y) * W + x : ((size_t)y * W + x) * C + c;
        out->data[at] = v;
      }
    }
  return QCAL_OK;
}

void qcal_image_free(unsigned char *px) {
  stbi_image_free(px);
}
