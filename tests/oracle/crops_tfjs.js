// The face crops of npm @vladmandic/human 3.0.7 (src/face/blazeface.ts
// getBoxes, facemeshutil.ts) computed with TensorFlow.js's own ops, as the
// oracle of `qcal crops` (check_crops.py):
//   node crops_tfjs.js BLAZEFACE.json OUT_DIR PHOTO.npy ...
// Each PHOTO.npy is [H, W, 3] float32 pixels 0..255. For each: resizeBilinear
// to the model's input, / 127.5 - 0.5, the model, its outputs joined as the
// library joins them, boxes from the anchors, sigmoid scores,
// nonMaxSuppression (1 box, IoU 0.1, score 0.5), scaled to the photo,
// enlarged 1.4x, squared and rounded, then cropAndResize to 256 x 256.
// Writes OUT_DIR/<k>.npy (the crop, [256, 256, 3]) and prints one JSON line:
// per photo null or {score, box: [x1, y1, x2, y2]}.
//   node crops_tfjs.js --body OUT_DIR PHOTO.npy ...
// BlazePose's input without its detector (src/body/blazepose.ts
// prepareImage): tf.pad to a square (trunc of half the difference on each
// side), tf.image.resizeBilinear to 256 x 256; OUT_DIR/<k>.npy each.
//   node crops_tfjs.js --eye FACEMESH.json BLAZEFACE.json OUT_DIR PHOTO.npy ...
// The eye crops iris reads (see eyes below), per photo {score, box, eyes}.
const path = require('path');
const { readNpy, writeNpy } = require('./npy.js');
const { loadModel } = require('./tfjs_model.js');
const tf = require(path.join(process.env.QCAL_PEERS, 'node_modules', '@tensorflow', 'tfjs'));

function anchors(size) {
  const spec = { strides: [size / 16, size / 8], anchors: [2, 6] };
  const a = [];
  for (let i = 0; i < 2; i++) {
    const stride = spec.strides[i], grid = Math.floor((size + stride - 1) / stride);
    for (let gy = 0; gy < grid; gy++)
      for (let gx = 0; gx < grid; gx++)
        for (let n = 0; n < spec.anchors[i]; n++) a.push([stride * (gx + 0.5), stride * (gy + 0.5)]);
  }
  return a;
}

function body(outDir, photos) {
  for (const [k, file] of photos.entries()) {
    const x = readNpy(file);
    const img = tf.tensor(x.data, [1, ...x.shape], 'float32');
    const h = x.shape[0], w = x.shape[1];
    const ph = w > h ? Math.trunc((w - h) / 2) : 0, pw = h > w ? Math.trunc((h - w) / 2) : 0;
    const padded = tf.pad(img, [[0, 0], [ph, ph], [pw, pw], [0, 0]]);
    const out = tf.image.resizeBilinear(padded, [256, 256]);
    writeNpy(path.join(outDir, `${k}.npy`), [256, 256, 3], out.dataSync());
  }
  console.log(JSON.stringify(photos.length));
}

// The eye crops of iris.ts getEyeBox from the face cut to 192 x 192 / 255:
// FaceMesh's landmarks, corners 33, 133 (right) and 263, 362 (left), box
// enlarged 2.3, squarifyBox, cropAndResize to 64 x 64, flipLeftRight. Writes
// OUT_DIR/<k>r.npy and <k>l.npy (x 255) and returns the boxes (192 px).
async function eyes(mesh, img, cut, outDir, k) {
  const face = tf.div(tf.image.cropAndResize(img, [cut], [0], [192, 192]), 255);
  let res = mesh.execute(face);
  res = Array.isArray(res) ? res : [res];
  const m = res.find((t) => t.shape[t.shape.length - 1] === 1404);
  const coords = await tf.reshape(m, [-1, 3]).array();
  const boxes = [];
  for (const [e, [i, j]] of [[33, 133], [263, 362]].entries()) {
    const a = coords[i], b = coords[j];
    const x0 = Math.min(a[0], b[0]), x1 = Math.max(a[0], b[0]);
    const y0 = Math.min(a[1], b[1]), y1 = Math.max(a[1], b[1]);
    const c = [x0 + (x1 - x0) / 2, y0 + (y1 - y0) / 2];
    const half = Math.max(2.3 * (x1 - x0) / 2, 2.3 * (y1 - y0) / 2);
    const box = [Math.round(c[0] - half), Math.round(c[1] - half), Math.round(c[0] + half), Math.round(c[1] + half)];
    const crop = tf.image.cropAndResize(face, [[box[1] / 192, box[0] / 192, box[3] / 192, box[2] / 192]], [0], [64, 64]);
    const flipped = tf.mul(tf.image.flipLeftRight(crop), 255);
    writeNpy(path.join(outDir, `${k}${e ? 'l' : 'r'}.npy`), [64, 64, 3], flipped.dataSync());
    boxes.push(box);
  }
  return boxes;
}

async function main() {
  let [modelPath, outDir, ...photos] = process.argv.slice(2);
  await tf.setBackend('cpu');
  if (modelPath === '--body') return body(outDir, photos);
  let mesh = null;
  if (modelPath === '--eye') {
    mesh = await loadModel(tf, outDir);
    [modelPath, outDir, ...photos] = photos;
  }
  const model = await loadModel(tf, modelPath);
  const size = model.inputs[0].shape[2];
  const anc = tf.tensor2d(anchors(size));
  const result = [];
  for (const [k, file] of photos.entries()) {
    const x = readNpy(file);
    const img = tf.tensor(x.data, [1, ...x.shape], 'float32');
    const input = tf.sub(tf.div(tf.image.resizeBilinear(img, [size, size]), 127.5), 0.5);
    let res = model.execute(input);
    let batch;
    if (Array.isArray(res) && res.length > 2) {
      const s = res.slice().sort((a, b) => a.size - b.size);
      const c384 = tf.concat([s[0], s[2]], 2), c512 = tf.concat([s[1], s[3]], 2);
      batch = tf.squeeze(tf.concat([c512, c384], 1), [0]);
    } else batch = tf.squeeze(Array.isArray(res) ? res[0] : res);
    const centers = tf.add(tf.slice(batch, [0, 1], [-1, 2]), anc);
    const half = tf.div(tf.slice(batch, [0, 3], [-1, 2]), 2);
    const boxes = tf.concat2d([tf.sub(centers, half), tf.add(centers, half)], 1);
    const scores = tf.squeeze(tf.sigmoid(tf.slice(batch, [0, 0], [-1, 1])));
    const keep = await tf.image.nonMaxSuppressionAsync(boxes, scores, 1, 0.1, 0.5).then(t => t.array());
    if (!keep.length) { result.push(null); continue; }
    const b = (await tf.slice(boxes, [keep[0], 0], [1, -1]).data());
    const score = (await scores.data())[keep[0]];
    const h = x.shape[0], w = x.shape[1], fx = w / size, fy = h / size;
    const sx = [b[0] * fx, b[1] * fy], ex = [b[2] * fx, b[3] * fy];
    const c = [sx[0] + (ex[0] - sx[0]) / 2, sx[1] + (ex[1] - sx[1]) / 2];
    const sz = [Math.abs(ex[0] - sx[0]) * 1.4, Math.abs(ex[1] - sx[1]) * 1.4];
    const hs = Math.max(...sz) / 2;
    const box = [Math.round(c[0] - hs), Math.round(c[1] - hs), Math.round(c[0] + hs), Math.round(c[1] + hs)];
    const cut = [box[1] / h, box[0] / w, box[3] / h, box[2] / w];
    if (mesh) {
      result.push({ score, box, eyes: await eyes(mesh, img, cut, outDir, k) });
      continue;
    }
    const crop = tf.image.cropAndResize(img, [cut], [0], [256, 256]);
    writeNpy(path.join(outDir, `${k}.npy`), [256, 256, 3], crop.dataSync());
    result.push({ score, box });
  }
  console.log(JSON.stringify(result));
}
main().catch(e => { console.error('crops_tfjs: ' + e.message); process.exit(2); });
