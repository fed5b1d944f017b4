/* The optimizer step: SGD with momentum (PyTorch's form: v = m v + g,
 * p -= lr v, weight decay added to g) or Adam with decoupled weight decay
 * (AdamW). One thread per parameter slice; element-wise, so the bits do not
 * depend on the thread count. */
#include <math.h>

#include "graph/train_internal.h"

void qcal_optim_step(qcal_train *t, qcal_optim *o, float lr) {
  o->step++;
  const float b1 = o->beta1, b2 = o->beta2;
  const float c1 = 1.0f - powf(b1, (float)o->step), c2 = 1.0f - powf(b2, (float)o->step);
  for (int k = 0; k < t->nparams; k++) {
    qcal_param *p = &t->params[k];
    if (p->frozen)
      continue;
    const float wd = p->decay ? o->weight_decay : 0.0f;
    float *w = p->data, *g = p->grad, *m = p->m, *v = p->v;
    const int64_t len = (int64_t)p->numel;
    if (o->kind == QCAL_OPTIM_SGD) {
#pragma omp parallel for schedule(static) if (len > 65536)
      for (int64_t i = 0; i < len; i++) {
        float gi = g[i] + wd * w[i];
        m[i] = o->momentum * m[i] + gi;
        w[i] -= lr * m[i];
      }
    } else {
#pragma omp parallel for schedule(static) if (len > 65536)
      for (int64_t i = 0; i < len; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        w[i] -= lr * ((m[i] / c1) / (sqrtf(v[i] / c2) + o->eps) + wd * w[i]);
      }
    }
    for (int64_t i = 0; p->positive && i < len; i++)
      w[i] = w[i] > 1e-6f ? w[i] : 1e-6f;
  }
}
