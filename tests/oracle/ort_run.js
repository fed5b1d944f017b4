// ONNX Runtime (npm onnxruntime-node, CPU) as a test oracle and latency peer:
//   node ort_run.js MODEL.onnx INPUT.npy OUT_PREFIX THREADS REPEAT [OPT]
// Feeds the float32 .npy to the model's single input, writes each output to
// OUT_PREFIX<i>.npy (float32), prints one JSON line with the output names and
// latency_ms (median of REPEAT runs after one warm-up). OPT: all|disabled.
// QCAL_ORT_OPTIMIZED=FILE also saves the graph ONNX Runtime runs (after its
// optimizations), to see which nodes it turned into integer kernels.
const path = require('path');
const { readNpy, writeNpy } = require('./npy.js');
const ort = require(path.join(process.env.QCAL_PEERS, 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, input, prefix, threads, repeat, opt] = process.argv.slice(2);
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: opt || 'all',
    ...(process.env.QCAL_ORT_OPTIMIZED ? { optimizedModelFilePath: process.env.QCAL_ORT_OPTIMIZED } : {}),
  });
  const x = readNpy(input);
  const feeds = { [sess.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) };
  let out = await sess.run(feeds); // warm-up
  const times = [];
  for (let i = 0; i < Number(repeat); i++) {
    const t0 = process.hrtime.bigint();
    out = await sess.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const med = times.length % 2 ? times[(times.length - 1) / 2]
    : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
  sess.outputNames.forEach((n, i) => writeNpy(`${prefix}${i}.npy`, out[n].dims, out[n].data));
  console.log(JSON.stringify({ outputs: sess.outputNames, latency_ms: med, version: ort.env.versions }));
}
main().catch(e => { console.error('ort_run: ' + e.message); process.exit(2); });
