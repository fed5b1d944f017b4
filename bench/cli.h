/* Shared pieces of the qcal command: option tables, timers, progress, exit
 * codes. */
#ifndef QCAL_BENCH_CLI_H
#define QCAL_BENCH_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "qcal/progress.h"
#include "qcal/status.h"

enum { QCAL_EXIT_OK = 0, QCAL_EXIT_FAIL = 1, QCAL_EXIT_USAGE = 2 };

typedef enum { OPT_INT, OPT_DOUBLE, OPT_FLAG, OPT_STRING, OPT_CHOICE } opt_type;

/* One option as data (VMAF style): the parser checks type and range. */
typedef struct qcal_opt {
  const char *name; /* without the leading -- */
  const char *meta; /* value placeholder for --help, NULL for flags */
  const char *help;
  size_t offset;              /* into the command's config struct */
  opt_type type;              /* INT: int, DOUBLE: double, FLAG: int, STRING/CHOICE: const char* */
  double min, max;            /* inclusive range for INT/DOUBLE */
  const char *const *choices; /* NULL-terminated, for OPT_CHOICE */
} qcal_opt;

typedef struct qcal_cmd_info {
  const char *name, *usage, *summary;
  const qcal_opt *opts;
} qcal_cmd_info;

/* Parse argv (argv[0] is the sub-command). Positionals go to pos (at most
 * max_pos). Returns 0, 1 when --help was printed, or -1 after printing one
 * error line. */
int qcal_opts_parse(const qcal_cmd_info *cmd, void *cfg, int argc, char **argv, const char **pos,
                    int max_pos, int *npos);
void qcal_opts_help(const qcal_cmd_info *cmd, const void *defaults, FILE *out);

/* Print "qcal: error: <msg>" and return QCAL_EXIT_USAGE. */
int qcal_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same for a failed library status: uses qcal_last_error(). */
int qcal_die_status(qcal_status s);

/* Check -o and --json (either may be NULL) before a benchmark runs: each
 * creatable, neither an input nor the other. Prints the error; returns
 * QCAL_EXIT_USAGE or 0. */
int qcal_check_outputs(const char *cmd, const char *h5, const char *json, const char *const *inputs,
                       int ninputs);
/* QCAL_CACHE, else $XDG_CACHE_HOME/qcal, else ~/.cache/qcal */
const char *qcal_cache_dir(char *buf, size_t cap);

/* The photo preprocessing options of infer and sweep, into the
 * qcal_preproc_opts member f of the command's config struct type. */
extern const char *const qcal_layout_choices[];
#define QCAL_PREPROC_OPTIONS(type, f)                                                              \
  {"input-size",                                                                                   \
   "H[,W]",                                                                                        \
   "resize photos to H x W (default: the model's)",                                                \
   offsetof(type, f.size),                                                                         \
   OPT_STRING,                                                                                     \
   0,                                                                                              \
   0,                                                                                              \
   NULL},                                                                                          \
      {"layout",                                                                                   \
       "L",                                                                                        \
       "nchw or nhwc (default: from the model's input)",                                           \
       offsetof(type, f.layout),                                                                   \
       OPT_CHOICE,                                                                                 \
       0,                                                                                          \
       0,                                                                                          \
       qcal_layout_choices},                                                                       \
      {"channels",                                                                                 \
       "C",                                                                                        \
       "1 (luma) or 3 (default: the model's)",                                                     \
       offsetof(type, f.channels),                                                                 \
       OPT_INT,                                                                                    \
       1,                                                                                          \
       3,                                                                                          \
       NULL},                                                                                      \
      {"mean",                                                                                     \
       "R,G,B",                                                                                    \
       "(p/255 - mean) / std per channel, on pixels p in 0..255",                                  \
       offsetof(type, f.mean),                                                                     \
       OPT_STRING,                                                                                 \
       0,                                                                                          \
       0,                                                                                          \
       NULL},                                                                                      \
      {"std", "R,G,B", "see --mean", offsetof(type, f.std), OPT_STRING, 0, 0, NULL},               \
      {"scale",                                                                                    \
       "S",                                                                                        \
       "p * S + O instead (default: the model's known one, else 1/255)",                           \
       offsetof(type, f.scale),                                                                    \
       OPT_DOUBLE,                                                                                 \
       -1e6,                                                                                       \
       1e6,                                                                                        \
       NULL},                                                                                      \
  {                                                                                                \
    "offset", "O", "see --scale (default: the model's known one, else 0)",                         \
        offsetof(type, f.offset), OPT_DOUBLE, -1e6, 1e6, NULL                                      \
  }

/* Calibrate t with r, then measure the error of the chosen amax. */
#include "qcal/calib.h"
#include "qcal/metrics.h"
qcal_status qcal_evaluate(const qcal_tensor *t, const qcal_calib_request *r, qcal_calib_result *res,
                          qcal_metrics *m);

int qcal_cmd_amax(int argc, char **argv);
int qcal_cmd_demo(int argc, char **argv);
int qcal_cmd_bench_calib(int argc, char **argv);
int qcal_cmd_sweep(int argc, char **argv);
int qcal_cmd_gemm(int argc, char **argv);
int qcal_cmd_stream(int argc, char **argv);
int qcal_cmd_export(int argc, char **argv);
int qcal_cmd_compare(int argc, char **argv);
int qcal_cmd_report(int argc, char **argv);
int qcal_cmd_schema(int argc, char **argv);
int qcal_cmd_infer(int argc, char **argv);
int qcal_cmd_quantize(int argc, char **argv);
int qcal_cmd_bench_model(int argc, char **argv);
int qcal_cmd_zoo(int argc, char **argv);
int qcal_cmd_crops(int argc, char **argv);
int qcal_cmd_qat(int argc, char **argv);

#endif
