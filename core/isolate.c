/* qcal_isolated: a read done first in a child process (see isolate.h). */
#include "qcal/isolate.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qcal/paths.h"

#if defined(__SANITIZE_ADDRESS__)
#define QCAL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QCAL_ASAN 1
#endif
#endif

qcal_status qcal_isolated(const char *what, qcal_status (*fn)(void *), void *ctx, unsigned seconds,
                          double heap_bytes) {
  const char *inproc = getenv("QCAL_NO_ISOLATION");
  if (inproc && !strcmp(inproc, "1"))
    return fn(ctx);
  const char *env = getenv("QCAL_READ_TIMEOUT");
  if (env && atoi(env) > 0)
    seconds = (unsigned)atoi(env);
  int fd[2];
  if (pipe(fd) != 0)
    return qcal_error(QCAL_EIO, "%s: pipe: %s", what, strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(fd[0]), close(fd[1]);
    return qcal_error(QCAL_EIO, "%s: fork: %s", what, strerror(errno));
  }
  if (pid == 0) {
    close(fd[0]);
    /* the child's only word is its message on the pipe: a crash report of
     * the library's (or a sanitizer's) must not reach the user's stderr */
    int dn = open("/dev/null", O_WRONLY);
    if (dn >= 0)
      dup2(dn, 2), close(dn);
    alarm(seconds);
#ifndef QCAL_ASAN
    const double cap = 0.5 * qcal_mem_available();
    struct rlimit rl;
    if (getrlimit(RLIMIT_DATA, &rl) == 0) {
      rl.rlim_cur = (rlim_t)(heap_bytes < cap ? heap_bytes : cap);
      setrlimit(RLIMIT_DATA, &rl);
    }
#else
    (void)heap_bytes;
#endif
    qcal_status st = fn(ctx);
    if (st != QCAL_OK) {
      const char *m = qcal_last_error();
      ssize_t w = write(fd[1], m, strlen(m));
      (void)w;
    }
    _exit(st == QCAL_OK ? 0 : 100 + (int)st);
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
      return qcal_error(QCAL_EIO, "%s: waitpid: %s", what, strerror(errno));
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
    return QCAL_OK;
  if (WIFEXITED(ws) && WEXITSTATUS(ws) > 100 && WEXITSTATUS(ws) < 100 + 32 && got)
    return qcal_error((qcal_status)(WEXITSTATUS(ws) - 100), "%s", msg);
  if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGALRM)
    return qcal_error(QCAL_EFORMAT,
                      "%s: reading did not finish in %u s: corrupt file (the HDF5 library hangs)",
                      what, seconds);
  if (WIFSIGNALED(ws))
    return qcal_error(QCAL_EFORMAT,
                      "%s: the HDF5 library crashed reading it (signal %d): corrupt file", what,
                      WTERMSIG(ws));
  return qcal_error(QCAL_EFORMAT,
                    "%s: the HDF5 library failed reading it (exit %d, out of memory?): corrupt "
                    "file",
                    what, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
}
