/* qcal compare: regressions of NEW against BASE. */
#include <json-c/json.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bench/cli.h"
#include "qcal/compare.h"
#include "qcal/escape.h"

typedef struct {
  const char *format, *thresholds, *perf;
  int rows;
} compare_cfg;

static const char *const formats[] = {"text", "md", "json", NULL};
static const char *const perf_modes[] = {"gate", "warn", NULL};

#define O(f) offsetof(compare_cfg, f)
static const qcal_opt opts[] = {
    {"format", "F", "text, md or json", O(format), OPT_CHOICE, 0, 0, formats},
    {"thresholds", "FILE",
     "key = value lines: sqnr_db_drop, amax_rel, agreement_drop, alpha, min_effect", O(thresholds),
     OPT_STRING, 0, 0, NULL},
    {"perf", "MODE", "gate: timing regressions fail; warn: they are only reported", O(perf),
     OPT_CHOICE, 0, 0, perf_modes},
    {"rows", "N", "rows to print (text, md), worst first", O(rows), OPT_INT, 1, 1000000, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "compare",
    "qcal compare BASE.h5 NEW.h5 [--thresholds FILE] [--format text|md|json] [--perf gate|warn]",
    "Match results by key (tensor, method, granularity, bits; act method and weight\n"
    "granularity; engine/type/shape for timings) and report, worst first:\n"
    "quality regressions past the thresholds (SQNR -0.05 dB, amax 1e-6 relative by\n"
    "default), and timing regressions that are significant by a two-sided\n"
    "Mann-Whitney U test (alpha 0.05) and at least 5% slower. Keys present in only\n"
    "one file are listed. Exit: 0 no regression, 1 regression, 2 error.",
    opts,
};

static const char *verdict_name(qcal_cmp_verdict v) {
  switch (v) {
  case CMP_REGRESSION:
    return "REGRESSION";
  case CMP_IMPROVED:
    return "improved";
  case CMP_CHANGED:
    return "changed";
  case CMP_WARN:
    return "warning";
  default:
    return "ok";
  }
}

int qcal_cmd_compare(int argc, char **argv) {
  compare_cfg cfg = {.format = "text", .perf = "gate", .rows = 40};
  const char *pos[2];
  int npos, r = qcal_opts_parse(&info, &cfg, argc, argv, pos, 2, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (npos != 2)
    return qcal_die("compare: expected BASE.h5 NEW.h5 (see qcal compare --help)");
  qcal_thresholds th = QCAL_THRESHOLDS_DEFAULT;
  qcal_status st = cfg.thresholds ? qcal_thresholds_load(cfg.thresholds, &th) : QCAL_OK;
  if (st != QCAL_OK)
    return qcal_die_status(st);
  qcal_results b, n;
  if ((st = qcal_results_open(&b, pos[0])) != QCAL_OK)
    return qcal_die_status(st);
  if ((st = qcal_results_open(&n, pos[1])) != QCAL_OK) {
    qcal_results_close(&b);
    return qcal_die_status(st);
  }
  qcal_cmp c;
  st = qcal_compare(&b, &n, &th, &c);
  qcal_results_close(&b);
  qcal_results_close(&n);
  if (st != QCAL_OK)
    return qcal_die_status(st);
  const int perf_gate = !strcmp(cfg.perf, "gate");
  const int failed = c.quality_regressions > 0 || (perf_gate && c.perf_regressions > 0);

  if (!strcmp(cfg.format, "json")) {
    json_object *o = json_object_new_object(), *rows = json_object_new_array();
    for (size_t i = 0; i < c.n; i++) {
      const qcal_cmp_row *x = &c.rows[i];
      json_object *e = json_object_new_object();
      json_object_object_add(e, "key", json_object_new_string(x->key));
      json_object_object_add(e, "metric", json_object_new_string(x->metric));
      json_object_object_add(e, "kind",
                             json_object_new_string(x->quality ? "quality" : "performance"));
      json_object_object_add(e, "base", isfinite(x->base) ? json_object_new_double(x->base) : NULL);
      json_object_object_add(e, "new", isfinite(x->cur) ? json_object_new_double(x->cur) : NULL);
      json_object_object_add(e, "delta",
                             isfinite(x->delta) ? json_object_new_double(x->delta) : NULL);
      if (!x->quality)
        json_object_object_add(e, "p_value", json_object_new_double(x->p));
      json_object_object_add(e, "verdict", json_object_new_string(verdict_name(x->verdict)));
      if (x->note[0])
        json_object_object_add(e, "note", json_object_new_string(x->note));
      json_object_array_add(rows, e);
    }
    json_object_object_add(o, "rows", rows);
    json_object *ob = json_object_new_array(), *on = json_object_new_array();
    for (size_t i = 0; i < c.n_only_base; i++)
      json_object_array_add(ob, json_object_new_string(c.only_base[i]));
    for (size_t i = 0; i < c.n_only_new; i++)
      json_object_array_add(on, json_object_new_string(c.only_new[i]));
    json_object_object_add(o, "only_in_base", ob);
    json_object_object_add(o, "only_in_new", on);
    json_object_object_add(o, "quality_regressions", json_object_new_int(c.quality_regressions));
    json_object_object_add(o, "performance_regressions", json_object_new_int(c.perf_regressions));
    json_object_object_add(o, "regression", json_object_new_boolean(failed));
    puts(json_object_to_json_string_ext(o,
                                        JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
  } else {
    const int md = !strcmp(cfg.format, "md");
    if (md)
      printf("| key | metric | base | new | delta | verdict | note "
             "|\n|---|---|---|---|---|---|---|\n");
    else
      printf("%-64s %-18s %12s %12s %10s  %-10s %s\n", "key", "metric", "base", "new", "delta",
             "verdict", "note");
    for (size_t i = 0; i < c.n && (int)i < cfg.rows; i++) {
      const qcal_cmp_row *x = &c.rows[i];
      char delta[32];
      if (!x->quality || strstr(x->metric, "amax"))
        snprintf(delta, sizeof delta, "%+.2f%%", 100 * (x->quality ? x->delta : x->delta));
      else
        snprintf(delta, sizeof delta, "%+.4f", x->delta);
      static char k[4 * sizeof x->key], nt[4 * sizeof x->note];
      if (md) /* names come from the files: escaped for the job summary */
        printf("| %s | %s | %.6g | %.6g | %s | %s | %s |\n", qcal_escape_md(x->key, k, sizeof k),
               x->metric, x->base, x->cur, delta, verdict_name(x->verdict),
               qcal_escape_md(x->note, nt, sizeof nt));
      else
        printf("%-64.64s %-18s %12.6g %12.6g %10s  %-10s %s\n", x->key, x->metric, x->base, x->cur,
               delta, verdict_name(x->verdict), x->note);
    }
    if (c.n > (size_t)cfg.rows)
      printf("%s(%zu more rows; --rows N or --format json for all)\n", md ? "\n" : "",
             c.n - (size_t)cfg.rows);
    static char e1[8192], e2[8192];
    for (size_t i = 0; i < c.n_only_base; i++)
      printf("%sonly in %s: %s\n", md ? "- " : "",
             md ? qcal_escape_md(pos[0], e1, sizeof e1) : pos[0],
             md ? qcal_escape_md(c.only_base[i], e2, sizeof e2) : c.only_base[i]);
    for (size_t i = 0; i < c.n_only_new; i++)
      printf("%sonly in %s: %s\n", md ? "- " : "",
             md ? qcal_escape_md(pos[1], e1, sizeof e1) : pos[1],
             md ? qcal_escape_md(c.only_new[i], e2, sizeof e2) : c.only_new[i]);
    printf("%s%zu compared: %d quality regression(s), %d performance regression(s)%s, %d warning(s)"
           " -> %s\n",
           md ? "\n**" : "", c.n, c.quality_regressions, c.perf_regressions,
           perf_gate ? "" : " (not gating)", c.warnings, failed ? "REGRESSION" : "no regression");
    if (md)
      printf("**\n");
  }
  qcal_cmp_free(&c);
  return failed ? QCAL_EXIT_FAIL : QCAL_EXIT_OK;
}
