// ONNX Runtime (npm onnxruntime-node, CPU) as a test oracle and latency peer:
//   node ort_run.js MODEL.onnx INPUT.npy OUT_PREFIX THREADS REPEAT [OPT]
// Feeds the float32 .npy to the model's single input, writes each output to
// OUT_PREFIX<i>.npy (float32), prints one JSON line with the output names and
// latency_ms (median of REPEAT runs after one warm-up). OPT: all|disabled.
const fs = require('fs');
const path = require('path');
const ort = require(path.join(process.env.QCAL_PEERS, 'node_modules', 'onnxruntime-node'));

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(file + ': not .npy');
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const off = (major === 1 ? 10 : 12) + hlen;
  const hdr = b.toString('latin1', major === 1 ? 10 : 12, off);
  if (!/'descr': '<f4'/.test(hdr)) throw new Error(file + ': not float32');
  const shape = hdr.match(/'shape': \(([^)]*)\)/)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const data = new Float32Array(b.buffer.slice(b.byteOffset + off, b.byteOffset + b.length));
  return { shape, data };
}

function writeNpy(file, shape, data) {
  const sh = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${sh}), }`;
  const total = 10 + dict.length + 1;
  dict += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0; head.writeUInt16LE(dict.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(dict, 'latin1'),
    Buffer.from(new Float32Array(data).buffer)]));
}

async function main() {
  const [model, input, prefix, threads, repeat, opt] = process.argv.slice(2);
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: opt || 'all',
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
