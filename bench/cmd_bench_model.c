/* qcal bench-model: whole-network inference latency per engine (fp32, qdq,
 * int8) on one model, with warm-up and repetitions; engines alternate in
 * rounds so that load on a shared machine hits each alike. Then profiled
 * runs give the time per layer type, and the INT8/FP32 speed-up of each. */
#include <json-c/json.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/benchout.h"
#include "bench/cli.h"
#include "qcal/datasets.h"
#include "qcal/escape.h"
#include "qcal/graph.h"
#include "qcal/progress.h"

typedef struct {
  const char *engines, *out, *json, *input, *size;
  int threads, reps, rounds, warmup;
} bm_cfg;

#define O(f) offsetof(bm_cfg, f)
static const qcal_opt opts[] = {
    {"engines", "LIST", "comma-separated: fp32, qdq, int8", O(engines), OPT_STRING, 0, 0, NULL},
    {"threads", "N", "threads (0: all cores)", O(threads), OPT_INT, 0, 1024, NULL},
    {"reps", "R", "timed runs per engine and round", O(reps), OPT_INT, 1, 100000, NULL},
    {"rounds", "K", "rounds; engines alternate within each", O(rounds), OPT_INT, 1, 1000, NULL},
    {"warmup", "W", "untimed runs per engine first", O(warmup), OPT_INT, 0, 1000, NULL},
    {"input", "X.npy", "input tensor (default: seeded normal noise of the declared shape)",
     O(input), OPT_STRING, 0, 0, NULL},
    {"input-size", "H[,W]", "spatial size for inputs with symbolic or other dims", O(size),
     OPT_STRING, 0, 0, NULL},
    {"output", "FILE.h5", "results file (-o): model_bench, model_layers, every sample", O(out),
     OPT_STRING, 0, 0, NULL},
    {"json", "FILE.json", "Google Benchmark JSON", O(json), OPT_STRING, 0, 0, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "bench-model",
    "qcal bench-model MODEL [--engines fp32,int8] [--threads N] [--reps R] [--rounds K]\n"
    "                  [--warmup W] [--input X.npy | --input-size H[,W]] [-o FILE.h5]\n"
    "                  [--json FILE.json]",
    "Time whole-network inference of an ONNX or TF.js model per engine: fp32 (Q/DQ\n"
    "pairs removed), qdq (Q/DQ as written, in float) and int8 (oneDNN int8\n"
    "convolutions; Q/DQ models from qcal quantize). Each engine gets W warm-up runs,\n"
    "then the engines alternate for K rounds of R timed runs; the table gives the\n"
    "median, fastest and spread, and the speed-up over fp32. Profiled runs then\n"
    "give the time per layer type. Default engines: fp32,int8 for a Q/DQ model,\n"
    "fp32 for a float one.",
    opts,
};

#define MAX_ENG 3
#define MAX_KIND 48

typedef struct {
  qcal_engine e;
  qcal_graph *g;
  double *samples;
  int n;
  char kind[MAX_KIND][32];
  double *kind_s[MAX_KIND]; /* per profiled run */
  int kind_nodes[MAX_KIND], nkind;
  double sqnr;
} eng_run;

static qcal_status make_input(const bm_cfg *c, const qcal_value *in, qcal_tensor *x) {
  if (c->input) {
    unsigned char *buf;
    size_t len;
    QCAL_TRY(qcal_read_file(c->input, &buf, &len));
    qcal_status st = qcal_npy_parse(c->input, buf, len, x);
    free(buf);
    if (!st)
      st = qcal_tensor_check(x);
    return st;
  }
  int64_t shape[QCAL_MAX_DIMS];
  memcpy(shape, in->shape, sizeof shape);
  long h = 0, w = 0;
  if (c->size) {
    char *end;
    h = strtol(c->size, &end, 10);
    w = *end == ',' ? strtol(end + 1, &end, 10) : h;
    if (*end || h < 1 || w < 1 || h > 16384 || w > 16384)
      return qcal_error(QCAL_EINVAL, "--input-size '%s': expected H or H,W (1 to 16384)", c->size);
  }
  int nhwc = in->ndim == 4 && in->shape[3] >= 1 && in->shape[3] <= 4 && in->shape[1] > 4;
  for (int d = 0; d < in->ndim; d++) {
    bool spatial = in->ndim == 4 && (nhwc ? d == 1 || d == 2 : d >= 2);
    if (spatial && h)
      shape[d] = (nhwc ? d == 1 : d == 2) ? h : w;
    else if (shape[d] < 0 && d == 0)
      shape[d] = 1;
    else if (shape[d] < 0)
      return qcal_error(QCAL_EINVAL,
                        "input '%s' has a symbolic dim %d; give --input-size or "
                        "--input",
                        in->name, d);
  }
  QCAL_TRY(qcal_tensor_alloc(x, in->ndim, shape));
  qcal_rng r;
  qcal_rng_seed(&r, 1);
  for (size_t i = 0; i < x->numel; i++)
    x->data[i] = (float)qcal_rng_normal(&r);
  return QCAL_OK;
}

static qcal_status load(const char *model, qcal_engine e, const bm_cfg *c, qcal_tensor *x,
                        qcal_graph **out) {
  QCAL_TRY(qcal_graph_load(model, out));
  qcal_graph *g = *out;
  if (g->ninputs != 1 || g->values[g->inputs[0]].dtype != QCAL_DT_F32)
    return qcal_error(QCAL_EUNSUPPORTED, "%s: bench-model feeds models with one float32 input",
                      model);
  if (!x->data)
    QCAL_TRY(make_input(c, &g->values[g->inputs[0]], x));
  const qcal_value *in = &g->values[g->inputs[0]];
  bool same = in->ndim == x->ndim;
  for (int d = 0; same && d < in->ndim; d++)
    same = in->shape[d] < 0 || in->shape[d] == x->shape[d];
  QCAL_TRY(same ? qcal_graph_bind_input(g, 0, x->ndim, x->shape)
                : qcal_graph_resize_input(g, 0, x->ndim, x->shape));
  qcal_graph_opts o = {.threads = c->threads, .engine = e};
  QCAL_TRY(qcal_graph_prepare(g, &o));
  if (e == QCAL_ENGINE_INT8 && g->int8_nodes == 0)
    return qcal_error(QCAL_EINVAL,
                      "%s: no convolution reads int8 Q/DQ inputs; engine int8 needs a Q/DQ model "
                      "(qcal quantize)",
                      model);
  return QCAL_OK;
}

static bool has_qdq(const qcal_graph *g) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == QCAL_GOP_QuantizeLinear || g->nodes[i].op == QCAL_GOP_DequantizeLinear)
      return true;
  return false;
}

static double worst_sqnr(const qcal_graph *a, const qcal_graph *ref) {
  double worst = INFINITY;
  for (int k = 0; k < a->noutputs; k++) {
    const qcal_value *v = &a->values[a->outputs[k]], *r = &ref->values[ref->outputs[k]];
    if (v->dtype != QCAL_DT_F32 || r->numel != v->numel)
      continue;
    double sig = 0, err = 0;
    for (size_t i = 0; i < v->numel; i++) {
      double p = ((const float *)r->data)[i], q = ((const float *)v->data)[i];
      sig += p * p, err += (p - q) * (p - q);
    }
    double db = err > 0 ? 10 * log10(sig / err) : INFINITY;
    worst = db < worst ? db : worst;
  }
  return worst;
}

static int kind_slot(eng_run *r, const char *k) {
  for (int i = 0; i < r->nkind; i++)
    if (!strcmp(r->kind[i], k))
      return i;
  if (r->nkind == MAX_KIND)
    return -1;
  snprintf(r->kind[r->nkind], sizeof r->kind[0], "%s", k);
  return r->nkind++;
}

/* Profiled runs: each node timed; per layer type, the median of the sums. */
static qcal_status profile(eng_run *r, const qcal_tensor *x, int runs) {
  qcal_graph *g = r->g;
  double *ns = calloc((size_t)g->nnodes + 1, sizeof *ns);
  if (!ns)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  g->node_seconds = ns;
  const void *in[1] = {x->data};
  qcal_status st = QCAL_OK;
  for (int p = 0; p < runs && !st; p++) {
    memset(ns, 0, (size_t)g->nnodes * sizeof *ns);
    st = qcal_graph_run(g, in);
    for (int i = 0; i < g->nnodes && !st; i++) {
      if (g->nodes[i].dead || ns[i] == 0)
        continue;
      char buf[32];
      int k = kind_slot(r, qcal_node_kind(g, &g->nodes[i], buf, sizeof buf));
      if (k < 0)
        continue;
      if (!r->kind_s[k] && !(r->kind_s[k] = calloc((size_t)runs, sizeof(double))))
        st = qcal_error(QCAL_ENOMEM, "out of memory");
      else
        r->kind_s[k][p] += ns[i];
      if (p == 0)
        r->kind_nodes[k]++;
    }
  }
  g->node_seconds = NULL;
  free(ns);
  return st;
}

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

int qcal_cmd_bench_model(int argc, char **argv) {
  bm_cfg c = {.reps = 20, .rounds = 3, .warmup = 3};
  const char *pos[1];
  int npos, rr = qcal_opts_parse(&info, &c, argc, argv, pos, 1, &npos);
  if (rr)
    return rr > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (npos != 1)
    return qcal_die("bench-model: expected one MODEL (see qcal bench-model --help)");
  const char *model = pos[0];
  const char *ins[2] = {model, c.input};
  if (qcal_check_outputs("bench-model", c.out, c.json, ins, c.input ? 2 : 1))
    return QCAL_EXIT_USAGE;
  qcal_graph *probe = NULL;
  qcal_status st = qcal_graph_load(model, &probe);
  if (st)
    return qcal_die_status(st);
  bool qdq = has_qdq(probe);
  qcal_graph_free(probe);
  eng_run runs[MAX_ENG] = {0};
  int ne = 0;
  char list[256];
  snprintf(list, sizeof list, "%s", c.engines ? c.engines : qdq ? "fp32,int8" : "fp32");
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    int e = -1;
    for (int k = 0; qcal_engine_names[k]; k++)
      if (!strcmp(tok, qcal_engine_names[k]))
        e = k;
    if (e < 0)
      return qcal_die("bench-model: --engines: unknown engine '%s' (fp32, qdq, int8)", tok);
    for (int k = 0; k < ne; k++)
      if (runs[k].e == (qcal_engine)e)
        return qcal_die("bench-model: --engines: '%s' given twice", tok);
    if (ne == MAX_ENG)
      return qcal_die("bench-model: --engines: at most %d", MAX_ENG);
    if (e != QCAL_ENGINE_FP32 && !qdq)
      return qcal_die("bench-model: %s has no Q/DQ nodes; engine %s needs a Q/DQ model (write "
                      "one with qcal quantize)",
                      model, tok);
    runs[ne++].e = (qcal_engine)e;
  }
  if (c.threads > 0)
    omp_set_num_threads(c.threads);
  int nt = c.threads > 0 ? c.threads : omp_get_max_threads();
  qcal_pin_threads(nt);
  qcal_tensor x = {0};
  qcal_graph *ref = NULL;
  int rc = QCAL_EXIT_OK;
  bench_set bs = {0};
  qcal_table *tb = qcal_table_new_schema(QCAL_TABLE_MODEL_BENCH);
  qcal_table *tl = qcal_table_new_schema(QCAL_TABLE_MODEL_LAYERS);
  const int total = c.reps * c.rounds, prof_runs = c.reps < 5 ? c.reps : 5 + c.reps / 4;
  for (int k = 0; k < ne && !st; k++) {
    st = load(model, runs[k].e, &c, &x, &runs[k].g);
    if (!st && !(runs[k].samples = calloc((size_t)total, sizeof(double))))
      st = qcal_error(QCAL_ENOMEM, "out of memory");
  }
  const void *in[1] = {x.data};
  for (int k = 0; k < ne && !st; k++)
    for (int w = 0; w < c.warmup + 1 && !st; w++) /* at least one: primitives, weight reorders */
      st = qcal_graph_run(runs[k].g, in);
  /* int8 fidelity against the qdq engine on the same input */
  for (int k = 0; k < ne && !st; k++) {
    runs[k].sqnr = NAN;
    if (runs[k].e != QCAL_ENGINE_INT8)
      continue;
    if (!ref && !(st = load(model, QCAL_ENGINE_QDQ, &c, &x, &ref)))
      st = qcal_graph_run(ref, in);
    if (!st && !(st = qcal_graph_run(runs[k].g, in)))
      runs[k].sqnr = worst_sqnr(runs[k].g, ref);
  }
  double load0 = 0;
  {
    double l[1];
    if (getloadavg(l, 1) == 1)
      load0 = l[0];
  }
  qcal_progress prog;
  qcal_progress_start(&prog, "bench-model", (size_t)(total * ne));
  for (int r = 0; r < c.rounds && !st; r++)
    for (int k = 0; k < ne && !st; k++)
      for (int i = 0; i < c.reps && !st; i++) {
        double t0 = qcal_now();
        st = qcal_graph_run(runs[k].g, in);
        runs[k].samples[runs[k].n++] = qcal_now() - t0;
        qcal_progress_step(&prog, 1);
      }
  qcal_progress_end(&prog);
  for (int k = 0; k < ne && !st; k++)
    st = profile(&runs[k], &x, prof_runs);
  if (st) {
    rc = qcal_die_status(st);
    goto done;
  }
  /* the table */
  char shape[96] = "", mname[200];
  for (int d = 0; d < x.ndim; d++)
    snprintf(shape + strlen(shape), sizeof shape - strlen(shape), d ? "x%lld" : "%lld",
             (long long)x.shape[d]);
  qcal_escape_text(base_name(model), mname, sizeof mname);
  double fp32_med = NAN;
  eng_run *fp = NULL;
  qcal_stats sts[MAX_ENG];
  for (int k = 0; k < ne; k++) {
    char name[300];
    snprintf(name, sizeof name, "model/%s/%s", mname, qcal_engine_names[runs[k].e]);
    bench_rec *rec = qcal_bench_add(&bs, name, runs[k].samples, runs[k].n);
    sts[k] = rec->st;
    if (runs[k].e == QCAL_ENGINE_FP32)
      fp32_med = sts[k].median, fp = &runs[k];
  }
  printf("%s, input %s, %d threads, %d runs x %d rounds per engine (load average %.2f at "
         "start)\n",
         mname, shape, nt, c.reps, c.rounds, load0);
  printf("%-6s %10s %10s %10s %9s %s\n", "engine", "median ms", "min ms", "spread %", "vs fp32",
         "int8 fidelity");
  for (int k = 0; k < ne; k++) {
    const qcal_stats *s = &sts[k];
    double x8 = fp32_med / s->median;
    char fid[96] = "";
    if (runs[k].e == QCAL_ENGINE_INT8)
      snprintf(fid, sizeof fid, "%d of %d layers int8, %.1f dB vs qdq", runs[k].g->int8_nodes,
               runs[k].g->int8_candidates, runs[k].sqnr);
    char xs[32] = "        -"; /* no fp32 run to compare with */
    if (x8 == x8)
      snprintf(xs, sizeof xs, "%8.2fx", x8);
    printf("%-6s %10.3f %10.3f %10.1f %s %s\n", qcal_engine_names[runs[k].e], s->median * 1e3,
           s->min * 1e3, 100.0 * (s->max - s->min) / s->median, xs, fid);
    qcal_table_row(tb);
    qcal_table_set_s(tb, QCAL_COL(MODEL_BENCH, model), mname);
    qcal_table_set_s(tb, QCAL_COL(MODEL_BENCH, engine), qcal_engine_names[runs[k].e]);
    qcal_table_set_s(tb, QCAL_COL(MODEL_BENCH, input_shape), shape);
    qcal_table_set_i(tb, QCAL_COL(MODEL_BENCH, threads), nt);
    qcal_table_set_f(tb, QCAL_COL(MODEL_BENCH, median_seconds), s->median);
    qcal_table_set_f(tb, QCAL_COL(MODEL_BENCH, min_seconds), s->min);
    qcal_table_set_f(tb, QCAL_COL(MODEL_BENCH, max_seconds), s->max);
    qcal_table_set_f(tb, QCAL_COL(MODEL_BENCH, mad_seconds), s->mad);
    qcal_table_set_f(tb, QCAL_COL(MODEL_BENCH, speedup_vs_fp32), x8);
    qcal_table_set_i(tb, QCAL_COL(MODEL_BENCH, int8_layers), runs[k].g->int8_nodes);
    qcal_table_set_f(tb, QCAL_COL(MODEL_BENCH, sqnr_vs_qdq_db), runs[k].sqnr);
    qcal_bench_counter(&bs.recs[bs.n - ne + k], "speedup_vs_fp32", x8);
  }
  printf("\ntime per layer type (median of %d profiled runs, ms)\n%-16s", prof_runs, "layer type");
  for (int k = 0; k < ne; k++)
    printf(" %10s", qcal_engine_names[runs[k].e]);
  printf("%s\n", fp && ne > 1 ? "   speed-up over fp32" : "");
  /* every type any engine ran, in the order they first appear */
  char kinds[MAX_ENG * MAX_KIND][32];
  int nk = 0;
  for (int k = 0; k < ne; k++)
    for (int i = 0; i < runs[k].nkind; i++) {
      int j = 0;
      while (j < nk && strcmp(kinds[j], runs[k].kind[i]))
        j++;
      if (j == nk)
        snprintf(kinds[nk++], sizeof kinds[0], "%s", runs[k].kind[i]);
    }
  for (int j = 0; j < nk; j++) {
    printf("%-16s", kinds[j]);
    double fpt = NAN;
    if (fp)
      for (int i = 0; i < fp->nkind; i++)
        if (!strcmp(fp->kind[i], kinds[j]))
          fpt = qcal_stats_of(fp->kind_s[i], prof_runs).median;
    char xs[200] = "";
    for (int k = 0; k < ne; k++) {
      int i = 0;
      while (i < runs[k].nkind && strcmp(runs[k].kind[i], kinds[j]))
        i++;
      if (i == runs[k].nkind) {
        printf(" %10s", "-");
        continue;
      }
      double tot = 0;
      for (int q = 0; q < runs[k].nkind; q++)
        tot += qcal_stats_of(runs[k].kind_s[q], prof_runs).median;
      double t = qcal_stats_of(runs[k].kind_s[i], prof_runs).median;
      printf(" %10.3f", t * 1e3);
      if (fp && &runs[k] != fp && fpt == fpt)
        snprintf(xs + strlen(xs), sizeof xs - strlen(xs), "   %s %.2fx",
                 qcal_engine_names[runs[k].e], fpt / t);
      qcal_table_row(tl);
      qcal_table_set_s(tl, QCAL_COL(MODEL_LAYERS, model), mname);
      qcal_table_set_s(tl, QCAL_COL(MODEL_LAYERS, engine), qcal_engine_names[runs[k].e]);
      qcal_table_set_s(tl, QCAL_COL(MODEL_LAYERS, layer_type), kinds[j]);
      qcal_table_set_i(tl, QCAL_COL(MODEL_LAYERS, nodes), runs[k].kind_nodes[i]);
      qcal_table_set_f(tl, QCAL_COL(MODEL_LAYERS, median_seconds), t);
      qcal_table_set_f(tl, QCAL_COL(MODEL_LAYERS, share_percent), qcal_percent(t, tot));
      qcal_table_set_f(tl, QCAL_COL(MODEL_LAYERS, speedup_vs_fp32), fpt == fpt ? fpt / t : NAN);
    }
    printf("%s\n", xs);
  }
  {
    json_object *ctx = json_object_new_object();
    json_object_object_add(ctx, "executable", json_object_new_string("qcal bench-model"));
    json_object_object_add(ctx, "model", json_object_new_string(model));
    json_object_object_add(ctx, "num_cpus",
                           json_object_new_int((int)sysconf(_SC_NPROCESSORS_ONLN)));
    json_object_object_add(ctx, "threads", json_object_new_int(nt));
    json_object_object_add(ctx, "load_average", json_object_new_double(load0));
    char *ctxs = strdup(json_object_to_json_string(ctx));
    json_object_put(ctx);
    qcal_table *tabs[2] = {tb, tl};
    st = ctxs ? qcal_bench_write_outputs(&bs, c.out, c.json, tabs, 2, ctxs)
              : qcal_error(QCAL_ENOMEM, "out of memory");
    free(ctxs);
    if (st)
      rc = qcal_die_status(st);
    else if (c.out)
      printf("\nresults: %s\n", c.out);
  }
done:
  for (int k = 0; k < ne; k++) {
    qcal_graph_free(runs[k].g);
    free(runs[k].samples);
    for (int i = 0; i < runs[k].nkind; i++)
      free(runs[k].kind_s[i]);
  }
  qcal_graph_free(ref);
  qcal_tensor_free(&x);
  qcal_table_free(tb);
  qcal_table_free(tl);
  qcal_bench_free(&bs);
  return rc;
}
