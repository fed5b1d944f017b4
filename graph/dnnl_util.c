/* One oneDNN engine and stream for the process (created once). */
#include <pthread.h>

#include "graph/dnnl_util.h"

static dnnl_engine_t g_eng;
static dnnl_stream_t g_strm;
static dnnl_status_t g_rc = dnnl_success;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init(void) {
  g_rc = dnnl_engine_create(&g_eng, dnnl_cpu, 0);
  if (g_rc == dnnl_success)
    g_rc = dnnl_stream_create(&g_strm, g_eng, dnnl_stream_default_flags);
}

qcal_status qcal_dnnl_get(dnnl_engine_t *eng, dnnl_stream_t *strm) {
  pthread_once(&g_once, init);
  if (g_rc != dnnl_success)
    return qcal_error(QCAL_EUNSUPPORTED, "oneDNN: cannot create the CPU engine (status %d)",
                      (int)g_rc);
  *eng = g_eng;
  if (strm)
    *strm = g_strm;
  return QCAL_OK;
}

qcal_status qcal_dnnl_exec(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
  qcal_status st = QCAL_OK;
  dnnl_engine_t eng;
  dnnl_stream_t strm;
  QCAL_TRY(qcal_dnnl_get(&eng, &strm));
  QCAL_DNNL(dnnl_primitive_execute(p, strm, nargs, args));
  QCAL_DNNL(dnnl_stream_wait(strm));
done:
  return st;
}

qcal_status qcal_dnnl_mem(const dnnl_memory_desc_t *md, void *ptr, dnnl_memory_t *out) {
  qcal_status st = QCAL_OK;
  dnnl_engine_t eng;
  QCAL_TRY(qcal_dnnl_get(&eng, NULL));
  QCAL_DNNL(dnnl_memory_create(out, md, eng, ptr ? ptr : DNNL_MEMORY_NONE));
done:
  return st;
}

qcal_status qcal_dnnl_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                              dnnl_primitive_t *out) {
  qcal_status st = QCAL_OK;
  dnnl_primitive_desc_t pd = NULL;
  *out = NULL;
  if (dnnl_memory_desc_equal(from, to))
    return QCAL_OK;
  dnnl_engine_t eng;
  QCAL_TRY(qcal_dnnl_get(&eng, NULL));
  QCAL_DNNL(dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, NULL));
  QCAL_DNNL(dnnl_primitive_create(out, pd));
done:
  if (pd)
    dnnl_primitive_desc_destroy(pd);
  return st;
}
