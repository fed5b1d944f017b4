// ONNX Runtime (npm onnxruntime-node, CPU, all graph optimizations, or the
// level QCAL_ORT_LEVEL names: disabled, basic, extended) on many inputs in
// one session: node ort_many.js MODEL.onnx OUT_PREFIX IN0.npy ...
// writes output i of input j to OUT_PREFIX<j>_<i>.npy (float32).
const path = require('path');
const { readNpy, writeNpy } = require('./npy.js');
const ort = require(path.join(process.env.QCAL_PEERS, 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, prefix, ...inputs] = process.argv.slice(2);
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 2, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: process.env.QCAL_ORT_LEVEL || 'all',
  });
  for (let j = 0; j < inputs.length; j++) {
    const x = readNpy(inputs[j]);
    const out = await sess.run({ [sess.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) });
    sess.outputNames.forEach((n, i) => writeNpy(`${prefix}${j}_${i}.npy`, out[n].dims, out[n].data));
  }
  console.log(JSON.stringify({ outputs: sess.outputNames }));
}
main().catch(e => { console.error('ort_many: ' + e.message); process.exit(2); });
