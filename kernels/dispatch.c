/* Capability detection and the dispatched kernel table (XNNPACK/BLIS style:
 * start from the reference kernels, override with what the CPU supports). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/kernels.h"

const qcal_kernel_entry qcal_kernel_list[] = {
#define QCAL_KERNEL(family, isa, features)                                                         \
  {#family, #isa, (features), (void (*)(void))qcal_##family##__##isa},
#include "kernels/kernels.inc"
#undef QCAL_KERNEL
};
const size_t qcal_kernel_count = sizeof(qcal_kernel_list) / sizeof(qcal_kernel_list[0]);

static unsigned detect_features(void) {
  unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    f |= QCAL_ISA_AVX2;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    f |= QCAL_ISA_AVX512;
  if ((f & QCAL_ISA_AVX512) && __builtin_cpu_supports("avx512vnni"))
    f |= QCAL_ISA_VNNI;
  if ((f & QCAL_ISA_AVX512) && __builtin_cpu_supports("avx512bf16"))
    f |= QCAL_ISA_BF16;
#endif
  return f;
}

static unsigned g_features, g_enabled;
static qcal_kernel_table g_table;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static unsigned apply_override(unsigned f) {
  const char *arch = getenv("QCAL_ARCH");
  if (!arch || !*arch || !strcmp(arch, "native"))
    return f;
  if (!strcmp(arch, "ref"))
    return 0;
  if (!strcmp(arch, "avx2"))
    return f & QCAL_ISA_AVX2;
  return f; /* avx512 or unknown: everything the CPU has */
}

static void init_once(void) {
  g_features = detect_features();
  g_enabled = apply_override(g_features);
  g_table.isa = "ref";
  for (size_t i = 0; i < qcal_kernel_count; i++) {
    const qcal_kernel_entry *e = &qcal_kernel_list[i];
    if ((e->features & g_enabled) != e->features)
      continue;
#define SET(fam)                                                                                   \
  if (!strcmp(e->family, #fam))                                                                    \
    g_table.fam = (qcal_##fam##_fn *)e->fn;
    SET(f32_q8_quantize)
    SET(s8_f32_dequantize)
    SET(u8_f32_dequantize)
    SET(f32_f32_fakequant)
    SET(f32_absmax)
    SET(f32_histogram)
    SET(f32_hist_sse)
    SET(f64_kl_groups)
    SET(f32_copy)
    SET(f32_triad)
    SET(s32_s8_requantize)
    SET(f32_relu)
    SET(s8_relu)
    SET(f32_add)
    SET(s8_add)
    SET(f32_q8_quantize_div)
    SET(f32_q8_quantize_div_planes)
    SET(s8_s8_add_requant)
    SET(q8_s8_rescale)
#undef SET
  }
  if (g_enabled & QCAL_ISA_AVX512)
    g_table.isa = "avx512";
  else if (g_enabled & QCAL_ISA_AVX2)
    g_table.isa = "avx2";
}

unsigned qcal_cpu_features(void) {
  pthread_once(&g_once, init_once);
  return g_features;
}

unsigned qcal_isa_enabled(void) {
  pthread_once(&g_once, init_once);
  return g_enabled;
}

const qcal_kernel_table *qcal_kernels(void) {
  pthread_once(&g_once, init_once);
  return &g_table;
}
