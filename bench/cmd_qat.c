/* qcal qat: FP32 training, PTQ and QAT on a labelled IDX image set
 * (analysis/qat.c); prints each stage, then the summary table, and writes
 * the qat and qat_curves tables to one HDF5 file. */
#include <json-c/json.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/cli.h"
#include "qcal/progress.h"
#include "qcal/qat.h"

typedef struct {
  const char *net, *data, *bits, *out, *save, *optim, *dump, *schedule;
  int epochs, batch, threads, val, calib, seed, learn_amax, quick, list, signed_acts, input_bits;
  int train_images, test_images;
  double qat_epochs, lr, qat_lr;
} qat_cli;

static const char *const optim_choices[] = {"sgd", "adam", NULL};
static const char *const schedule_choices[] = {"cosine", "step", NULL};

#define O(f) offsetof(qat_cli, f)
static const qcal_opt opts[] = {
    {"net", "LIST", "networks to train: cnn, mobilenet (comma-separated)", O(net), OPT_STRING, 0, 0,
     NULL},
    {"data", "DIR", "IDX files (train-*, t10k-*; .gz or plain)", O(data), OPT_STRING, 0, 0, NULL},
    {"epochs", "E", "FP32 epochs (0: the network's default; a model file: as given)", O(epochs),
     OPT_INT, 0, 1000, NULL},
    {"qat-epochs", "Q", "QAT epochs per configuration (fractions allowed; 0: PTQ only)",
     O(qat_epochs), OPT_DOUBLE, 0, 1000, NULL},
    {"bits", "LIST", "configurations: N (WNAN), wNaM, or a range N-M (e.g. 8,w4a8,4)", O(bits),
     OPT_STRING, 0, 0, NULL},
    {"batch", "N", "batch size", O(batch), OPT_INT, 1, 65536, NULL},
    {"lr", "LR", "FP32 peak learning rate (0: the network's default)", O(lr), OPT_DOUBLE, 0, 10,
     NULL},
    {"qat-lr", "LR", "QAT initial learning rate (0: 1% of --lr, NVIDIA's recipe)", O(qat_lr),
     OPT_DOUBLE, 0, 10, NULL},
    {"optim", "NAME", "sgd (momentum 0.9) or adam", O(optim), OPT_CHOICE, 0, 0, optim_choices},
    {"schedule", "NAME",
     "learning rate: cosine annealing, or step (x0.1 at half and three quarters of the steps)",
     O(schedule), OPT_CHOICE, 0, 0, schedule_choices},
    {"learn-amax", NULL, "QAT learns amax (LSQ) instead of keeping the calibrated one",
     O(learn_amax), OPT_FLAG, 0, 0, NULL},
    {"signed-acts", NULL,
     "below 8 bits too, activations on the signed grid (default: unsigned where they cannot "
     "be negative, after ReLU/ReLU6)",
     O(signed_acts), OPT_FLAG, 0, 0, NULL},
    {"input-bits", "N",
     "the network input's activation bits (0: as the other activations; 8 keeps the image at "
     "8 bits, as many 4-bit recipes keep the first layer)",
     O(input_bits), OPT_INT, 0, 8, NULL},
    {"val", "N", "validation images carved from the training set", O(val), OPT_INT, 1, 1000000,
     NULL},
    {"calib", "N", "calibration images from the training split", O(calib), OPT_INT, 1, 1000000,
     NULL},
    {"train-images", "N", "train on the first N images of the training split (0: all)",
     O(train_images), OPT_INT, 0, 100000000, NULL},
    {"test-images", "N", "measure on the first N test (and validation) images (0: all)",
     O(test_images), OPT_INT, 0, 100000000, NULL},
    {"seed", "N", "weights, split and data order", O(seed), OPT_INT, 0, 2147483647, NULL},
    {"threads", "N", "threads (0: all cores); results are bit-identical for a given N", O(threads),
     OPT_INT, 0, 1024, NULL},
    {"quick", NULL, "CI size: 8192 training and 2000 test images, 1 epoch, W8A8 and W4A8", O(quick),
     OPT_FLAG, 0, 0, NULL},
    {"save", "DIR", "write NET-fp32.onnx and NET-qat-w8a8-*.onnx (Q/DQ) there", O(save), OPT_STRING,
     0, 0, NULL},
    {"output", "FILE.h5", "results file (-o)", O(out), OPT_STRING, 0, 0, NULL},
    {"dump-grads", "FILE.npz",
     "instead of training: the first batch (x, y), its loss and every parameter's gradient",
     O(dump), OPT_STRING, 0, 0, NULL},
    {"list", NULL, "print the networks and exit", O(list), OPT_FLAG, 0, 0, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "qat",
    "qcal qat [MODEL.onnx | --net cnn,mobilenet] [--data DIR] [--epochs E] [--qat-epochs Q]\n"
    "         [--bits 8,w4a8,4] [--threads N] [-o qat.h5] [--save DIR] [--quick]",
    "Quantization-aware training in C on the graph IR. Trains each network in FP32 on\n"
    "Fashion-MNIST (Debian's dataset-fashion-mnist) or fine-tunes MODEL.onnx, then per\n"
    "bit width: PTQ with max, entropy, mse and percentile 99.99 activations x per-tensor\n"
    "and per-channel weights (max), and QAT from the calibration with the best\n"
    "validation top-1 (straight-through estimator, BatchNorm folded, cosine-annealed\n"
    "learning rate). Test top-1 of every stage, with its time (docs/qat.md).",
    opts,
};

/* "8,w4a8,4" or "2-8" into configurations. */
static int parse_bits(const char *s, qcal_qat_bits *out, int *n) {
  *n = 0;
  while (*s) {
    int w, a, lo, hi, used = 0;
    char tail;
    size_t len = strcspn(s, ",");
    char item[32];
    if (len == 0 || len >= sizeof item)
      return -1;
    memcpy(item, s, len);
    item[len] = 0;
    if (sscanf(item, "%d-%d%n", &lo, &hi, &used) == 2 && used == (int)len) {
      if (lo < 2 || hi > 8 || lo > hi)
        return -1;
      for (int b = hi; b >= lo; b--) {
        if (*n >= QCAL_QAT_MAX_BITS)
          return -1;
        out[(*n)++] = (qcal_qat_bits){b, b};
      }
    } else {
      if (sscanf(item, "%d%c", &w, &tail) == 1)
        a = w;
      else if (!((sscanf(item, "w%da%d%n", &w, &a, &used) == 2 ||
                  sscanf(item, "W%dA%d%n", &w, &a, &used) == 2) &&
                 used == (int)len))
        return -1;
      if (w < 2 || w > 8 || a < 2 || a > 8 || *n >= QCAL_QAT_MAX_BITS)
        return -1;
      out[(*n)++] = (qcal_qat_bits){w, a};
    }
    s += len + (s[len] == ',');
  }
  return *n > 0 ? 0 : -1;
}

static void log_line(void *ctx, const char *line) {
  (void)ctx;
  printf("%s\n", line);
  fflush(stdout);
}

/* The table of the seed: per network and bit width, FP32, the best PTQ
 * per granularity and QAT. */
static void summary(const qcal_table *t) {
  printf("\n%-12s %-6s %-12s %8s %9s %9s\n", "network", "bits", "weights", "fp32", "best ptq",
         "qat");
  size_t rows = qcal_table_rows(t);
  for (size_t i = 0; i < rows; i++) {
    long k = (long)i;
    if (strcmp(qcal_table_get_s(t, k, QCAL_COL(QAT, stage)), "qat"))
      continue;
    qcal_qat_summary q = qcal_qat_summarize(t, k);
    char bits[16];
    snprintf(bits, sizeof bits, "W%lldA%lld", q.wb, q.ab);
    printf("%-12s %-6s %-12s %7.2f%% %8.2f%% %8.2f%%\n", q.net, bits, q.gran, q.fp32, q.ptq, q.qat);
  }
}

int qcal_cmd_qat(int argc, char **argv) {
  qat_cli c = {.net = "cnn,mobilenet",
               .data = "/usr/share/datasets/fashion-mnist",
               .bits = "8,w4a8,4",
               .out = "qat.h5",
               .optim = "sgd",
               .schedule = "cosine",
               .qat_epochs = 1,
               .batch = 128,
               .val = 5000,
               .calib = 1024,
               .seed = 1};
  const char *pos[1];
  int npos, r = qcal_opts_parse(&info, &c, argc, argv, pos, 1, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (c.list) {
    for (const qcal_net_info *n = qcal_nets; n->name; n++)
      printf("%-10s %s (%d epochs, lr %g)\n", n->name, n->help, n->epochs, n->lr);
    return QCAL_EXIT_OK;
  }
  qcal_qat_cfg cfg = {.data = c.data,
                      .model = npos ? pos[0] : NULL,
                      .nets = c.net,
                      .epochs = c.epochs,
                      .qat_epochs = c.qat_epochs,
                      .batch = c.batch,
                      .lr = c.lr,
                      .qat_lr = c.qat_lr,
                      .optim = strcmp(c.optim, "adam") ? QCAL_OPTIM_SGD : QCAL_OPTIM_ADAM,
                      .step_schedule = !strcmp(c.schedule, "step"),
                      .seed = (uint64_t)c.seed,
                      .val = c.val,
                      .calib = c.calib,
                      .learn_amax = c.learn_amax,
                      .unsigned_acts = !c.signed_acts,
                      .input_bits = c.input_bits,
                      .save = c.save,
                      .dump_grads = c.dump,
                      .log = log_line};
  const char *bits = c.bits;
  cfg.train_limit = c.train_images;
  cfg.test_limit = c.test_images;
  if (c.quick) {
    if (!c.train_images)
      cfg.train_limit = 8192;
    if (!c.test_images)
      cfg.test_limit = 2000;
    if (!c.epochs)
      cfg.epochs = 1;
    if (!strcmp(bits, "8,w4a8,4"))
      bits = "8,w4a8";
  }
  if (parse_bits(bits, cfg.bits, &cfg.nbits))
    return qcal_die("--bits '%s': give N (WNAN), wNaM or a range N-M, each from 2 to 8", bits);
  struct stat sb;
  if (c.save && (stat(c.save, &sb) || !S_ISDIR(sb.st_mode)))
    return qcal_die("--save %s: not a folder", c.save);
  const char *ins[2] = {c.data, cfg.model};
  if (qcal_check_outputs("qat", c.dump ? c.dump : c.out, NULL, ins, cfg.model ? 2 : 1))
    return QCAL_EXIT_USAGE;
  if (c.threads > 0)
    omp_set_num_threads(c.threads);
  cfg.threads = c.threads > 0 ? c.threads : omp_get_max_threads();
  printf("qat: %s on %s, %d threads, batch %d\n", cfg.model ? cfg.model : c.net, c.data,
         cfg.threads, c.batch);
  qcal_table *res = NULL, *cur = NULL;
  double t0 = qcal_now();
  qcal_status st = qcal_qat_run(&cfg, &res, &cur);
  if (st)
    return qcal_die_status(st);
  if (c.dump) {
    qcal_table_free(res);
    qcal_table_free(cur);
    return QCAL_EXIT_OK;
  }
  summary(res);
  printf("\nin %.0f s\n", qcal_now() - t0);
  json_object *j = json_object_new_object();
  json_object_object_add(j, "command", json_object_new_string("qat"));
  json_object_object_add(j, "nets", json_object_new_string(cfg.model ? cfg.model : c.net));
  json_object_object_add(j, "data", json_object_new_string(c.data));
  json_object_object_add(j, "bits", json_object_new_string(bits));
  json_object_object_add(j, "epochs", json_object_new_int(cfg.epochs));
  json_object_object_add(j, "qat_epochs", json_object_new_double(c.qat_epochs));
  json_object_object_add(j, "batch", json_object_new_int(c.batch));
  json_object_object_add(j, "optim", json_object_new_string(c.optim));
  json_object_object_add(j, "schedule", json_object_new_string(c.schedule));
  json_object_object_add(j, "seed", json_object_new_int(c.seed));
  json_object_object_add(j, "threads", json_object_new_int(cfg.threads));
  json_object_object_add(j, "learn_amax", json_object_new_boolean(c.learn_amax));
  json_object_object_add(j, "unsigned_acts", json_object_new_boolean(!c.signed_acts));
  json_object_object_add(j, "input_bits", json_object_new_int(c.input_bits));
  json_object_object_add(j, "quick", json_object_new_boolean(c.quick));
  const qcal_table *tables[2] = {res, cur};
  st = qcal_results_save(c.out, json_object_to_json_string(j), tables, 2);
  json_object_put(j);
  qcal_table_free(res);
  qcal_table_free(cur);
  if (st)
    return qcal_die_status(st);
  printf("results: %s\n", c.out);
  return QCAL_EXIT_OK;
}
