// A TF.js graph model loaded from its files through an IO handler
// (model.json and the weight files its manifest names), for the oracles
// tfjs_run.js and crops_tfjs.js.
const fs = require('fs');
const path = require('path');

async function loadModel(tf, modelPath) {
  const dir = path.dirname(modelPath);
  const json = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  const specs = [], parts = [];
  for (const g of json.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) parts.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(parts);
  return tf.loadGraphModel({ load: async () => ({
    modelTopology: json.modelTopology, format: json.format, generatedBy: json.generatedBy,
    convertedBy: json.convertedBy, signature: json.signature,
    userDefinedMetadata: json.userDefinedMetadata, weightSpecs: specs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.length) }) });
}

module.exports = { loadModel };
