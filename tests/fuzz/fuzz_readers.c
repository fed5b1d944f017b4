/* libFuzzer target for the file readers: the first byte picks .npy (parsed
 * from memory), safetensors, .npz or TF.js JSON (written to a temporary file
 * and read through the public API). Any crash, leak or UB is a bug; errors
 * are the expected outcome for most inputs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcal/datasets.h"
#include "qcal/model.h"

static qcal_status drop(void *ctx, qcal_tensor *t) {
  (void)ctx;
  qcal_tensor_free(t);
  return QCAL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const int kind = data[0] % 4;
  data++, size--;
  if (kind == 0) {
    qcal_tensor t;
    if (qcal_npy_parse("fuzz.npy", data, size, &t) == QCAL_OK)
      qcal_tensor_free(&t);
    return 0;
  }
  static const char *const ext[] = {"", ".safetensors", ".npz", ".json"};
  char dir[] = "/tmp/qcal_fuzz_XXXXXX";
  if (!mkdtemp(dir))
    return 0;
  char path[64], bin[64];
  snprintf(path, sizeof path, "%s/f%s", dir, ext[kind]);
  snprintf(bin, sizeof bin, "%s/w.bin", dir);
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(data, 1, size, f);
    fclose(f);
  }
  if (kind == 3) { /* a small weights file for manifests that name w.bin */
    f = fopen(bin, "wb");
    float w[64] = {0};
    if (f) {
      fwrite(w, sizeof w, 1, f);
      fclose(f);
    }
    qcal_model m;
    if (qcal_tfjs_load(path, &m) == QCAL_OK)
      qcal_model_free(&m);
  } else {
    qcal_load_tensors(path, drop, NULL);
  }
  unlink(path);
  unlink(bin);
  rmdir(dir);
  return 0;
}
