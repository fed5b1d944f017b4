/* Crash isolation for libhdf5. qcal's reader checks everything it can before
 * libhdf5 reads, but libhdf5 1.10 itself segfaults, hangs or allocates
 * without bound on some corrupt internal structures (global heaps, object
 * headers; tests/fuzz/regressions/results-hdf5-*). So every results file is
 * first read whole in a child process, under a time limit and (outside
 * sanitizer builds) a memory limit; only a file the child read cleanly is
 * read again in this process. A crash, hang or blow-up becomes one error. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qcal/paths.h"
#include "reports/table_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define QCAL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QCAL_ASAN 1
#endif
#endif

/* Everything a consumer may read: every table present, the sweep's cross
 * references and histograms, the provenance attributes and samples. */
static qcal_status read_everything(qcal_results *r) {
  qcal_status st = QCAL_OK;
  for (int id = 0; id < QCAL_TABLE_COUNT && st == QCAL_OK; id++) {
    qcal_table *t = NULL;
    if (qcal_results_has(r, (qcal_table_id)id))
      st = qcal_results_read(r, (qcal_table_id)id, &t);
    qcal_table_free(t);
  }
  if (st == QCAL_OK && qcal_results_has(r, QCAL_TABLE_RESULTS)) {
    qcal_sweep_tables sw;
    st = qcal_results_read_sweep(r, &sw); /* histogram slices checked there */
    if (st == QCAL_OK && r->version >= 2)
      st = qcal_results_scan(r, "/histogram_counts", 0);
    if (st == QCAL_OK && r->version >= 2)
      st = qcal_results_scan(r, "/histogram_edges", 1);
    for (size_t t = 0; st == QCAL_OK && r->version < 2 && t < sw.ntensors; t++) {
      uint64_t *c;
      float *e;
      size_t nb;
      if (qcal_results_has_histogram(r, &sw, t) &&
          (st = qcal_results_histogram(r, &sw, t, &c, &e, &nb)) == QCAL_OK)
        free(c), free(e);
    }
    qcal_sweep_tables_free(&sw);
  }
  static const char *const attrs[] = {"qcal_version", "git_commit", "date",
                                      "cpu_model",    "cpu_flags",  "kernels",
                                      "gpu",          "compiler",   "config"};
  for (size_t i = 0; i < sizeof attrs / sizeof attrs[0] && st == QCAL_OK; i++) {
    char buf[256];
    qcal_status a = qcal_results_attr(r, attrs[i], buf, sizeof buf);
    if (a != QCAL_OK && !strstr(qcal_last_error(), "no attribute"))
      st = a;
  }
  if (st == QCAL_OK && qcal_results_has(r, QCAL_TABLE_SAMPLES)) {
    float *s = NULL;
    size_t n;
    st = qcal_results_f32(r, "/samples_seconds", &s, &n);
    free(s);
  }
  return st;
}

qcal_status qcal_results_guard(qcal_results *r) {
  const char *inproc = getenv("QCAL_RESULTS_INPROCESS");
  if (inproc && !strcmp(inproc, "1")) /* fuzzing: libFuzzer must see every fault itself */
    return read_everything(r);
  int fd[2];
  if (pipe(fd) != 0)
    return qcal_error(QCAL_EIO, "%s: pipe: %s", r->path, strerror(errno));
  /* generous: reading is I/O bound; a hang is what this catches.
   * QCAL_READ_TIMEOUT (seconds) overrides it. */
  unsigned limit = 60 + (unsigned)(r->file_size >> 24);
  const char *env = getenv("QCAL_READ_TIMEOUT");
  if (env && atoi(env) > 0)
    limit = (unsigned)atoi(env);
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(fd[0]), close(fd[1]);
    return qcal_error(QCAL_EIO, "%s: fork: %s", r->path, strerror(errno));
  }
  if (pid == 0) {
    close(fd[0]);
    /* the child's only word is its message on the pipe: a crash report of
     * libhdf5's (or a sanitizer's) must not reach the user's stderr */
    int dn = open("/dev/null", O_WRONLY);
    if (dn >= 0)
      dup2(dn, 2), close(dn);
    alarm(limit);
#ifndef QCAL_ASAN
    /* a file can make libhdf5 allocate what it claims: cap the child's heap */
    double cap = 0.5 * qcal_mem_available(), want = 64.0 * (double)r->file_size + (1u << 30);
    struct rlimit rl;
    if (getrlimit(RLIMIT_DATA, &rl) == 0) {
      rl.rlim_cur = (rlim_t)(want < cap ? want : cap);
      setrlimit(RLIMIT_DATA, &rl);
    }
#endif
    qcal_status st = read_everything(r);
    if (st != QCAL_OK) {
      const char *m = qcal_last_error();
      ssize_t w = write(fd[1], m, strlen(m));
      (void)w;
    }
    _exit(st == QCAL_OK ? 0 : 3);
  }
  close(fd[1]);
  char msg[1100];
  size_t got = 0;
  for (ssize_t k; got < sizeof msg - 1 && (k = read(fd[0], msg + got, sizeof msg - 1 - got));) {
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      break;
    got += (size_t)k;
  }
  msg[got] = '\0';
  close(fd[0]);
  int ws;
  while (waitpid(pid, &ws, 0) < 0)
    if (errno != EINTR)
      return qcal_error(QCAL_EIO, "%s: waitpid: %s", r->path, strerror(errno));
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
    return QCAL_OK;
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 3 && got)
    return qcal_error(QCAL_EFORMAT, "%s", msg);
  if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGALRM)
    return qcal_error(QCAL_EFORMAT,
                      "%s: reading did not finish in %u s: corrupt HDF5 structure (libhdf5 hangs)",
                      r->path, limit);
  if (WIFSIGNALED(ws))
    return qcal_error(QCAL_EFORMAT,
                      "%s: libhdf5 crashed reading it (signal %d): corrupt HDF5 structure", r->path,
                      WTERMSIG(ws));
  return qcal_error(QCAL_EFORMAT,
                    "%s: libhdf5 failed reading it (exit %d, out of memory?): corrupt HDF5 "
                    "structure",
                    r->path, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
}
