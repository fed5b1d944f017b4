/* Every kernel variant against the scalar reference, element by element,
 * plus known values of the reference itself. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "qcal/kernels.h"
#include "qcal/quant.h"
#include "tests/common.h"

static const qcal_kernel_entry *ref_of(const char *family) {
  for (size_t i = 0; i < qcal_kernel_count; i++)
    if (!strcmp(qcal_kernel_list[i].family, family) && !strcmp(qcal_kernel_list[i].isa, "ref"))
      return &qcal_kernel_list[i];
  return NULL;
}

static int runnable(const qcal_kernel_entry *e) {
  return (e->features & qcal_cpu_features()) == e->features;
}

/* The formats every variant is checked with. */
static const qcal_qformat formats[] = {
    {8, false, false}, {8, false, true}, {8, true, false}, {4, false, false}, {2, false, true},
};

Test(kernels, list_has_ref_for_every_family) {
  for (size_t i = 0; i < qcal_kernel_count; i++)
    cr_assert_not_null(ref_of(qcal_kernel_list[i].family), "%s has no ref",
                       qcal_kernel_list[i].family);
  cr_assert_geq(qcal_kernel_count, 24);
}

Test(kernels, quantize_variants_match_ref) {
  const qcal_kernel_entry *ref = ref_of("f32_q8_quantize");
  qcal_f32_q8_quantize_fn *rf = (qcal_f32_q8_quantize_fn *)ref->fn;
  int checked = 0;
  for (size_t v = 0; v < qcal_kernel_count; v++) {
    const qcal_kernel_entry *e = &qcal_kernel_list[v];
    if (strcmp(e->family, "f32_q8_quantize") || e == ref || !runnable(e))
      continue;
    qcal_f32_q8_quantize_fn *fn = (qcal_f32_q8_quantize_fn *)e->fn;
    for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++)
      for (size_t si = 0; si < N_TEST_SIZES; si++)
        for (int pe = 0; pe < 2; pe++) {
          size_t n = test_sizes[si];
          float *x = malloc((n + 1) * 4), *sc = malloc((n + 1) * 4);
          uint8_t *a = malloc(n + 1), *b = malloc(n + 1);
          float s0 = qcal_quant_scale(formats[f], 3.0f);
          fill_special(x, n, 11 + n, s0);
          for (size_t i = 0; i <= n; i++)
            sc[i] = pe ? qcal_quant_scale(formats[f], (float)(0.5 + (double)(i % 7))) : s0;
          float qmin = qcal_qformat_qmin(formats[f]), qmax = qcal_qformat_qmax(formats[f]);
          memset(a, 0xAA, n + 1);
          memset(b, 0xAA, n + 1);
          rf(n, x, a, sc, pe, qmin, qmax);
          fn(n, x, b, sc, pe, qmin, qmax);
          for (size_t i = 0; i <= n; i++)
            cr_assert_eq(a[i], b[i], "%s n=%zu fmt=%zu pe=%d i=%zu x=%g: ref %d vs %d", e->isa, n,
                         f, pe, i, (double)x[i], a[i], b[i]);
          free(x), free(sc), free(a), free(b);
          checked++;
        }
  }
  cr_assert_gt(checked, 0, "no SIMD variant runnable here");
}

Test(kernels, fakequant_variants_match_ref_bitwise) {
  const qcal_kernel_entry *ref = ref_of("f32_f32_fakequant");
  qcal_f32_f32_fakequant_fn *rf = (qcal_f32_f32_fakequant_fn *)ref->fn;
  for (size_t v = 0; v < qcal_kernel_count; v++) {
    const qcal_kernel_entry *e = &qcal_kernel_list[v];
    if (strcmp(e->family, "f32_f32_fakequant") || e == ref || !runnable(e))
      continue;
    qcal_f32_f32_fakequant_fn *fn = (qcal_f32_f32_fakequant_fn *)e->fn;
    for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++)
      for (size_t si = 0; si < N_TEST_SIZES; si++)
        for (int pe = 0; pe < 2; pe++) {
          size_t n = test_sizes[si];
          float *x = malloc((n + 1) * 4), *s = malloc((n + 1) * 4), *d = malloc((n + 1) * 4);
          float *a = malloc((n + 1) * 4), *b = malloc((n + 1) * 4);
          float amax0 = 2.5f;
          fill_special(x, n, 7 * n + 1, qcal_quant_scale(formats[f], amax0));
          for (size_t i = 0; i <= n; i++) {
            float am = pe ? (i % 5 == 4 ? 0.0f : (float)(0.25 + (double)(i % 9))) : amax0;
            s[i] = qcal_quant_scale(formats[f], am);
            d[i] = qcal_dequant_scale(formats[f], am);
          }
          float qmin = qcal_qformat_qmin(formats[f]), qmax = qcal_qformat_qmax(formats[f]);
          a[n] = b[n] = 123.0f;
          rf(n, x, a, s, d, pe, qmin, qmax);
          fn(n, x, b, s, d, pe, qmin, qmax);
          for (size_t i = 0; i <= n; i++)
            cr_assert_eq(f2u(a[i]), f2u(b[i]), "%s n=%zu pe=%d i=%zu x=%g: %a vs %a", e->isa, n, pe,
                         i, (double)x[i], (double)a[i], (double)b[i]);
          free(x), free(s), free(d), free(a), free(b);
        }
  }
}

Test(kernels, dequantize_variants_match_ref_bitwise) {
  for (int u = 0; u < 2; u++) {
    const char *fam = u ? "u8_f32_dequantize" : "s8_f32_dequantize";
    const qcal_kernel_entry *ref = ref_of(fam);
    for (size_t v = 0; v < qcal_kernel_count; v++) {
      const qcal_kernel_entry *e = &qcal_kernel_list[v];
      if (strcmp(e->family, fam) || e == ref || !runnable(e))
        continue;
      for (size_t si = 0; si < N_TEST_SIZES; si++)
        for (int pe = 0; pe < 2; pe++) {
          size_t n = test_sizes[si];
          uint8_t *q = malloc(n + 1);
          float *d = malloc((n + 1) * 4), *a = malloc((n + 1) * 4), *b = malloc((n + 1) * 4);
          for (size_t i = 0; i <= n; i++) {
            q[i] = (uint8_t)(i * 37 + 11);
            d[i] = pe ? 127.0f / (float)(0.3 + (double)(i % 11)) : 127.0f / 3.7f;
          }
          a[n] = b[n] = -5.0f;
          ((void (*)(size_t, const void *, float *, const float *, bool))ref->fn)(n, q, a, d, pe);
          ((void (*)(size_t, const void *, float *, const float *, bool))e->fn)(n, q, b, d, pe);
          for (size_t i = 0; i <= n; i++)
            cr_assert_eq(f2u(a[i]), f2u(b[i]), "%s %s n=%zu i=%zu", fam, e->isa, n, i);
          free(q), free(d), free(a), free(b);
        }
    }
  }
}

Test(kernels, absmax_and_histogram_variants_match_ref) {
  for (size_t v = 0; v < qcal_kernel_count; v++) {
    const qcal_kernel_entry *e = &qcal_kernel_list[v];
    if (!runnable(e) || !strcmp(e->isa, "ref"))
      continue;
    int is_max = !strcmp(e->family, "f32_absmax");
    if (!is_max && strcmp(e->family, "f32_histogram"))
      continue;
    for (size_t si = 0; si < N_TEST_SIZES; si++) {
      size_t n = test_sizes[si];
      float *x = malloc((n + 1) * 4);
      qcal_rng r;
      qcal_rng_seed(&r, n + 3);
      for (size_t i = 0; i < n; i++) /* a third exact zeros, like post-ReLU data */
        x[i] = i % 3 == 0 ? 0.0f : (float)qcal_rng_normal(&r);
      float range = qcal_f32_absmax__ref(n, x);
      if (is_max) {
        cr_assert_eq(f2u(((qcal_f32_absmax_fn *)e->fn)(n, x)), f2u(range), "%s n=%zu", e->isa, n);
      } else if (n > 0) {
        range *= 0.9f; /* some values beyond the range must be skipped */
        for (int skip = 0; skip < 2; skip++)
          for (uint32_t nb = 2; nb <= 2048; nb *= 8) {
            uint64_t *a = calloc(nb, 8), *b = calloc(nb, 8);
            qcal_f32_histogram__ref(n, x, nb, range, skip, a);
            ((qcal_f32_histogram_fn *)e->fn)(n, x, nb, range, skip, b);
            for (uint32_t k = 0; k < nb; k++)
              cr_assert_eq(a[k], b[k], "%s n=%zu nb=%u skip=%d bin %u", e->isa, n, nb, skip, k);
            free(a), free(b);
          }
      }
      free(x);
    }
  }
}

Test(kernels, histogram_variants_match_ref_on_large_inputs) {
  /* large enough for the sub-histogram paths; post-ReLU-like and spiky data */
  size_t n = 300007;
  float *x = malloc(n * 4);
  qcal_rng r;
  qcal_rng_seed(&r, 77);
  for (size_t i = 0; i < n; i++) {
    double z = qcal_rng_normal(&r);
    x[i] = i % 4 == 0 ? 0.0f : (i % 4 == 1 ? 1.0f : (float)z);
  }
  float range = 3.0f; /* values beyond it are skipped */
  for (size_t v = 0; v < qcal_kernel_count; v++) {
    const qcal_kernel_entry *e = &qcal_kernel_list[v];
    if (strcmp(e->family, "f32_histogram") || !runnable(e) || !strcmp(e->isa, "ref"))
      continue;
    for (int skip = 0; skip < 2; skip++)
      for (uint32_t nb = 3; nb <= 3000; nb *= 10) {
        uint64_t *a = calloc(nb, 8), *b = calloc(nb, 8);
        qcal_f32_histogram__ref(n, x, nb, range, skip, a);
        ((qcal_f32_histogram_fn *)e->fn)(n, x, nb, range, skip, b);
        for (uint32_t k = 0; k < nb; k++)
          cr_assert_eq(a[k], b[k], "%s nb=%u skip=%d bin %u: %lu vs %lu", e->isa, nb, skip, k,
                       (unsigned long)a[k], (unsigned long)b[k]);
        free(a), free(b);
      }
  }
  free(x);
}

Test(kernels, hist_sse_and_kl_variants_match_ref) {
  for (size_t v = 0; v < qcal_kernel_count; v++) {
    const qcal_kernel_entry *e = &qcal_kernel_list[v];
    if (!runnable(e) || !strcmp(e->isa, "ref"))
      continue;
    for (size_t si = 0; si < N_TEST_SIZES; si++) {
      size_t n = test_sizes[si];
      float *c = malloc((n + 1) * 4);
      double *w = malloc((n + 1) * 8), *S = malloc((n + 1) * 8), *M = malloc((n + 1) * 8),
             *X = malloc((n + 1) * 8);
      for (size_t i = 0; i < n; i++) {
        c[i] = (float)(0.5 + (double)i) * 0.01f;
        w[i] = (double)((i * 7919) % 1000);
        M[i] = (double)(2 + i % 5);
        S[i] = M[i] * (double)(1 + (i * 31) % 400);
        X[i] = S[i] * log(S[i] / M[i]) + (double)(i % 3); /* Jensen: X >= S log(S/m) */
      }
      if (!strcmp(e->family, "f32_hist_sse")) {
        float s = 127.0f / ((float)n * 0.006f + 0.01f);
        double a = qcal_f32_hist_sse__ref(n, c, w, s, -127, 127);
        double b = ((qcal_f32_hist_sse_fn *)e->fn)(n, c, w, s, -127, 127);
        cr_assert_leq(fabs(a - b), 1e-12 * fabs(a) + 1e-300, "%s n=%zu %.17g vs %.17g", e->isa, n,
                      a, b);
      } else if (!strcmp(e->family, "f64_kl_groups")) {
        double a = qcal_f64_kl_groups__ref(n, S, M, X);
        double b = ((qcal_f64_kl_groups_fn *)e->fn)(n, S, M, X);
        double mag = 0;
        for (size_t i = 0; i < n; i++)
          mag += fabs(X[i]);
        /* libmvec log is within 4 ulp: bound by the magnitude of the terms */
        cr_assert_leq(fabs(a - b), 1e-14 * mag + 1e-300, "%s n=%zu %.17g vs %.17g", e->isa, n, a,
                      b);
      }
      free(c), free(w), free(S), free(M), free(X);
    }
  }
}

/* Known values of the reference quantizer (independent of any SIMD code). */
Test(reference, quantize_known_values) {
  const qcal_qformat f = QCAL_QFORMAT_INT8;
  const float amax = 127.0f; /* s = 1: the grid is the integers */
  const float x[] = {0.5f,   1.5f,    2.5f, -0.5f,    -1.5f,     -2.5f, 126.5f, 127.49f,
                     300.0f, -300.0f, NAN,  INFINITY, -INFINITY, -0.0f, 3.0f};
  const int8_t want[] = {0, 2, 2, 0, -2, -2, 126, 127, 127, -127, 0, 127, -127, 0, 3};
  size_t n = sizeof x / sizeof x[0];
  int8_t q[16];
  qcal_layout l = {1, 1, n};
  cr_assert_eq(qcal_quantize(&l, x, &amax, f, q), QCAL_OK);
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(q[i], want[i], "x=%g: got %d want %d", (double)x[i], q[i], want[i]);

  const qcal_qformat full = {8, false, true};
  cr_assert_eq(qcal_quantize(&l, x, &amax, full, q), QCAL_OK);
  cr_assert_eq(q[9], -128);
  cr_assert_eq(q[12], -128);

  const qcal_qformat uf = {8, true, false}; /* s = 255/127 */
  uint8_t u[16];
  cr_assert_eq(qcal_quantize(&l, x, &amax, uf, u), QCAL_OK);
  cr_assert_eq(u[3], 0);   /* negatives clamp to 0 */
  cr_assert_eq(u[8], 255); /* saturate */
  cr_assert_eq(u[11], 255);
  cr_assert_eq(u[14], 6); /* rint(3 * 255/127) = rint(6.02) */
}

Test(reference, tiny_amax_quantizes_to_zero) {
  const float x[] = {1.0f, -1e30f, INFINITY, NAN, 1e-30f};
  float y[5];
  int8_t q[5];
  qcal_layout l = {1, 1, 5};
  for (int k = 0; k < 3; k++) {
    float amax = k == 0 ? 0.0f : (k == 1 ? QCAL_AMAX_EPSILON : 1e-30f);
    cr_assert_eq(qcal_fake_quant(&l, x, &amax, QCAL_QFORMAT_INT8, y), QCAL_OK);
    cr_assert_eq(qcal_quantize(&l, x, &amax, QCAL_QFORMAT_INT8, q), QCAL_OK);
    for (int i = 0; i < 5; i++) {
      cr_assert_eq(y[i], 0.0f, "amax=%g x=%g -> %g", (double)amax, (double)x[i], (double)y[i]);
      cr_assert_eq(q[i], 0);
    }
  }
}

Test(reference, fake_quant_per_channel_any_axis) {
  /* [2, 3, 4] tensor, channels on axis 1 (and -2), then on the last axis. */
  float x[24], y[24], amax3[3] = {1.0f, 10.0f, 100.0f}, amax4[4] = {1, 2, 4, 8};
  for (int i = 0; i < 24; i++)
    x[i] = (float)(i - 11) * 3.3f;
  int64_t shape[3] = {2, 3, 4};
  for (int ai = 0; ai < 3; ai++) {
    int axis = ai == 0 ? 1 : (ai == 1 ? -2 : 2);
    const float *am = ai < 2 ? amax3 : amax4;
    qcal_layout l;
    cr_assert_eq(qcal_layout_make(3, shape, axis, &l), QCAL_OK);
    cr_assert_eq(qcal_fake_quant(&l, x, am, QCAL_QFORMAT_INT8, y), QCAL_OK);
    for (int i = 0; i < 24; i++) {
      int c = ai < 2 ? (i / 4) % 3 : i % 4;
      float s = 127.0f / am[c];
      float q = rintf(x[i] * s);
      q = q > 127 ? 127 : (q < -127 ? -127 : q);
      cr_assert_eq(y[i], q / s, "axis %d i=%d", axis, i);
    }
  }
  qcal_layout l;
  cr_assert_eq(qcal_layout_make(3, shape, 3, &l), QCAL_EINVAL);
  cr_assert_eq(qcal_layout_make(3, shape, -4, &l), QCAL_EINVAL);
}

Test(reference, gemm_q8_known_values) {
  /* A (2x3) s8, B (3x2) s8, zero points 0 and 1. */
  const int8_t a[6] = {1, -2, 3, -128, 127, 0};
  const int8_t b[6] = {1, 2, 3, 4, 5, 6};
  int32_t c[4];
  qcal_gemm_q8_s32__ref(2, 2, 3, a, QCAL_S8, 3, 0, b, QCAL_S8, 2, 1, c, 2);
  /* B - 1 = [[0,1],[2,3],[4,5]] */
  cr_assert_eq(c[0], 1 * 0 - 2 * 2 + 3 * 4);
  cr_assert_eq(c[1], 1 * 1 - 2 * 3 + 3 * 5);
  cr_assert_eq(c[2], -128 * 0 + 127 * 2);
  cr_assert_eq(c[3], -128 * 1 + 127 * 3);
}

Test(reference, bad_formats_rejected) {
  cr_assert_eq(qcal_qformat_check((qcal_qformat){1, false, false}), QCAL_EINVAL);
  cr_assert_eq(qcal_qformat_check((qcal_qformat){17, false, false}), QCAL_EINVAL);
  cr_assert_eq(qcal_qformat_check((qcal_qformat){8, true, true}), QCAL_EINVAL);
  cr_assert_eq(qcal_qformat_qmax((qcal_qformat){16, true, false}), 65535.0f);
  cr_assert_eq(qcal_qformat_qmin((qcal_qformat){16, false, true}), -32768.0f);
  float x = 1, y;
  float bad = -1.0f;
  qcal_layout l = {1, 1, 1};
  cr_assert_eq(qcal_fake_quant(&l, &x, &bad, QCAL_QFORMAT_INT8, &y), QCAL_EINVAL);
  int8_t q;
  cr_assert_eq(qcal_quantize(&l, &x, &x, (qcal_qformat){12, false, false}, &q), QCAL_EINVAL);
}

Test(reference, affine_round_half_even_and_saturate) {
  /* scale 2, zero point 10 (u8) / -3 (s8): x/2 = 2.5 -> 2, 3.5 -> 4, -0.5 -> -0 */
  const float x[] = {5.0f, 7.0f, -1.0f, 1000.0f, -1000.0f, NAN};
  const float scale = 2.0f;
  const uint8_t zu = 10;
  const int8_t zs = -3;
  uint8_t u[6];
  int8_t s[6];
  qcal_layout l = {1, 1, 6};
  cr_assert_eq(qcal_affine_quantize(&l, x, &scale, &zu, QCAL_U8, u), QCAL_OK);
  const uint8_t wu[] = {12, 14, 10, 255, 0, 10};
  for (int i = 0; i < 6; i++)
    cr_assert_eq(u[i], wu[i], "u8 %d: %d", i, u[i]);
  cr_assert_eq(qcal_affine_quantize(&l, x, &scale, &zs, QCAL_S8, s), QCAL_OK);
  const int8_t ws[] = {-1, 1, -3, 127, -128, -3};
  for (int i = 0; i < 6; i++)
    cr_assert_eq(s[i], ws[i], "s8 %d: %d", i, s[i]);
  float y[6];
  cr_assert_eq(qcal_affine_dequantize(&l, s, &scale, &zs, QCAL_S8, y), QCAL_OK);
  cr_assert_eq(y[0], 4.0f);    /* (-1 + 3) * 2 */
  cr_assert_eq(y[4], -250.0f); /* (-128 + 3) * 2 */
  const float zero = 0.0f;
  cr_assert_eq(qcal_affine_quantize(&l, x, &zero, &zs, QCAL_S8, s), QCAL_EINVAL);
}

/* The int8 engine's element-wise kernels: every variant against the
 * reference bit for bit (ties at .5, NaN, saturation, tails), and the
 * reference against known values. */
Test(kernels, onnx_q8_variants_match_ref_bitwise) {
  const size_t nmax = 1000;
  float *x = malloc(nmax * 4);
  int8_t *a = malloc(nmax), *b = malloc(nmax), *y0 = malloc(nmax + 1), *y1 = malloc(nmax + 1);
  uint32_t seed = 99;
  for (size_t i = 0; i < nmax; i++) {
    seed = seed * 1664525u + 1013904223u;
    a[i] = (int8_t)(seed >> 24);
    b[i] = (int8_t)(seed >> 16);
    /* halves and near-halves of the scale below, some out of range, NaN */
    x[i] = i % 97 == 5 ? NAN : (float)((int)(seed % 600) - 300) * 0.5f * 0.25f;
  }
  for (size_t v = 0; v < qcal_kernel_count; v++) {
    const qcal_kernel_entry *e = &qcal_kernel_list[v];
    const qcal_kernel_entry *ref = ref_of(e->family);
    if (e == ref || !runnable(e))
      continue;
    for (size_t si = 0; si < N_TEST_SIZES; si++) {
      size_t n = test_sizes[si] < nmax ? test_sizes[si] : nmax;
      for (int k = 0; k < 2; k++) {
        memset(y0, 0x5a, nmax + 1), memset(y1, 0x5a, nmax + 1);
        if (!strcmp(e->family, "f32_q8_quantize_div")) {
          ((qcal_f32_q8_quantize_div_fn *)ref->fn)(n, x, 0.25f, k ? 3.0f : 0.0f, k, y0);
          ((qcal_f32_q8_quantize_div_fn *)e->fn)(n, x, 0.25f, k ? 3.0f : 0.0f, k, y1);
        } else if (!strcmp(e->family, "f32_q8_quantize_div_planes")) {
          /* C planes of m values, m * C <= nmax; C = 3 takes the shuffle path */
          int C = k ? 3 : 4;
          size_t m = n * (size_t)C <= nmax ? n : nmax / (size_t)C;
          ((qcal_f32_q8_quantize_div_planes_fn *)ref->fn)(m, C, x, m, 0.25f, k ? 3.0f : 0.0f, k,
                                                          y0);
          ((qcal_f32_q8_quantize_div_planes_fn *)e->fn)(m, C, x, m, 0.25f, k ? 3.0f : 0.0f, k, y1);
        } else if (!strcmp(e->family, "s8_s8_add_requant")) {
          ((qcal_s8_s8_add_requant_fn *)ref->fn)(n, a, b, 0.03f, 0.021f, 0.05f, k ? -2.0f : 0.0f, k,
                                                 y0);
          ((qcal_s8_s8_add_requant_fn *)e->fn)(n, a, b, 0.03f, 0.021f, 0.05f, k ? -2.0f : 0.0f, k,
                                               y1);
        } else if (!strcmp(e->family, "q8_s8_rescale")) {
          ((qcal_q8_s8_rescale_fn *)ref->fn)(n, (const uint8_t *)a, k, 0.3f, k ? 0.6f : 0.1f, y0);
          ((qcal_q8_s8_rescale_fn *)e->fn)(n, (const uint8_t *)a, k, 0.3f, k ? 0.6f : 0.1f, y1);
        } else {
          continue;
        }
        for (size_t i = 0; i <= n; i++)
          cr_assert_eq(y0[i], y1[i], "%s %s n=%zu k=%d i=%zu: %d vs %d", e->family, e->isa, n, k, i,
                       y0[i], y1[i]);
      }
    }
  }
  free(x), free(a), free(b), free(y0), free(y1);
}

Test(reference, onnx_q8_known_values) {
  /* x / s: 0.5 and 1.5 and 2.5 round to even, NaN to the zero point,
   * 200 saturates */
  const float x[6] = {0.125f, 0.375f, 0.625f, NAN, 50.0f, -50.0f};
  int8_t q[6];
  qcal_f32_q8_quantize_div__ref(6, x, 0.25f, 0.0f, true, q);
  const int8_t want[6] = {0, 2, 2, 0, 127, -128};
  for (int i = 0; i < 6; i++)
    cr_assert_eq(q[i], want[i], "quantize %d: %d", i, q[i]);
  uint8_t u[2];
  const float xu[2] = {-1.0f, 0.375f};
  qcal_f32_q8_quantize_div__ref(2, xu, 0.25f, 10.0f, false, u);
  cr_assert(u[0] == 6 && u[1] == 12, "%d %d", u[0], u[1]);
  /* 10 * 0.1 + (-30) * 0.1 = -2 -> relu 0; 100 * 0.1 + 27 * 0.1 = 12.7 / 0.1 = 127 */
  const int8_t a[2] = {10, 100}, b[2] = {-30, 27};
  int8_t y[2];
  qcal_s8_s8_add_requant__ref(2, a, b, 0.1f, 0.1f, 0.1f, 0.0f, true, y);
  cr_assert(y[0] == 0 && y[1] == 127, "%d %d", y[0], y[1]);
  /* 127 * 0.2 / 0.1 = 254 saturates; 3 * 0.5 / 1 = 1.5 -> 2; 0x85 as s8 = -123 */
  const uint8_t c[3] = {127, 3, 0x85};
  int8_t r[3];
  qcal_q8_s8_rescale__ref(1, c, true, 0.2f, 0.1f, r);
  qcal_q8_s8_rescale__ref(1, c + 1, true, 0.5f, 1.0f, r + 1);
  qcal_q8_s8_rescale__ref(1, c + 2, false, 1.0f, 1.0f, r + 2);
  cr_assert(r[0] == 127 && r[1] == 2 && r[2] == -123, "%d %d %d", r[0], r[1], r[2]);
}
