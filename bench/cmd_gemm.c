/* qcal gemm: INT8 vs FP32/BF16 GEMM throughput next to the machine's peak,
 * measured in the same run. CPU: oneDNN matmul, pinned threads, peaks from
 * register-resident VNNI/FMA/BF16 loops. GPU: cuBLASLt, when a device is
 * present. */
#include <json-c/json.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/benchout.h"
#include "bench/cli.h"
#include "bench/gemm.h"
#include "qcal/cuda.h"
#include "qcal/escape.h"
#include "qcal/graph.h"
#include "qcal/kernels.h"
#include "qcal/peak.h"
#include "qcal/sweep.h"
#include "qcal_config.h"

typedef struct {
  const char *out, *json, *shapes, *types, *engine, *sizes, *model;
  int threads, reps, input_size, quick, no_network;
} gemm_cfg;

static const char *const engines[] = {"all", "cpu", "gpu", NULL};

#define O(f) offsetof(gemm_cfg, f)
static const qcal_opt opts[] = {
    {"output", "FILE.h5", "results file (-o)", O(out), OPT_STRING, 0, 0, NULL},
    {"json", "FILE.json", "Google Benchmark shaped JSON", O(json), OPT_STRING, 0, 0, NULL},
    {"engine", "E", "all, cpu or gpu", O(engine), OPT_CHOICE, 0, 0, engines},
    {"types", "LIST", "CPU types: f32,bf16,u8s8s32,s8s8s32", O(types), OPT_STRING, 0, 0, NULL},
    {"sizes", "LIST", "square sizes (CPU; the GPU adds up to 16384)", O(sizes), OPT_STRING, 0, 0,
     NULL},
    {"shapes", "M,N,K;...", "explicit shapes instead of the defaults", O(shapes), OPT_STRING, 0, 0,
     NULL},
    {"model", "PATH", "ONNX or TF.js model whose convolutions give implicit-GEMM shapes", O(model),
     OPT_STRING, 0, 0, NULL},
    {"input-size", "S", "network input size for the layer shapes", O(input_size), OPT_INT, 33, 1025,
     NULL},
    {"no-network", NULL, "skip the network's layer shapes", O(no_network), OPT_FLAG, 0, 0, NULL},
    {"threads", "N", "CPU threads, pinned (0: all cores)", O(threads), OPT_INT, 0, 1024, NULL},
    {"reps", "R", "timed repetitions after warm-up", O(reps), OPT_INT, 10, 256, NULL},
    {"quick", NULL, "sizes up to 2048 and 4 layer shapes (CI, < 60 s)", O(quick), OPT_FLAG, 0, 0,
     NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "gemm",
    "qcal gemm [--engine all|cpu|gpu] [--types LIST] [--sizes LIST] [--shapes M,N,K;...]\n"
    "                 [--threads N] [--reps R] [--quick] [-o FILE.h5] [--json FILE.json]",
    "Measure the peak in this run (VPDPBUSD, FMA and VDPBF16PS register loops, x\n"
    "cores x clock), then time oneDNN matmul in f32, bf16, u8s8s32 and s8s8s32 on\n"
    "square sizes and on PoseNet's layers as implicit GEMMs (depthwise as batched\n"
    "GEMMs), checking every result against the reference GEMM. On a GPU the same\n"
    "through cuBLASLt (int8, fp16, bf16, tf32, fp32, fp8).",
    opts,
};

/* A peak is sampled before and after every shape, interleaved with the
 * GEMMs: another process holding a core during one sample cannot make the
 * GEMMs look faster than the machine. The highest sample is the peak; the
 * spread says how much the machine moved. */
typedef struct {
  uint64_t (*loop)(uint64_t);
  double gops, lo, ghz, per_cycle; /* highest and lowest all-core rate, clock, ops/cycle/core */
  int n;                           /* samples */
} peak;

static void peak_sample(peak *p, int nt) {
  if (!p->loop)
    return;
  uint64_t ops = 0;
  double t0 = qcal_now();
#pragma omp parallel num_threads(nt) reduction(+ : ops)
  ops += p->loop(20000000);
  double g = qcal_gops((double)ops, qcal_now() - t0);
  g *= qcal_limit_scale();
  p->gops = g > p->gops ? g : p->gops;
  p->lo = p->n == 0 || g < p->lo ? g : p->lo;
  p->n++;
  p->per_cycle = qcal_ops_per_cycle(p->gops, p->ghz, nt);
}

/* One CPU GEMM result, printed once every peak sample is in. */
typedef struct {
  long row; /* in the GEMM table */
  int type;
  char label[96], dims[64], status[200];
  double ms, gops, f32_gops;
  bench_rec *rec;
} cpu_row;

static int parse_list_int(const char *s, int64_t *v, int cap) {
  int n = 0;
  while (s && *s) {
    char *e;
    long long x = strtoll(s, &e, 10);
    if (e == s || x <= 0 || n == cap)
      return -1;
    v[n++] = x;
    s = *e == ',' ? e + 1 : e;
    if (*e && *e != ',')
      return -1;
  }
  return n;
}

/* The network's convolutions as implicit GEMMs at input size x size:
 * M = oh*ow, N = cout, K = cin/group*kh*kw; depthwise as a batch of C
 * GEMMs with N = 1, K = kh*kw. Returns the count, or -1 with the error set. */
static int layer_shapes(const char *model, int size, gemm_shape *out, int cap) {
  qcal_graph *g = NULL;
  int n = 0;
  qcal_status st = qcal_graph_load(model, &g);
  if (!st && g->ninputs != 1)
    st = qcal_error(QCAL_EUNSUPPORTED, "%s: layer shapes need a model with one input", model);
  if (!st) {
    const qcal_value *in = &g->values[g->inputs[0]];
    int64_t shape[4] = {1, size, size, 3};
    if (in->ndim == 4 && in->shape[1] == 3)
      shape[1] = 3, shape[3] = size;
    st = qcal_graph_resize_input(g, 0, 4, shape);
  }
  qcal_graph_opts go = {0};
  if (!st)
    st = qcal_graph_prepare(g, &go);
  int nodes[128];
  for (int i = 0; !st && i < g->nnodes && n < cap && n < 128; i++) {
    const qcal_node *nd = &g->nodes[i];
    if (nd->dead || nd->op != QCAL_GOP_Conv)
      continue;
    const qcal_value *w = &g->values[nd->in[1]], *y = &g->values[nd->out[0]];
    if (w->ndim != 4)
      continue;
    gemm_shape *s = &out[n];
    nodes[n++] = i;
    s->m = y->shape[2] * y->shape[3];
    if (qcal_conv_depthwise(g, nd))
      s->n = 1, s->k = w->shape[2] * w->shape[3], s->batch = w->shape[0];
    else
      s->n = w->shape[0], s->k = w->shape[1] * w->shape[2] * w->shape[3], s->batch = 1;
  }
  if (!st) {
    char(*names)[160] = malloc((size_t)(n ? n : 1) * sizeof *names);
    if (names) {
      qcal_layer_names(g, nodes, n, names);
      for (int k = 0; k < n; k++)
        snprintf(out[k].label, sizeof out[k].label, "%s", names[k]);
    }
    free(names);
  }
  qcal_graph_free(g);
  return st ? -1 : n;
}

static const char *const under_measured = "peak under-measured: machine busy?";

static double peak_for(gemm_type t, const peak *vnni, const peak *fma, const peak *bf16) {
  return t == GEMM_F32 ? fma->gops : t == GEMM_BF16 ? bf16->gops : vnni->gops;
}

/* datasheet dense tensor-core ops per clock per SM (a multiply-add is 2) */
static double gpu_ops_per_clk_sm(int cc, const char *type) {
  struct {
    int cc;
    const char *t;
    double v;
  } tab[] = {
      {80, "int8", 4096}, {80, "fp16", 2048}, {80, "bf16", 2048}, {80, "tf32", 1024},
      {80, "fp32", 128},  {90, "int8", 8192}, {90, "fp16", 4096}, {90, "bf16", 4096},
      {90, "tf32", 2048}, {90, "fp32", 256},  {90, "fp8", 8192},
  };
  for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
    if (tab[i].cc == cc && !strcmp(tab[i].t, type))
      return tab[i].v;
  return 0;
}

int qcal_cmd_gemm(int argc, char **argv) {
  char cache[4096], model[4200];
  qcal_cache_dir(cache, sizeof cache);
  snprintf(model, sizeof model, "%s/posenet/posenet.json", cache);
  gemm_cfg cfg = {.engine = "all",
                  .types = "f32,bf16,u8s8s32,s8s8s32",
                  .sizes = "256,512,1024,2048,4096",
                  .model = model,
                  .reps = 10,
                  .input_size = 257};
  const char *pos[1];
  int npos, r = qcal_opts_parse(&info, &cfg, argc, argv, pos, 0, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (cfg.quick && !strcmp(cfg.sizes, "256,512,1024,2048,4096"))
    cfg.sizes = "256,1024,2048";
  const char *inputs[1] = {cfg.model};
  if (qcal_check_outputs("gemm", cfg.out, cfg.json, inputs, 1))
    return QCAL_EXIT_USAGE;

  /* types */
  int types[4], ntypes = 0;
  {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", cfg.types);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
      int k = -1;
      for (int i = 0; i < 4; i++)
        if (!strcmp(t, qcal_gemm_type_names[i]))
          k = i;
      if (k < 0 || ntypes == 4)
        return qcal_die("gemm: unknown type '%s' (f32, bf16, u8s8s32, s8s8s32)", t);
      types[ntypes++] = k;
    }
    if (ntypes == 0)
      return qcal_die("gemm: --types '%s' names no type (f32, bf16, u8s8s32, s8s8s32)", cfg.types);
  }
  /* shapes */
  gemm_shape *shapes = calloc(128, sizeof *shapes);
  int nshapes = 0;
  if (cfg.shapes) {
    const char *p = cfg.shapes;
    while (*p && nshapes < 128) {
      long long mm, nn, kk;
      int used = 0;
      if (sscanf(p, "%lld,%lld,%lld%n", &mm, &nn, &kk, &used) != 3) {
        free(shapes);
        return qcal_die("gemm: --shapes '%s' is not M,N,K;M,N,K;...", cfg.shapes);
      }
      if (mm <= 0 || nn <= 0 || kk <= 0) {
        free(shapes);
        return qcal_die("gemm: shape %lld,%lld,%lld is not positive", mm, nn, kk);
      }
      gemm_shape *s = &shapes[nshapes++];
      *s = (gemm_shape){mm, nn, kk, 1, ""};
      snprintf(s->label, sizeof s->label, "%lldx%lldx%lld", mm, nn, kk);
      p += used;
      if (*p == ';')
        p++;
      else if (*p) {
        free(shapes);
        return qcal_die("gemm: --shapes '%s' is not M,N,K;M,N,K;...", cfg.shapes);
      }
    }
  } else {
    int64_t sz[16];
    int ns = parse_list_int(cfg.sizes, sz, 16);
    if (ns <= 0) {
      free(shapes);
      return qcal_die("gemm: --sizes '%s' is not a list of positive sizes", cfg.sizes);
    }
    for (int i = 0; i < ns; i++) {
      shapes[nshapes] = (gemm_shape){sz[i], sz[i], sz[i], 1, ""};
      snprintf(shapes[nshapes].label, sizeof shapes[nshapes].label, "%lld^3", (long long)sz[i]);
      nshapes++;
    }
    struct stat sb;
    if (!cfg.no_network && stat(cfg.model, &sb) == 0) {
      gemm_shape ls[64];
      int nl = layer_shapes(cfg.model, cfg.input_size, ls, 64);
      if (nl < 0) {
        free(shapes);
        return qcal_die_status(QCAL_EFORMAT);
      }
      /* quick: the first conv, a depthwise, a pointwise and a head */
      int pick[4] = {0, 1, 12, 27};
      for (int i = 0; nl > 0 && i < (cfg.quick ? 4 : nl) && nshapes < 128; i++)
        shapes[nshapes++] = ls[cfg.quick ? (pick[i] < nl ? pick[i] : nl - 1) : i];
    } else if (!cfg.no_network) {
      fprintf(stderr,
              "qcal: note: %s not found; layer shapes skipped (run scripts/fetch-data.sh)\n",
              cfg.model);
    }
  }
  /* memory check before any allocation */
  const double avail = qcal_mem_available();
  if (strcmp(cfg.engine, "gpu"))
    for (int s = 0; s < nshapes; s++)
      for (int t = 0; t < ntypes; t++) {
        double need = qcal_gemm_bytes((gemm_type)types[t], &shapes[s]);
        if (need > 0.8 * avail) {
          int rc = qcal_die("gemm: %s %s needs %.1f GiB, only %.1f GiB of memory is available",
                            shapes[s].label, qcal_gemm_type_names[types[t]], need / 1073741824.0,
                            avail / 1073741824.0);
          free(shapes);
          return rc;
        }
      }

  const int nt = cfg.threads > 0 ? cfg.threads : omp_get_num_procs();
  qcal_pin_threads(nt);
  bench_set bs = {0};
  qcal_table *tab = qcal_table_new_schema(QCAL_TABLE_GEMM);
  int c_e = QCAL_COL(GEMM, engine), c_t = QCAL_COL(GEMM, type), c_l = QCAL_COL(GEMM, shape),
      c_m = QCAL_COL(GEMM, m), c_n = QCAL_COL(GEMM, n), c_k = QCAL_COL(GEMM, k),
      c_b = QCAL_COL(GEMM, batch), c_th = QCAL_COL(GEMM, threads),
      c_med = QCAL_COL(GEMM, median_seconds), c_min = QCAL_COL(GEMM, min_seconds),
      c_max = QCAL_COL(GEMM, max_seconds), c_mad = QCAL_COL(GEMM, mad_seconds),
      c_g = QCAL_COL(GEMM, gops), c_p = QCAL_COL(GEMM, peak_percent), c_s = QCAL_COL(GEMM, status),
      c_err = QCAL_COL(GEMM, max_rel_err);
  qcal_table *pt = qcal_table_new_schema(QCAL_TABLE_PEAKS);
  int p_n = QCAL_COL(PEAKS, unit), p_g = QCAL_COL(PEAKS, gops),
      p_c = QCAL_COL(PEAKS, ops_per_cycle_per_core), p_h = QCAL_COL(PEAKS, ghz),
      p_t = QCAL_COL(PEAKS, threads);
  int failures = 0, flagged_rows = 0;

  if (strcmp(cfg.engine, "gpu")) {
    const unsigned f = qcal_cpu_features();
    double ghz = qcal_measure_ghz();
    peak vnni = {.ghz = ghz}, fma = {.ghz = ghz}, bf16 = {.ghz = ghz};
#if QCAL_X86_PEAKS
    if (f & QCAL_ISA_VNNI)
      vnni.loop = qcal_peak_vnni__avx512;
    if (f & QCAL_ISA_AVX512)
      fma.loop = qcal_peak_fma__avx512;
    if (f & QCAL_ISA_BF16)
      bf16.loop = qcal_peak_bf16__avx512;
#endif
    const char *pn[3] = {"int8 VPDPBUSD", "fp32 FMA", "bf16 VDPBF16PS"};
    peak *pp[3] = {&vnni, &fma, &bf16};
    for (int rep = 0; rep < 3; rep++)
      for (int i = 0; i < 3; i++)
        peak_sample(pp[i], nt);
    printf("qcal gemm: CPU, %d pinned thread(s), clock %.2f GHz (measured), oneDNN matmul\n", nt,
           ghz);
    cpu_row *rows = calloc((size_t)(nshapes * ntypes + 1), sizeof *rows);
    if (!rows) {
      free(shapes);
      return qcal_die("gemm: out of memory");
    }
    int nrows = 0;
    qcal_progress prog;
    qcal_progress_start(&prog, "gemm", (size_t)(nshapes * ntypes));
    for (int s = 0; s < nshapes; s++) {
      double f32_gops = 0;
      for (int i = 0; i < 3; i++) /* before the shape */
        peak_sample(pp[i], nt);
      for (int ti = 0; ti < ntypes; ti++) {
        gemm_type t = (gemm_type)types[ti];
        const gemm_shape *sh = &shapes[s];
        cpu_gemm *g = NULL;
        cpu_row *cr = &rows[nrows++];
        char *status = cr->status, why[160] = "";
        snprintf(status, sizeof cr->status, "ok");
        double samples[256], err = 0;
        int n = 0;
        qcal_status st = qcal_cpu_gemm_create(&g, t, sh, nt);
        if (st == QCAL_EUNSUPPORTED)
          snprintf(status, sizeof cr->status, "not supported: %s", qcal_last_error());
        else if (st != QCAL_OK)
          snprintf(status, sizeof cr->status, "error: %s", qcal_last_error());
        for (int w = 0; st == QCAL_OK && w < 2; w++)
          st = qcal_cpu_gemm_run(g);
        for (; st == QCAL_OK && n < cfg.reps; n++) {
          double t0 = qcal_now();
          st = qcal_cpu_gemm_run(g);
          samples[n] = qcal_now() - t0;
        }
        if (st == QCAL_OK && qcal_cpu_gemm_check(g, 256, &err, why, sizeof why) != QCAL_OK) {
          snprintf(status, sizeof cr->status, "FAILED: %s", why);
          failures++;
        }
        qcal_cpu_gemm_destroy(g);
        char name[160];
        snprintf(name, sizeof name, "gemm/cpu/%s/%lldx%lldx%lldx%lld", qcal_gemm_type_names[t],
                 (long long)sh->m, (long long)sh->n, (long long)sh->k, (long long)sh->batch);
        bench_rec *rec = n ? qcal_bench_add(&bs, name, samples, n) : NULL;
        double gops =
            rec ? qcal_gops(qcal_gemm_ops(sh->m, sh->n, sh->k, sh->batch), rec->st.median) : NAN;
        if (t == GEMM_F32)
          f32_gops = gops;
        if (rec)
          qcal_bench_counter(rec, "GOPS", gops);
        cr->row = qcal_table_row(tab);
        cr->type = t, cr->rec = rec, cr->gops = gops, cr->f32_gops = f32_gops;
        cr->ms = rec ? 1e3 * rec->st.median : NAN;
        snprintf(cr->label, sizeof cr->label, "%s", sh->label);
        qcal_table_set_s(tab, c_e, "cpu-onednn");
        qcal_table_set_s(tab, c_t, qcal_gemm_type_names[t]);
        qcal_table_set_s(tab, c_l, sh->label);
        qcal_table_set_i(tab, c_m, sh->m), qcal_table_set_i(tab, c_n, sh->n);
        qcal_table_set_i(tab, c_k, sh->k), qcal_table_set_i(tab, c_b, sh->batch);
        qcal_table_set_i(tab, c_th, nt);
        if (rec) {
          qcal_table_set_f(tab, c_med, rec->st.median), qcal_table_set_f(tab, c_min, rec->st.min);
          qcal_table_set_f(tab, c_max, rec->st.max), qcal_table_set_f(tab, c_mad, rec->st.mad);
          qcal_table_set_f(tab, c_g, gops);
        }
        qcal_table_set_f(tab, c_err, err);
        snprintf(cr->dims, sizeof cr->dims, "%lldx%lldx%lld", (long long)sh->m, (long long)sh->n,
                 (long long)sh->k);
        if (sh->batch > 1)
          snprintf(cr->dims + strlen(cr->dims), sizeof cr->dims - strlen(cr->dims), " x%lld",
                   (long long)sh->batch);
        qcal_progress_step(&prog, 1);
      }
      for (int i = 0; i < 3; i++) /* and after it */
        peak_sample(pp[i], nt);
    }
    qcal_progress_end(&prog);
    printf("\npeak (register-resident loops, the highest of the samples interleaved with the "
           "GEMMs):\n");
    for (int i = 0; i < 3; i++) {
      if (pp[i]->gops <= 0) {
        printf("  %-15s not measured: this CPU lacks the instruction\n", pn[i]);
        continue;
      }
      double spread = qcal_percent(pp[i]->gops - pp[i]->lo, pp[i]->gops);
      printf("  %-15s %8.1f GOPS = %5.1f ops/cycle/core x %d cores x %.2f GHz  (%d samples, "
             "lowest %.1f: spread %.1f%%)\n",
             pn[i], pp[i]->gops, pp[i]->per_cycle, nt, ghz, pp[i]->n, pp[i]->lo, spread);
      qcal_table_row(pt);
      qcal_table_set_s(pt, p_n, pn[i]);
      qcal_table_set_f(pt, p_g, pp[i]->gops);
      qcal_table_set_f(pt, p_c, pp[i]->per_cycle);
      qcal_table_set_f(pt, p_h, ghz);
      qcal_table_set_i(pt, p_t, nt);
      qcal_table_set_f(pt, QCAL_COL(PEAKS, min_gops), pp[i]->lo);
      qcal_table_set_i(pt, QCAL_COL(PEAKS, samples), pp[i]->n);
      qcal_table_set_f(pt, QCAL_COL(PEAKS, spread_percent), spread);
    }
    printf("\n%-22s %-8s %26s %10s %9s %7s  %s\n", "shape", "type", "M x N x K (x batch)", "ms",
           "GOPS", "% peak", "check");
    /* % of peak once every sample is in; above 100% is a measurement error */
    for (int k = 0; k < nrows; k++) {
      cpu_row *cr = &rows[k];
      double pk = peak_for((gemm_type)cr->type, &vnni, &fma, &bf16);
      double pct = cr->rec && pk > 0 ? qcal_percent(cr->gops, pk) : NAN;
      bool flagged = pct > 100.0;
      if (flagged) {
        snprintf(cr->status, sizeof cr->status, "%s", under_measured);
        flagged_rows++;
        pct = NAN;
      } else if (cr->rec) {
        qcal_bench_counter(cr->rec, "peak_percent", pct);
      }
      qcal_table_set_at_f(tab, cr->row, c_p, pct);
      qcal_table_set_at_s(tab, cr->row, c_s, cr->status);
      char pcts[16] = "-";
      if (!isnan(pct))
        snprintf(pcts, sizeof pcts, "%.1f%%", pct);
      char shown[400]; /* layer names come from the model file */
      printf("%-22.22s %-8s %26s %10.3f %9.1f %7s  %s",
             qcal_escape_text(cr->label, shown, sizeof shown), qcal_gemm_type_names[cr->type],
             cr->dims, cr->ms, cr->gops, pcts, cr->status);
      if ((cr->type == GEMM_U8S8S32 || cr->type == GEMM_S8S8S32) && cr->f32_gops > 0 && cr->rec)
        printf("  (%.2fx f32)", cr->gops / cr->f32_gops);
      printf("\n");
    }
    free(rows);
  }

  /* GPU */
  if (strcmp(cfg.engine, "cpu")) {
    qcal_cuda_device dev;
    qcal_status st = qcal_cuda_device_query(&dev);
    if (st != QCAL_OK) {
      printf("\nGPU harness skipped: %s\n", qcal_last_error());
    } else {
      int cc = dev.cc_major * 10 + dev.cc_minor;
      printf("\nGPU: %s, sm_%d, %d SMs, %.0f MHz, cuBLASLt TN\n", dev.name, cc, dev.sm_count,
             dev.clock_khz / 1e3);
      const char *gt[] = {"int8", "fp16", "bf16", "tf32", "fp32", "fp8"};
      int64_t gs[] = {256, 1024, 4096, 8192, 16384};
      int ngs = cfg.quick ? 3 : 5;
      for (int si = 0; si < ngs; si++)
        for (int ti = 0; ti < 6; ti++) {
          qcal_cuda_gemm_run run;
          int64_t n = gs[si];
          st = qcal_cuda_gemm(gt[ti], n, n, n, cfg.reps, &run);
          double pk = dev.sm_count * (dev.clock_khz * 1e3) * gpu_ops_per_clk_sm(cc, gt[ti]) / 1e9;
          char status[200] = "ok";
          if (st == QCAL_EUNSUPPORTED)
            snprintf(status, sizeof status, "not supported: %s", qcal_last_error());
          else if (st != QCAL_OK)
            snprintf(status, sizeof status, "error: %s", qcal_last_error());
          else if (run.max_rel_err > (strcmp(gt[ti], "int8") ? 1e-2 : 0)) {
            snprintf(status, sizeof status, "FAILED: relative error %.3g", run.max_rel_err);
            failures++;
          }
          double gops = NAN, pct = NAN;
          bench_rec *rec = NULL;
          if (st == QCAL_OK) {
            char name[160];
            snprintf(name, sizeof name, "gemm/gpu/%s/%lldx%lldx%lld", gt[ti], (long long)n,
                     (long long)n, (long long)n);
            rec = qcal_bench_add(&bs, name, run.samples, run.nsamples);
            gops = qcal_gops(qcal_gemm_ops(n, n, n, 1), rec->st.median);
            pct = pk > 0 ? qcal_percent(gops, pk) : NAN;
            qcal_bench_counter(rec, "GOPS", gops);
          }
          printf("%-8s %6lld^3 %10.3f ms %10.1f GOPS %6.1f%% of datasheet peak  %s\n", gt[ti],
                 (long long)n, rec ? 1e3 * rec->st.median : NAN, gops, pct, status);
          qcal_table_row(tab);
          qcal_table_set_s(tab, c_e, "gpu-cublaslt");
          qcal_table_set_s(tab, c_t, gt[ti]);
          char lab[32];
          snprintf(lab, sizeof lab, "%lld^3", (long long)n);
          qcal_table_set_s(tab, c_l, lab);
          qcal_table_set_i(tab, c_m, n), qcal_table_set_i(tab, c_n, n),
              qcal_table_set_i(tab, c_k, n);
          qcal_table_set_i(tab, c_b, 1);
          if (rec) {
            qcal_table_set_f(tab, c_med, rec->st.median), qcal_table_set_f(tab, c_min, rec->st.min);
            qcal_table_set_f(tab, c_max, rec->st.max), qcal_table_set_f(tab, c_mad, rec->st.mad);
            qcal_table_set_f(tab, c_g, gops), qcal_table_set_f(tab, c_p, pct);
            qcal_table_set_f(tab, c_err, run.max_rel_err);
          }
          qcal_table_set_s(tab, c_s, status);
        }
    }
  }

  /* outputs */
  json_object *ctx = json_object_new_object();
  json_object_object_add(ctx, "executable", json_object_new_string("qcal gemm"));
  json_object_object_add(ctx, "num_cpus", json_object_new_int(omp_get_num_procs()));
  json_object_object_add(ctx, "threads", json_object_new_int(nt));
  json_object_object_add(ctx, "kernels", json_object_new_string(qcal_kernels()->isa));
  char *ctxs = strdup(json_object_to_json_string(ctx));
  json_object_put(ctx);
  qcal_table *tabs[2] = {tab, pt};
  qcal_status st = qcal_bench_write_outputs(&bs, cfg.out, cfg.json, tabs, 2, ctxs);
  free(ctxs);
  qcal_table_free(tab);
  qcal_table_free(pt);
  qcal_bench_free(&bs);
  free(shapes);
  if (st != QCAL_OK)
    return qcal_die_status(st);
  if (cfg.out)
    printf("\nresults: %s\n", cfg.out);
  if (failures)
    fprintf(stderr, "qcal: %d GEMM result(s) failed the correctness check\n", failures);
  if (flagged_rows)
    fprintf(stderr,
            "qcal: %d GEMM figure(s) above 100%% of the highest peak sample: %s (not shown as "
            "%% of peak)\n",
            flagged_rows, under_measured);
  return failures || flagged_rows ? QCAL_EXIT_FAIL : QCAL_EXIT_OK;
}
