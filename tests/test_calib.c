/* Calibrator semantics on hand-built histograms whose answers were worked
 * out by hand (see the comments), plus the collectors. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "qcal/calib.h"
#include "tests/common.h"

/* A histogram with integer edges 0..n. */
static qcal_histogram make_hist(const uint64_t *counts, uint32_t n) {
  qcal_histogram h = {n, malloc(n * 8), malloc((n + 1) * 4)};
  for (uint32_t k = 0; k < n; k++)
    h.counts[k] = counts[k];
  for (uint32_t k = 0; k <= n; k++)
    h.edges[k] = (float)k;
  return h;
}

static qcal_calib_opts opts_bits(int bits, uint32_t start) {
  qcal_calib_opts o = QCAL_CALIB_OPTS_DEFAULT;
  o.fmt.bits = bits;
  o.start_bin = start;
  return o;
}

Test(entropy, three_candidates_minimum_at_end) {
  /* bins [4,2,2,4] -> [2,2,2,4], L = 2:
   * i=2: P=[2,8] Q=[2,2]          KL = .2 ln .4 + .8 ln 1.6        = 0.19274
   * i=3: P=[2,2,6] Q=[2,2,2]      KL = .4 ln .6 + .6 ln 1.8        = 0.14834
   * i=4: P=[2,2,2,4] Q=[2,2,3,3]  KL = .2 ln(2/3) + .4 ln(4/3)     = 0.03398 */
  uint64_t c[] = {4, 2, 2, 4};
  qcal_histogram h = make_hist(c, 4);
  qcal_calib_opts o = opts_bits(2, 2);
  float a;
  cr_assert_eq(qcal_amax_entropy(&h, &o, &a), QCAL_OK);
  cr_assert_eq(a, 4.0f);
  qcal_histogram_free(&h);
}

Test(entropy, interior_minimum) {
  /* bins [1,2,5,3,5,1] -> [2,2,5,3,5,1], total 18, L = 2:
   * i=4: P=[2,2,5,9]/18, Q=[2,2,4,4]/12           KL = 0.061985
   * i=5: P=[2,2,5,3,6]/18, Q=[3,3,3,4,4]/17       KL = 0.081843
   * (i=2: 0.3443, i=3: 0.1077, i=6: 0.1327) -> amax = edges[4] */
  uint64_t c[] = {1, 2, 5, 3, 5, 1};
  qcal_histogram h = make_hist(c, 6);
  qcal_calib_opts o = opts_bits(2, 2);
  float a;
  cr_assert_eq(qcal_amax_entropy(&h, &o, &a), QCAL_OK);
  cr_assert_eq(a, 4.0f);
  o.stride = 2; /* candidates 2, 4, 6 */
  cr_assert_eq(qcal_amax_entropy(&h, &o, &a), QCAL_OK);
  cr_assert_eq(a, 4.0f);
  o.stride = 3; /* candidates 2, 5 */
  cr_assert_eq(qcal_amax_entropy(&h, &o, &a), QCAL_OK);
  cr_assert_eq(a, 5.0f);
  qcal_histogram_free(&h);
}

Test(entropy, ties_pick_the_last_candidate) {
  /* bins [5,5,1,0]: i=3 and i=4 both give Q == P, KL = 0 -> the last, 4. */
  uint64_t c[] = {5, 5, 1, 0};
  qcal_histogram h = make_hist(c, 4);
  qcal_calib_opts o = opts_bits(2, 2);
  float a;
  cr_assert_eq(qcal_amax_entropy(&h, &o, &a), QCAL_OK);
  cr_assert_eq(a, 4.0f);
  qcal_histogram_free(&h);
}

Test(entropy, q_zero_where_p_positive_is_infinite) {
  /* bins [0,0,0,9]: i=2,3 put the tail on an empty bin (KL = inf); i=4 is
   * exact (KL = 0). A 16-bit grid has one group per bin. */
  uint64_t c[] = {0, 0, 0, 9};
  qcal_histogram h = make_hist(c, 4);
  for (int bits = 2; bits <= 16; bits += 14) {
    qcal_calib_opts o = opts_bits(bits, 2);
    float a;
    cr_assert_eq(qcal_amax_entropy(&h, &o, &a), QCAL_OK);
    cr_assert_eq(a, 4.0f, "bits %d", bits);
  }
  qcal_histogram_free(&h);
}

Test(entropy, bad_options) {
  uint64_t c[] = {1, 2, 3, 4};
  qcal_histogram h = make_hist(c, 4);
  float a;
  qcal_calib_opts o = opts_bits(8, 128); /* more than 4 bins */
  cr_assert_eq(qcal_amax_entropy(&h, &o, &a), QCAL_EINVAL);
  o = opts_bits(1, 2);
  cr_assert_eq(qcal_amax_entropy(&h, &o, &a), QCAL_EINVAL);
  o = opts_bits(8, 2);
  o.stride = 0;
  cr_assert_eq(qcal_amax_entropy(&h, &o, &a), QCAL_EINVAL);
  qcal_histogram_free(&h);
}

Test(mse, hand_computed_minimum) {
  /* centres .5 1.5 2.5 3.5, one count each, 2-bit narrow grid {-1,0,1}:
   * amax 1.5: fq = [0,1.5,1.5,1.5] sse = .25+0+1+4   = 5.25
   * amax 2.5: fq = [0,2.5,2.5,2.5] sse = .25+1+0+1   = 2.25  <- min
   * amax 3.5: fq = [0,0,3.5,3.5]   sse = .25+2.25+1  = 3.5 */
  uint64_t c[] = {1, 1, 1, 1};
  qcal_histogram h = make_hist(c, 4);
  qcal_calib_opts o = opts_bits(2, 1);
  float a;
  cr_assert_eq(qcal_amax_mse(&h, &o, &a), QCAL_OK);
  cr_assert_eq(a, 2.5f);
  qcal_histogram_free(&h);
}

Test(mse, ties_pick_the_first) {
  /* only the 0.5 bin: every candidate rounds it to 0, sse .25 each -> 1.5 */
  uint64_t c[] = {3, 0, 0, 0};
  qcal_histogram h = make_hist(c, 4);
  qcal_calib_opts o = opts_bits(2, 1);
  float a;
  cr_assert_eq(qcal_amax_mse(&h, &o, &a), QCAL_OK);
  cr_assert_eq(a, 1.5f);
  qcal_histogram_free(&h);
}

Test(percentile, searchsorted_left_on_float_cdf) {
  /* cdf = [0.1, 0.30000000000000004, 0.6000000000000001, 1.0000000000000002] */
  uint64_t c[] = {10, 20, 30, 40};
  qcal_histogram h = make_hist(c, 4);
  qcal_calib_opts o = QCAL_CALIB_OPTS_DEFAULT;
  const double p[] = {0, 10, 10.0001, 30, 50, 60, 99.99, 100};
  /* p=30: 0.30000000000000004 >= 0.3 -> idx 1; p=60: 0.6000000000000001 >= 0.6
   * -> idx 2; p=10: cdf[0] = 0.1 >= 0.1 -> idx 0 */
  const float want[] = {0, 0, 1, 1, 2, 2, 3, 3};
  for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
    o.percentile = p[i];
    float a;
    cr_assert_eq(qcal_amax_percentile(&h, &o, &a), QCAL_OK);
    cr_assert_eq(a, want[i], "p=%g got %g", p[i], (double)a);
  }
  o.percentile = 100.5;
  float a;
  cr_assert_eq(qcal_amax_percentile(&h, &o, &a), QCAL_EINVAL);
  o.percentile = -1;
  cr_assert_eq(qcal_amax_percentile(&h, &o, &a), QCAL_EINVAL);
  qcal_histogram_free(&h);
}

Test(histogram, binning_and_growth) {
  qcal_hist_opts ho = {4, false, 1};
  qcal_histogram h = {0};
  /* max 4 -> width 1: 0,.5 -> 0; 1,1.5 -> 1; 2 -> 2; 4 -> last bin */
  const float b1[] = {0.0f, 0.5f, 1.0f, -1.5f, 2.0f, -4.0f};
  cr_assert_eq(qcal_histogram_collect(&h, b1, 6, &ho), QCAL_OK);
  cr_assert_eq(h.nbins, 4);
  const uint64_t w1[] = {2, 2, 1, 1};
  for (int k = 0; k < 4; k++)
    cr_assert_eq(h.counts[k], w1[k], "bin %d", k);
  cr_assert_eq(h.edges[4], 4.0f);
  /* 5.5 exceeds the range: width stays 1, bins grow to ceil(5.5) = 6 */
  const float b2[] = {5.5f, 0.25f};
  cr_assert_eq(qcal_histogram_collect(&h, b2, 2, &ho), QCAL_OK);
  cr_assert_eq(h.nbins, 6);
  const uint64_t w2[] = {3, 2, 1, 1, 0, 1};
  for (int k = 0; k < 6; k++)
    cr_assert_eq(h.counts[k], w2[k], "bin %d", k);
  for (int k = 0; k <= 6; k++)
    cr_assert_eq(h.edges[k], (float)k);
  qcal_histogram_free(&h);

  ho.skip_zeros = true;
  cr_assert_eq(qcal_histogram_collect(&h, b1, 6, &ho), QCAL_OK);
  cr_assert_eq(h.counts[0], 1);
  qcal_histogram_free(&h);
}

Test(histogram, counts_are_64_bit_and_threads_agree) {
  /* 2^24 + 3 copies of one value: float32 counts would stall at 2^24. */
  size_t n = (1u << 24) + 3;
  float *x = malloc(n * 4);
  for (size_t i = 0; i < n; i++)
    x[i] = 1.0f;
  qcal_hist_opts ho = {2048, false, 2};
  qcal_histogram h = {0};
  cr_assert_eq(qcal_histogram_collect(&h, x, n, &ho), QCAL_OK);
  cr_assert_eq(h.counts[2047], n);
  qcal_histogram_free(&h);
  qcal_rng r;
  qcal_rng_seed(&r, 5);
  for (size_t i = 0; i < (1u << 20); i++)
    x[i] = (float)qcal_rng_normal(&r);
  qcal_histogram a = {0}, b = {0};
  ho.threads = 1;
  cr_assert_eq(qcal_histogram_collect(&a, x, 1u << 20, &ho), QCAL_OK);
  ho.threads = 2;
  cr_assert_eq(qcal_histogram_collect(&b, x, 1u << 20, &ho), QCAL_OK);
  uint64_t tot = 0;
  for (uint32_t k = 0; k < 2048; k++) {
    cr_assert_eq(a.counts[k], b.counts[k]);
    tot += a.counts[k];
  }
  cr_assert_eq(tot, 1u << 20);
  qcal_histogram_free(&a);
  qcal_histogram_free(&b);
  free(x);
}

Test(histogram, all_zero_then_data) {
  qcal_hist_opts ho = {8, false, 1};
  qcal_histogram h = {0};
  float z[4] = {0, 0, 0, 0}, d[2] = {8.0f, 0.5f};
  cr_assert_eq(qcal_histogram_collect(&h, z, 4, &ho), QCAL_OK);
  qcal_calib_opts o = opts_bits(8, 1);
  float a = -1;
  cr_assert_eq(qcal_amax_entropy(&h, &o, &a), QCAL_OK);
  cr_assert_eq(a, 0.0f);
  cr_assert_eq(qcal_amax_mse(&h, &o, &a), QCAL_OK);
  cr_assert_eq(a, 0.0f);
  cr_assert_eq(qcal_amax_percentile(&h, &o, &a), QCAL_OK);
  cr_assert_eq(a, 0.0f);
  cr_assert_eq(qcal_histogram_collect(&h, d, 2, &ho), QCAL_OK);
  cr_assert_eq(h.edges[8], 8.0f);
  cr_assert_eq(h.counts[0], 5); /* four zeros and 0.5 */
  cr_assert_eq(h.counts[7], 1);
  qcal_histogram_free(&h);
}

static qcal_tensor tensor2(int64_t r, int64_t c, const float *v) {
  qcal_tensor t;
  int64_t s[2] = {r, c};
  cr_assert_eq(qcal_tensor_alloc(&t, 2, s), QCAL_OK);
  memcpy(t.data, v, (size_t)(r * c) * 4);
  return t;
}

Test(max, running_per_tensor_and_per_channel) {
  const float v1[6] = {1, -7, 3, -2, 5, 0.5f}, v2[6] = {-9, 1, 1, 1, 1, 8};
  qcal_tensor a = tensor2(2, 3, v1), b = tensor2(2, 3, v2);
  qcal_max_collector m;
  qcal_max_collector_init(&m, QCAL_PER_TENSOR);
  cr_assert_eq(qcal_max_collector_collect(&m, &a), QCAL_OK);
  cr_assert_eq(m.amax[0], 7.0f);
  cr_assert_eq(qcal_max_collector_collect(&m, &b), QCAL_OK);
  cr_assert_eq(m.amax[0], 9.0f);
  qcal_max_collector_free(&m);
  /* axis -1 (3 channels, inner = 1) and axis 0 (2 channels) */
  qcal_max_collector_init(&m, -1);
  cr_assert_eq(qcal_max_collector_collect(&m, &a), QCAL_OK);
  cr_assert_eq(qcal_max_collector_collect(&m, &b), QCAL_OK);
  cr_assert_eq(m.channels, 3);
  cr_assert_eq(m.amax[0], 9.0f);
  cr_assert_eq(m.amax[1], 7.0f);
  cr_assert_eq(m.amax[2], 8.0f);
  qcal_max_collector_free(&m);
  qcal_max_collector_init(&m, 0);
  cr_assert_eq(qcal_max_collector_collect(&m, &a), QCAL_OK);
  cr_assert_eq(m.amax[0], 7.0f);
  cr_assert_eq(m.amax[1], 5.0f);
  qcal_tensor c = tensor2(3, 2, v1); /* 3 channels on axis 0 now */
  cr_assert_eq(qcal_max_collector_collect(&m, &c), QCAL_EINVAL);
  qcal_max_collector_free(&m);
  qcal_tensor_free(&a), qcal_tensor_free(&b), qcal_tensor_free(&c);
}

Test(histogram, per_channel_uses_each_channels_range) {
  /* columns (axis 1) have ranges 2, 4 and 8 */
  const float v[6] = {1, -4, 8, 2, 1, 4};
  qcal_tensor t = tensor2(2, 3, v);
  qcal_hist_collector hc;
  qcal_hist_opts ho = {4, false, 1};
  cr_assert_eq(qcal_hist_collector_init(&hc, 1, &ho), QCAL_OK);
  cr_assert_eq(qcal_hist_collector_collect(&hc, &t), QCAL_OK);
  cr_assert_eq(hc.channels, 3);
  cr_assert_eq(hc.hist[0].edges[4], 2.0f);
  cr_assert_eq(hc.hist[1].edges[4], 4.0f);
  cr_assert_eq(hc.hist[2].edges[4], 8.0f);
  /* channel 1 holds |-4| (last bin) and 1 (bin 1 of width 1) */
  cr_assert_eq(hc.hist[1].counts[1], 1);
  cr_assert_eq(hc.hist[1].counts[3], 1);
  qcal_hist_collector_free(&hc);
  qcal_tensor_free(&t);
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

Test(calibrate, method_table_and_request) {
  cr_assert_not_null(qcal_method_find("entropy"));
  cr_assert_null(qcal_method_find("kl"));
  cr_assert_eq(qcal_method_count, 4);
  qcal_tensor t;
  cr_assert_eq(qcal_synthetic_make("uniform", 3, 100000, &t), QCAL_OK);
  qcal_calib_request r = {qcal_method_find("percentile"), QCAL_PER_TENSOR, QCAL_HIST_OPTS_DEFAULT,
                          QCAL_CALIB_OPTS_DEFAULT};
  r.calib.percentile = 50;
  qcal_calib_result res;
  cr_assert_eq(qcal_calibrate(&t, &r, &res), QCAL_OK);
  /* the sample median of |x|, found by sorting, lies in the chosen bin */
  float *s = malloc(t.numel * 4);
  for (size_t i = 0; i < t.numel; i++)
    s[i] = fabsf(t.data[i]);
  qsort(s, t.numel, 4, cmp_float);
  float width = s[t.numel - 1] / 2048;
  float med = s[t.numel / 2 - 1]; /* cdf reaches 0.5 at the n/2-th value */
  cr_assert(res.amax[0] <= med && med < res.amax[0] + width * 1.0001f, "amax %g median %g",
            (double)res.amax[0], (double)med);
  free(s);
  qcal_calib_result_free(&res);
  t.data[7] = NAN;
  cr_assert_eq(qcal_calibrate(&t, &r, &res), QCAL_EDATA);
  qcal_tensor_free(&t);
}
