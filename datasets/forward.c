/* NHWC forward pass: convolutions through im2col + BLAS sgemm (1x1 stride-1
 * convolutions need no im2col), depthwise convolutions by direct loops over
 * contiguous channels, then bias and ReLU6. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/model.h"

void qcal_tf_pad(int in, int k, int stride, bool same, int *out, int *pad_before) {
  if (same) {
    *out = (in + stride - 1) / stride;
    int total = (*out - 1) * stride + k - in;
    *pad_before = total > 0 ? total / 2 : 0;
  } else {
    *out = (in - k) / stride + 1;
    *pad_before = 0;
  }
}

static void bias_act(float *out, size_t pixels, const qcal_layer *L) {
  const float *b = L->bias.data;
  for (size_t p = 0; p < pixels; p++) {
    float *o = out + p * (size_t)L->cout;
    for (int c = 0; c < L->cout; c++) {
      float v = o[c] + b[c];
      if (L->relu6)
        v = v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
      o[c] = v;
    }
  }
}

void qcal_conv2d_nhwc(const float *in, int h, int w, const qcal_layer *L, float *out, int oh,
                      int ow, float *scratch) {
  int ph, pw, o1, o2;
  qcal_tf_pad(h, L->kh, L->stride, L->same_pad, &o1, &ph);
  qcal_tf_pad(w, L->kw, L->stride, L->same_pad, &o2, &pw);
  const int K = L->kh * L->kw * L->cin, M = oh * ow;
  const float *A = in;
  if (!(L->kh == 1 && L->kw == 1 && L->stride == 1)) {
    /* im2col rows: one output pixel, columns in HWIO filter order */
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++) {
        float *row = scratch + ((size_t)y * ow + x) * K;
        for (int i = 0; i < L->kh; i++)
          for (int j = 0; j < L->kw; j++) {
            int iy = y * L->stride + i - ph, ix = x * L->stride + j - pw;
            float *dst = row + ((size_t)i * L->kw + j) * L->cin;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
              memset(dst, 0, (size_t)L->cin * sizeof(float));
            else
              memcpy(dst, in + ((size_t)iy * w + ix) * L->cin, (size_t)L->cin * sizeof(float));
          }
      }
    A = scratch;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, L->cout, K, 1.0f, A, K, L->weight.data,
              L->cout, 0.0f, out, L->cout);
  bias_act(out, (size_t)M, L);
}

void qcal_dwconv2d_nhwc(const float *in, int h, int w, const qcal_layer *L, float *out, int oh,
                        int ow) {
  int ph, pw, o1, o2;
  qcal_tf_pad(h, L->kh, L->stride, L->same_pad, &o1, &ph);
  qcal_tf_pad(w, L->kw, L->stride, L->same_pad, &o2, &pw);
  const int C = L->cin;
  const float *wt = L->weight.data; /* [kh, kw, C, 1] */
  for (int y = 0; y < oh; y++)
    for (int x = 0; x < ow; x++) {
      float *o = out + ((size_t)y * ow + x) * C;
      memset(o, 0, (size_t)C * sizeof(float));
      for (int i = 0; i < L->kh; i++) {
        int iy = y * L->stride + i - ph;
        if (iy < 0 || iy >= h)
          continue;
        for (int j = 0; j < L->kw; j++) {
          int ix = x * L->stride + j - pw;
          if (ix < 0 || ix >= w)
            continue;
          const float *src = in + ((size_t)iy * w + ix) * C;
          const float *k = wt + ((size_t)i * L->kw + j) * C;
          for (int c = 0; c < C; c++)
            o[c] += src[c] * k[c];
        }
      }
    }
  bias_act(out, (size_t)oh * ow, L);
}

const qcal_tensor *qcal_layer_input(const qcal_model *m, int l, const qcal_tensor *image,
                                    const qcal_tensor *acts) {
  int src = m->layers[l].input;
  return src < 0 ? image : &acts[src];
}

void qcal_acts_free(const qcal_model *m, qcal_tensor *acts) {
  for (int i = 0; i < m->nlayers; i++)
    qcal_tensor_free(&acts[i]);
}

qcal_status qcal_model_forward(const qcal_model *m, const qcal_tensor *image,
                               const qcal_forward_opts *o, qcal_tensor *acts) {
  if (image->ndim != 4 || image->shape[0] != 1 || image->shape[3] != m->in_channels)
    return qcal_error(QCAL_EINVAL, "input must be [1, H, W, %d]", m->in_channels);
  const int first = o ? o->first : 0;
  float *scratch = NULL, *qbuf = NULL;
  size_t scratch_len = 0, qlen = 0;
  qcal_status st = QCAL_OK;
  for (int l = first; l < m->nlayers && st == QCAL_OK; l++) {
    const qcal_layer *L = &m->layers[l];
    const qcal_tensor *src = qcal_layer_input(m, l, image, acts);
    if (src->ndim != 4 || src->shape[3] != L->cin) {
      st = qcal_error(QCAL_EINVAL, "layer '%s' expects %d channels, its input has %lld", L->name,
                      L->cin, (long long)(src->ndim == 4 ? src->shape[3] : -1));
      break;
    }
    int h = (int)src->shape[1], w = (int)src->shape[2], oh, ow, pad;
    qcal_tf_pad(h, L->kh, L->stride, L->same_pad, &oh, &pad);
    qcal_tf_pad(w, L->kw, L->stride, L->same_pad, &ow, &pad);
    if (oh < 1 || ow < 1) {
      st = qcal_error(QCAL_EINVAL, "layer '%s': input %dx%d is smaller than its kernel", L->name, h,
                      w);
      break;
    }
    const float *x = src->data;
    if (o && o->act_amax && o->act_amax[l] >= 0.0f) {
      if (src->numel > qlen) {
        qcal_free(qbuf);
        qlen = src->numel;
        qbuf = qcal_alloc(qlen * sizeof(float));
        if (!qbuf) {
          st = qcal_error(QCAL_ENOMEM, "out of memory");
          break;
        }
      }
      qcal_layout lay = {1, 1, src->numel};
      if ((st = qcal_fake_quant(&lay, x, &o->act_amax[l], o->fmt, qbuf)) != QCAL_OK)
        break;
      x = qbuf;
    }
    qcal_tensor_free(&acts[l]);
    int64_t shape[4] = {1, oh, ow, L->cout};
    if ((st = qcal_tensor_alloc(&acts[l], 4, shape)) != QCAL_OK)
      break;
    snprintf(acts[l].name, sizeof acts[l].name, "%s", L->name);
    if (L->op == QCAL_OP_DWCONV) {
      qcal_dwconv2d_nhwc(x, h, w, L, acts[l].data, oh, ow);
    } else {
      size_t need = (size_t)oh * ow * L->kh * L->kw * L->cin;
      if (need > scratch_len) {
        qcal_free(scratch);
        scratch_len = need;
        scratch = qcal_alloc(need * sizeof(float));
        if (!scratch) {
          st = qcal_error(QCAL_ENOMEM, "out of memory");
          break;
        }
      }
      qcal_conv2d_nhwc(x, h, w, L, acts[l].data, oh, ow, scratch);
    }
  }
  qcal_free(scratch);
  qcal_free(qbuf);
  return st;
}
