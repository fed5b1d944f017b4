// TensorFlow.js (npm @tensorflow/tfjs, CPU backend) as a test oracle:
//   node tfjs_run.js MODEL.json INPUT.npy OUT_DIR [MORE.npy ...]
// Loads the graph model from its files (tfjs_model.js), runs it on the float32 .npy, and
// writes each output as OUT_DIR/<i>.npy (for the k-th further input,
// OUT_DIR/<k>_<i>.npy); prints one JSON line with the output names (without
// ":0").
const path = require('path');
const { readNpy, writeNpy } = require('./npy.js');
const { loadModel } = require('./tfjs_model.js');
const tf = require(path.join(process.env.QCAL_PEERS, 'node_modules', '@tensorflow', 'tfjs'));

async function main() {
  const [modelPath, input, outDir, ...more] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const model = await loadModel(tf, modelPath);
  const names = model.outputs.map(o => o.name);
  for (const [k, file] of [input, ...more].entries()) {
    const x = readNpy(file);
    const t = tf.tensor(x.data, x.shape, 'float32');
    let outs = await model.executeAsync({ [model.inputs[0].name]: t }, names);
    if (!Array.isArray(outs)) outs = [outs];
    const pre = k ? `${k}_` : '';
    outs.forEach((o, i) => writeNpy(path.join(outDir, `${pre}${i}.npy`), o.shape, o.dataSync()));
  }
  console.log(JSON.stringify({ outputs: names.map(n => n.replace(/:0$/, '')), version: tf.version.tfjs }));
}
main().catch(e => { console.error('tfjs_run: ' + e.message); process.exit(2); });
