/* qcal stream: bandwidth-bound kernels from in-cache to >= 4x the LLC, next
 * to the STREAM copy and triad measured in the same run. */
#include <json-c/json.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/benchout.h"
#include "bench/cli.h"
#include "qcal/cuda.h"
#include "qcal/kernels.h"

typedef struct {
  const char *out, *json, *sizes;
  int threads, reps, quick;
} stream_cfg;

#define O(f) offsetof(stream_cfg, f)
static const qcal_opt opts[] = {
    {"output", "FILE.h5", "results file (-o)", O(out), OPT_STRING, 0, 0, NULL},
    {"json", "FILE.json", "Google Benchmark shaped JSON", O(json), OPT_STRING, 0, 0, NULL},
    {"sizes", "LIST", "elements per array, e.g. 8K,1M,64M (default: in-cache to 4x LLC)", O(sizes),
     OPT_STRING, 0, 0, NULL},
    {"threads", "N", "threads, pinned (0: all cores)", O(threads), OPT_INT, 0, 1024, NULL},
    {"reps", "R", "timed repetitions after warm-up", O(reps), OPT_INT, 10, 1000, NULL},
    {"quick", NULL, "three sizes (CI, < 60 s)", O(quick), OPT_FLAG, 0, 0, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "stream",
    "qcal stream [--sizes LIST] [--threads N] [--reps R] [--quick] [-o FILE.h5] [--json FILE.json]",
    "Bandwidth of STREAM copy and triad (the limit), the conversions (quantize\n"
    "f32->s8, dequantize s8->f32, requantize s32->s8, fake-quant) and elementwise\n"
    "ReLU and add in fp32 and int8, at sizes from in-cache to >= 4x the last-level\n"
    "cache. Bytes are counted as STREAM does (read + write).",
    opts,
};

enum {
  K_COPY,
  K_TRIAD,
  K_QUANT,
  K_DEQUANT,
  K_REQUANT,
  K_FAKEQ,
  K_RELU_F,
  K_RELU_Q,
  K_ADD_F,
  K_ADD_Q,
  NK
};
static const struct {
  const char *name;
  int bytes;  /* per element, read + write */
  int pair;   /* the fp32 kernel an int8 one is compared with, or -1 */
  int wbytes; /* of those, written */
} kinfo[NK] = {
    {"copy f32", 8, -1, 4},           {"triad f32", 12, -1, 4},
    {"quantize f32->s8", 5, -1, 1},   {"dequantize s8->f32", 5, -1, 4},
    {"requantize s32->s8", 5, -1, 1}, {"fake-quant f32", 8, -1, 4},
    {"relu f32", 8, -1, 4},           {"relu s8", 2, K_RELU_F, 1},
    {"add f32", 12, -1, 4},           {"add s8", 3, K_ADD_F, 1},
};

/* How far kernel k's counted byte rate may exceed copy's. Bytes are counted
 * read + written; with write-allocate caches a store also reads its line,
 * so copy moves 12 B for the 8 it counts, and a kernel with fewer writes per
 * counted byte can count more per second: at most 1.5 (r + w) / (r + 2w) of
 * copy's rate, and never less than copy's (where stores allocate nothing). */
static double copy_allowance(int k) {
  double w = kinfo[k].wbytes, r = kinfo[k].bytes - w;
  double a = 1.5 * (r + w) / (r + 2 * w);
  return a > 1.0 ? a : 1.0;
}

static const char *const copy_under_measured = "copy under-measured: machine busy?";

typedef struct {
  float *fa, *fb, *fc;
  int8_t *qa, *qb, *qc;
  int32_t *ia;
} bufs;

static void run_chunk(int k, const bufs *b, size_t lo, size_t n) {
  const qcal_kernel_table *kt = qcal_kernels();
  const float s = 0.5f, sq = 127.0f / 4.0f, sdq = 127.0f / 4.0f, step = 4.0f / 127.0f;
  switch (k) {
  case K_COPY:
    kt->f32_copy(n, b->fa + lo, b->fb + lo);
    break;
  case K_TRIAD:
    kt->f32_triad(n, b->fb + lo, b->fc + lo, s, b->fa + lo);
    break;
  case K_QUANT:
    kt->f32_q8_quantize(n, b->fa + lo, (uint8_t *)b->qa + lo, &sq, false, -127, 127);
    break;
  case K_DEQUANT:
    kt->s8_f32_dequantize(n, b->qa + lo, b->fb + lo, &step, false);
    break;
  case K_REQUANT:
    kt->s32_s8_requantize(n, b->ia + lo, b->qb + lo, 1.0f / 64, -128, 127);
    break;
  case K_FAKEQ:
    kt->f32_f32_fakequant(n, b->fa + lo, b->fb + lo, &sq, &sdq, false, -127, 127);
    break;
  case K_RELU_F:
    kt->f32_relu(n, b->fa + lo, b->fb + lo);
    break;
  case K_RELU_Q:
    kt->s8_relu(n, b->qa + lo, b->qb + lo);
    break;
  case K_ADD_F:
    kt->f32_add(n, b->fa + lo, b->fb + lo, b->fc + lo);
    break;
  case K_ADD_Q:
    kt->s8_add(n, b->qa + lo, b->qb + lo, b->qc + lo);
    break;
  }
}

/* One sample: `inner` calls over n elements split across the pinned team,
 * timed as a whole; returns seconds per call. */
static double sample(int k, const bufs *b, size_t n, int nt, int inner) {
  double t0 = qcal_now();
#pragma omp parallel num_threads(nt)
  {
    int id = omp_get_thread_num();
    /* chunk boundaries on 64-element multiples keep every chunk aligned */
    size_t per = (n / (size_t)nt + 63) & ~(size_t)63;
    size_t lo = per * (size_t)id, hi = lo + per < n ? lo + per : n;
    for (int r = 0; r < inner && lo < hi; r++)
      run_chunk(k, b, lo, hi - lo);
  }
  return (qcal_now() - t0) / inner;
}

/* The L3 this core shares (sysfs); sysconf may report every CCD's L3. */
static size_t llc_bytes(void) {
  FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r");
  size_t kb = 0;
  if (f) {
    if (fscanf(f, "%zuK", &kb) != 1)
      kb = 0;
    fclose(f);
  }
  if (kb)
    return kb * 1024;
  long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
  return v > 0 ? (size_t)v : (size_t)32 << 20;
}

static int parse_sizes(const char *s, size_t *v, int cap) {
  int n = 0;
  while (*s) {
    char *e;
    double x = strtod(s, &e);
    if (e == s || x <= 0 || n == cap)
      return -1;
    double mult = 1;
    if (*e == 'K' || *e == 'k')
      mult = 1024, e++;
    else if (*e == 'M' || *e == 'm')
      mult = 1 << 20, e++;
    else if (*e == 'G' || *e == 'g')
      mult = 1 << 30, e++;
    if (*e && *e != ',')
      return -1;
    v[n++] = (size_t)(x * mult);
    if (v[n - 1] == 0)
      return -1;
    s = *e ? e + 1 : e;
  }
  return n;
}

int qcal_cmd_stream(int argc, char **argv) {
  stream_cfg cfg = {.reps = 10};
  const char *pos[1];
  int npos, r = qcal_opts_parse(&info, &cfg, argc, argv, pos, 0, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (qcal_check_outputs("stream", cfg.out, cfg.json, NULL, 0))
    return QCAL_EXIT_USAGE;
  const size_t llc = llc_bytes();
  size_t sizes[16];
  int ns;
  if (cfg.sizes) {
    ns = parse_sizes(cfg.sizes, sizes, 16);
    if (ns <= 0)
      return qcal_die("stream: --sizes '%s' is not a list of positive sizes (8K,1M,64M)",
                      cfg.sizes);
  } else {
    size_t big = 4 * llc / 4; /* fp32 elements: the source array alone is >= 4x LLC */
    big = big < ((size_t)64 << 20) ? (size_t)64 << 20 : big;
    size_t def[] = {8192, 256 * 1024, 2 << 20, big};
    size_t quick[] = {8192, 256 * 1024, big};
    ns = cfg.quick ? 3 : 4;
    memcpy(sizes, cfg.quick ? quick : def, (size_t)ns * sizeof *sizes);
  }
  size_t nmax = 0;
  for (int i = 0; i < ns; i++)
    nmax = sizes[i] > nmax ? sizes[i] : nmax;
  const double need = (double)nmax * (3 * 4 + 3 + 4) + 64 * 7;
  const double avail = qcal_mem_available();
  if (need > 0.8 * avail)
    return qcal_die("stream: %zu elements need %.1f GiB, only %.1f GiB of memory is available",
                    nmax, need / 1073741824.0, avail / 1073741824.0);
  bufs b = {qcal_alloc(nmax * 4), qcal_alloc(nmax * 4), qcal_alloc(nmax * 4), qcal_alloc(nmax),
            qcal_alloc(nmax),     qcal_alloc(nmax),     qcal_alloc(nmax * 4)};
  if (!b.fa || !b.fb || !b.fc || !b.qa || !b.qb || !b.qc || !b.ia)
    return qcal_die("stream: cannot allocate %.1f GiB", need / 1073741824.0);
  const int nt = cfg.threads > 0 ? cfg.threads : omp_get_num_procs();
  qcal_pin_threads(nt);
  /* first touch by the pinned team, then realistic data */
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t i = 0; i < nmax; i++) {
    b.fa[i] = (float)((int)(i % 17) - 8) * 0.25f;
    b.fb[i] = 1.0f, b.fc[i] = 2.0f;
    b.qa[i] = (int8_t)((int)(i % 251) - 125);
    b.qb[i] = (int8_t)((int)(i % 7) - 3), b.qc[i] = 0;
    b.ia[i] = (int32_t)(i % 20000) - 10000;
  }
  printf("qcal stream: %d pinned thread(s), kernels %s, LLC %.0f MiB, %d reps\n", nt,
         qcal_kernels()->isa, llc / 1048576.0, cfg.reps);
  bench_set bs = {0};
  qcal_table *tab = qcal_table_new_schema(QCAL_TABLE_STREAM);
  int c_k = QCAL_COL(STREAM, kernel), c_e = QCAL_COL(STREAM, engine),
      c_n = QCAL_COL(STREAM, elements), c_b = QCAL_COL(STREAM, bytes),
      c_med = QCAL_COL(STREAM, median_seconds), c_min = QCAL_COL(STREAM, min_seconds),
      c_max = QCAL_COL(STREAM, max_seconds), c_mad = QCAL_COL(STREAM, mad_seconds),
      c_g = QCAL_COL(STREAM, gbps), c_p = QCAL_COL(STREAM, copy_percent),
      c_x = QCAL_COL(STREAM, speedup_vs_fp32), c_th = QCAL_COL(STREAM, threads);
  double last_pct[NK] = {0}, last_x[NK] = {0};
  int flagged_rows = 0;
  qcal_progress prog;
  qcal_progress_start(&prog, "stream", (size_t)(ns * NK));
  for (int si = 0; si < ns; si++) {
    const size_t n = sizes[si];
    const int inner = n >= ((size_t)1 << 22) ? 1 : (int)(((size_t)1 << 22) / n);
    double med[NK], gbs[NK];
    bench_rec *recs[NK];
    /* copy is sampled again after every kernel, and its fastest sample is
     * the limit; the rows print once it is known */
    double copy_best = INFINITY;
    long rows[NK];
    for (int k = 0; k < NK; k++) {
      double s[1000];
      sample(k, &b, n, nt, inner); /* warm-up */
      for (int rep = 0; rep < cfg.reps; rep++)
        s[rep] = sample(k, &b, n, nt, inner);
      double c = sample(K_COPY, &b, n, nt, inner);
      copy_best = c < copy_best ? c : copy_best;
      char name[128];
      snprintf(name, sizeof name, "stream/cpu/%s/%zu", kinfo[k].name, n);
      for (char *p = name; *p; p++)
        if (*p == ' ')
          *p = '_';
      bench_rec *rec = qcal_bench_add(&bs, name, s, cfg.reps);
      if (k == K_COPY)
        copy_best = rec->st.min < copy_best ? rec->st.min : copy_best;
      med[k] = rec->st.median;
      gbs[k] = qcal_gbps((double)kinfo[k].bytes * (double)n, med[k]);
      double x = kinfo[k].pair >= 0 ? med[kinfo[k].pair] / med[k] : NAN;
      last_x[k] = x;
      qcal_bench_counter(rec, "bytes_per_second", gbs[k] * 1e9);
      recs[k] = rec;
      rows[k] = qcal_table_row(tab);
      qcal_table_set_s(tab, c_k, kinfo[k].name);
      qcal_table_set_s(tab, c_e, "cpu");
      qcal_table_set_i(tab, c_n, (int64_t)n);
      qcal_table_set_f(tab, c_b, (double)kinfo[k].bytes * (double)n);
      qcal_table_set_f(tab, c_med, rec->st.median), qcal_table_set_f(tab, c_min, rec->st.min);
      qcal_table_set_f(tab, c_max, rec->st.max), qcal_table_set_f(tab, c_mad, rec->st.mad);
      qcal_table_set_f(tab, c_g, gbs[k]);
      qcal_table_set_f(tab, c_x, x);
      qcal_table_set_i(tab, c_th, nt);
      qcal_progress_step(&prog, 1);
    }
    const double copy_gbs =
        qcal_gbps((double)kinfo[K_COPY].bytes * (double)n, copy_best) * qcal_limit_scale();
    qcal_progress_end(&prog);
    printf("\n%zu elements (fp32 source %.1f MiB, %s; copy limit %.2f GB/s, the fastest of %d "
           "samples):\n%-22s %9s %9s %8s %9s\n",
           n, n * 4 / 1048576.0,
           n * 4 > 4 * llc ? ">= 4x LLC"
           : n * 4 > llc   ? "> LLC"
                           : "in cache",
           copy_gbs, cfg.reps + NK, "kernel", "GB/s", "% copy", "us", "int8/fp32");
    for (int k = 0; k < NK; k++) {
      double pct = qcal_percent(gbs[k], copy_gbs);
      /* only where the kernel's own arrays are > 4x LLC: partly cached (int8
       * arrays are a quarter of the fp32 ones) or in cache, other limits hold */
      bool flagged = (double)kinfo[k].bytes * (double)n > 4.0 * (double)llc &&
                     pct > 100.0 * copy_allowance(k) + 1e-9;
      if (flagged) {
        flagged_rows++;
        pct = NAN;
      } else {
        qcal_bench_counter(recs[k], "copy_percent", pct);
      }
      last_pct[k] = pct;
      qcal_table_set_at_f(tab, rows[k], c_p, pct);
      qcal_table_set_at_s(tab, rows[k], QCAL_COL(STREAM, status),
                          flagged ? copy_under_measured : "ok");
      char pcts[16] = "-";
      if (!isnan(pct))
        snprintf(pcts, sizeof pcts, "%.1f%%", pct);
      printf("%-22s %9.2f %9s %8.2f", kinfo[k].name, gbs[k], pcts, 1e6 * med[k]);
      if (kinfo[k].pair >= 0)
        printf(" %8.2fx", last_x[k]);
      if (flagged)
        printf("  %s (allowed %.0f%%)", copy_under_measured, 100.0 * copy_allowance(k));
      printf("\n");
    }
  }
  qcal_progress_end(&prog);
  printf(
      "\nat the largest size: quantize %.0f%% and dequantize %.0f%% of the STREAM copy byte rate "
      "(goal >= 85%%); int8/fp32: relu %.2fx, add %.2fx (goal >= 3.2x, limit 4x)\n",
      last_pct[K_QUANT], last_pct[K_DEQUANT], last_x[K_RELU_Q], last_x[K_ADD_Q]);

  /* GPU */
  qcal_cuda_device dev;
  if (qcal_cuda_device_query(&dev) != QCAL_OK) {
    printf("\nGPU harness skipped: %s\n", qcal_last_error());
  } else {
    printf("\nGPU %s:\n", dev.name);
    const char *gk[] = {"copy",     "triad",   "quantize", "dequantize",
                        "relu_f32", "relu_s8", "add_f32",  "add_s8"};
    const int gb[] = {8, 12, 5, 5, 8, 2, 12, 3};
    size_t gn = (size_t)1 << 26;
    for (int k = 0; k < 8; k++) {
      qcal_cuda_stream_run run;
      qcal_status st = qcal_cuda_stream(gk[k], gn, cfg.reps, &run);
      if (st != QCAL_OK) {
        printf("  %-12s %s\n", gk[k], qcal_last_error());
        continue;
      }
      char name[96];
      snprintf(name, sizeof name, "stream/gpu/%s/%zu", gk[k], gn);
      bench_rec *rec = qcal_bench_add(&bs, name, run.samples, run.nsamples);
      double g = qcal_gbps((double)gb[k] * (double)gn, rec->st.median);
      qcal_bench_counter(rec, "bytes_per_second", g * 1e9);
      printf("  %-12s %9.1f GB/s%s\n", gk[k], g, run.ok ? "" : "  FAILED check");
      qcal_table_row(tab);
      qcal_table_set_s(tab, c_k, gk[k]);
      qcal_table_set_s(tab, c_e, "gpu");
      qcal_table_set_i(tab, c_n, (int64_t)gn);
      qcal_table_set_f(tab, c_b, (double)gb[k] * (double)gn);
      qcal_table_set_f(tab, c_med, rec->st.median), qcal_table_set_f(tab, c_g, g);
    }
  }

  json_object *ctx = json_object_new_object();
  json_object_object_add(ctx, "executable", json_object_new_string("qcal stream"));
  json_object_object_add(ctx, "num_cpus", json_object_new_int(omp_get_num_procs()));
  json_object_object_add(ctx, "threads", json_object_new_int(nt));
  json_object_object_add(ctx, "llc_bytes", json_object_new_int64((int64_t)llc));
  char *ctxs = strdup(json_object_to_json_string(ctx));
  json_object_put(ctx);
  qcal_status st = qcal_bench_write_outputs(&bs, cfg.out, cfg.json, &tab, 1, ctxs);
  free(ctxs);
  qcal_table_free(tab);
  qcal_bench_free(&bs);
  qcal_free(b.fa), qcal_free(b.fb), qcal_free(b.fc), qcal_free(b.qa), qcal_free(b.qb);
  qcal_free(b.qc), qcal_free(b.ia);
  if (st != QCAL_OK)
    return qcal_die_status(st);
  if (cfg.out)
    printf("\nresults: %s\n", cfg.out);
  if (flagged_rows) {
    fprintf(stderr,
            "qcal: %d stream figure(s) above the fastest copy by more than their byte count "
            "allows: %s (not shown as %% of copy)\n",
            flagged_rows, copy_under_measured);
    return QCAL_EXIT_FAIL;
  }
  return QCAL_EXIT_OK;
}
