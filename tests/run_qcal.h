/* Running the qcal binary from a test: both streams captured, exit status,
 * and the bad-input contract (exit 2, one stderr line, nothing on stdout). */
#ifndef QCAL_TESTS_RUN_QCAL_H
#define QCAL_TESTS_RUN_QCAL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common.h"

static char dir[64];
static char out_s[65536], err_s[65536];

static void setup(void) {
  tmpdir_make(dir, sizeof dir, "run");
  cr_assert_neq(dir[0], 0);
}

static void teardown(void) {
  cr_assert_eq(tmpdir_remove(dir), 0);
}

static void slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
  buf[n] = 0;
  if (f)
    fclose(f);
}

/* Run "qcal <args>", capture both streams, return the exit status. */
static int qcal(const char *args) {
  const char *bin = getenv("QCAL_BIN");
  cr_assert_not_null(bin, "QCAL_BIN not set (run through meson test)");
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s %s >%s/out 2>%s/err", bin, args, dir, dir);
  int st = system(cmd);
  cr_assert(WIFEXITED(st), "qcal crashed: %s", args);
  char p[128];
  snprintf(p, sizeof p, "%s/out", dir);
  slurp(p, out_s, sizeof out_s);
  snprintf(p, sizeof p, "%s/err", dir);
  slurp(p, err_s, sizeof err_s);
  return WEXITSTATUS(st);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

/* Expect exit 2 and exactly one stderr line containing every needle. */
static void expect_bad(const char *args, const char *needle1, const char *needle2) {
  int rc = qcal(args);
  cr_assert_eq(rc, 2, "qcal %s: exit %d, stderr: %s", args, rc, err_s);
  cr_assert_eq(count_lines(err_s), 1, "qcal %s: stderr not one line: %s", args, err_s);
  cr_assert_not_null(strstr(err_s, needle1), "qcal %s: '%s' missing in: %s", args, needle1, err_s);
  if (needle2)
    cr_assert_not_null(strstr(err_s, needle2), "qcal %s: '%s' missing in: %s", args, needle2,
                       err_s);
  cr_assert_eq(out_s[0], 0, "qcal %s printed results on error: %s", args, out_s);
}

#endif
