/* qcal gemm / qcal stream building blocks: the bandwidth kernels against the
 * scalar reference, the figure conversions, the statistics, the peak loops'
 * operation counts, and the oneDNN GEMM with its correctness check. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "bench/gemm.h"
#include "qcal/kernels.h"
#include "qcal/peak.h"
#include "tests/common.h"

static const qcal_kernel_entry *variant(const char *fam, const char *isa) {
  for (size_t i = 0; i < qcal_kernel_count; i++)
    if (!strcmp(qcal_kernel_list[i].family, fam) && !strcmp(qcal_kernel_list[i].isa, isa))
      return &qcal_kernel_list[i];
  return NULL;
}

static int runnable(const qcal_kernel_entry *e) {
  return (e->features & qcal_cpu_features()) == e->features;
}

Test(stream_kernels, every_variant_matches_ref_bitwise) {
  const char *fams[] = {"f32_copy", "f32_triad", "s32_s8_requantize", "f32_relu", "s8_relu",
                        "f32_add",  "s8_add"};
  int checked = 0;
  for (size_t f = 0; f < 7; f++)
    for (size_t v = 0; v < qcal_kernel_count; v++) {
      const qcal_kernel_entry *e = &qcal_kernel_list[v], *ref = variant(fams[f], "ref");
      cr_assert_not_null(ref, "%s has no ref", fams[f]);
      if (strcmp(e->family, fams[f]) || e == ref || !runnable(e))
        continue;
      for (size_t si = 0; si < N_TEST_SIZES; si++) {
        size_t n = test_sizes[si] + 200; /* also past the 128-wide unrolled bodies */
        float *a = malloc((n + 1) * 4), *b = malloc((n + 1) * 4), *r1 = malloc((n + 1) * 4),
              *r2 = malloc((n + 1) * 4);
        int8_t *qa = malloc(n + 1), *qb = malloc(n + 1), *q1 = malloc(n + 1), *q2 = malloc(n + 1);
        int32_t *ia = malloc((n + 1) * 4);
        fill_special(a, n, n, 1.0f);
        qcal_rng r;
        qcal_rng_seed(&r, n);
        for (size_t i = 0; i < n; i++) {
          b[i] = (float)qcal_rng_normal(&r);
          qa[i] = (int8_t)qcal_rng_next(&r);
          qb[i] = (int8_t)qcal_rng_next(&r);
          ia[i] = (int32_t)(qcal_rng_next(&r) % 40000) - 20000;
        }
        ia[0] = INT32_MIN, ia[n - 1] = INT32_MAX; /* saturation */
        r1[n] = r2[n] = 7.0f, q1[n] = q2[n] = 7;
        int isq = 0;
#define RUN(fn_t, ...)                                                                             \ ((fn_t *)ref->fn)(__VA_ARGS__##_R), ((fn_t *)e->fn)(__VA_ARGS__##_V)
        switch (f) {
        case 0:
          ((qcal_f32_copy_fn *)ref->fn)(n, a, r1), ((qcal_f32_copy_fn *)e->fn)(n, a, r2);
          break;
        case 1:
          ((qcal_f32_triad_fn *)ref->fn)(n, a, b, 0.37f, r1);
          ((qcal_f32_triad_fn *)e->fn)(n, a, b, 0.37f, r2);
          break;
        case 2:
          ((qcal_s32_s8_requantize_fn *)ref->fn)(n, ia, q1, 1.0f / 77, -128, 127);
          ((qcal_s32_s8_requantize_fn *)e->fn)(n, ia, q2, 1.0f / 77, -128, 127);
          isq = 1;
          break;
        case 3:
          ((qcal_f32_relu_fn *)ref->fn)(n, a, r1), ((qcal_f32_relu_fn *)e->fn)(n, a, r2);
          break;
        case 4:
          ((qcal_s8_relu_fn *)ref->fn)(n, qa, q1), ((qcal_s8_relu_fn *)e->fn)(n, qa, q2);
          isq = 1;
          break;
        case 5:
          ((qcal_f32_add_fn *)ref->fn)(n, a, b, r1), ((qcal_f32_add_fn *)e->fn)(n, a, b, r2);
          break;
        case 6:
          ((qcal_s8_add_fn *)ref->fn)(n, qa, qb, q1), ((qcal_s8_add_fn *)e->fn)(n, qa, qb, q2);
          isq = 1;
          break;
        }
        for (size_t i = 0; i <= n; i++) {
          if (isq)
            cr_assert_eq(q1[i], q2[i], "%s %s n=%zu i=%zu: %d vs %d", fams[f], e->isa, n, i, q1[i],
                         q2[i]);
          else
            cr_assert_eq(f2u(r1[i]), f2u(r2[i]), "%s %s n=%zu i=%zu: %a vs %a", fams[f], e->isa, n,
                         i, (double)r1[i], (double)r2[i]);
        }
        free(a), free(b), free(r1), free(r2), free(qa), free(qb), free(q1), free(q2), free(ia);
        checked++;
      }
    }
  if (!checked) /* the stream kernels are AVX-512 only */
    cr_skip_test("no optimised stream kernel runs on this CPU");
}

Test(stream_kernels, reference_known_values) {
  int32_t x[5] = {-1000, -64, 32, 96, 100000};
  int8_t y[5];
  qcal_s32_s8_requantize__ref(5, x, y, 1.0f / 64, -128, 127);
  const int8_t want[5] = {-16, -1, 0, 2, 127}; /* 0.5 -> 0 and 1.5 -> 2: half to even */
  for (int i = 0; i < 5; i++)
    cr_assert_eq(y[i], want[i], "%d: %d", i, y[i]);
  int8_t a[3] = {100, -100, 5}, b[3] = {100, -100, -7}, s[3];
  qcal_s8_add__ref(3, a, b, s);
  cr_assert(s[0] == 127 && s[1] == -128 && s[2] == -2);
  float f[3] = {-1.0f, -0.0f, 2.5f}, g[3];
  qcal_f32_relu__ref(3, f, g);
  cr_assert(g[0] == 0.0f && f2u(g[1]) == 0 && g[2] == 2.5f);
}

Test(figures, conversions_and_statistics) {
  cr_assert_eq(qcal_gemm_ops(2048, 2048, 2048, 1), 2.0 * 2048 * 2048 * 2048);
  cr_assert_eq(qcal_gemm_ops(289, 1, 9, 384), 2.0 * 289 * 9 * 384);
  cr_assert_float_eq(qcal_gops(2e12, 2.0), 1000.0, 1e-9);
  cr_assert_float_eq(qcal_gbps(8.0 * (1 << 26), 0.016), 8.0 * (1 << 26) / 0.016 / 1e9, 1e-9);
  /* 1937 GOPS on 2 cores at 3.82 GHz is 253.5 int8 ops/cycle/core: two
   * VPDPBUSD zmm (128 ops each) per cycle */
  cr_assert_float_eq(qcal_ops_per_cycle(1937.0, 3.82, 2), 253.53, 0.01);
  cr_assert_float_eq(qcal_peak_gops(256.0, 2, 3.82), 1955.84, 1e-9);
  cr_assert_float_eq(qcal_percent(1863.3, 1937.0), 96.195, 0.001);
  cr_assert_eq(qcal_percent(1, 0), 0.0);
  double v[7] = {5, 1, 9, 3, 7, 100, 2};
  qcal_stats s = qcal_stats_of(v, 7);
  cr_assert(s.median == 5 && s.min == 1 && s.max == 100 && s.n == 7);
  /* |v - 5| = 4 0 4 2 2 95 3 -> sorted 0 2 2 3 4 4 95 -> MAD 3 */
  cr_assert_eq(s.mad, 3.0);
  double w[4] = {4, 1, 3, 2};
  s = qcal_stats_of(w, 4);
  cr_assert(s.median == 2.5 && s.mad == 1.0);
}

Test(figures, peak_loops_count_their_operations) {
  const unsigned f = qcal_cpu_features();
  if (!(f & QCAL_ISA_VNNI) || !(f & QCAL_ISA_BF16))
    cr_skip_test("CPU lacks AVX-512 VNNI or BF16");
  cr_assert_eq(qcal_peak_vnni__avx512(10), 10u * 12 * 128);
  cr_assert_eq(qcal_peak_fma__avx512(10), 10u * 12 * 32);
  cr_assert_eq(qcal_peak_bf16__avx512(10), 10u * 20 * 64);
  double ghz = qcal_measure_ghz();
  cr_assert(ghz > 0.5 && ghz < 8.0, "clock %g GHz", ghz);
}

Test(gemm, onednn_every_type_checks_out_and_garbage_is_caught) {
  const gemm_shape shapes[] = {{37, 29, 53, 1, "odd"}, {64, 1, 9, 5, "depthwise-like"}};
  for (int s = 0; s < 2; s++)
    for (int t = 0; t < 4; t++) {
      if (t == GEMM_BF16 && !(qcal_cpu_features() & QCAL_ISA_BF16))
        continue;
      cpu_gemm *g;
      qcal_status st = qcal_cpu_gemm_create(&g, (gemm_type)t, &shapes[s], 1);
      cr_assert_eq(st, QCAL_OK, "%s %s: %s", qcal_gemm_type_names[t], shapes[s].label,
                   qcal_last_error());
      cr_assert_eq(qcal_cpu_gemm_run(g), QCAL_OK);
      double err;
      char why[160] = "";
      cr_assert_eq(qcal_cpu_gemm_check(g, 4096, &err, why, sizeof why), QCAL_OK, "%s %s: %s",
                   qcal_gemm_type_names[t], shapes[s].label, why);
      /* corrupt the whole output: the sampled check must fail */
      size_t n = (size_t)(shapes[s].m * shapes[s].n * shapes[s].batch);
      int32_t *c = qcal_cpu_gemm_output(g);
      for (size_t i = 0; i < n; i++)
        c[i] ^= 0x5a5a5a;
      cr_assert_eq(qcal_cpu_gemm_check(g, 64, &err, why, sizeof why), QCAL_EDATA,
                   "%s: garbage passed", qcal_gemm_type_names[t]);
      cr_assert_not_null(strstr(why, "reference"));
      qcal_cpu_gemm_destroy(g);
    }
  gemm_shape big = {1 << 20, 1 << 20, 1 << 20, 1, ""};
  cr_assert_gt(qcal_gemm_bytes(GEMM_F32, &big), 1e12);
}
