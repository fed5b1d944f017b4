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
//   node crops_tfjs.js --hand HANDDETECT.json OUT_DIR PHOTO.npy ...
// The hand crops handskeleton reads (see hands below): per photo a list of
// {score, box, angle}, OUT_DIR/<k>_<j>.npy each.
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

// The anchor centres of a size-pixel palm detector, normalized: strides 8,
// 16 and 32 with 2, 2 and 6 anchors per cell (the order of the library's
// handposeanchors.ts table).
function handAnchors(size) {
  const a = [];
  for (const [stride, per] of [[8, 2], [16, 2], [32, 6]]) {
    const grid = size / stride;
    for (let gy = 0; gy < grid; gy++)
      for (let gx = 0; gx < grid; gx++)
        for (let n = 0; n < per; n++) a.push([(gx + 0.5) / grid, (gy + 0.5) / grid]);
  }
  return a;
}

// src/hand/handposedetector.ts predict and handposepipeline.ts
// estimateHands (rotation on, fresh boxes): resizeBilinear / 127.5 - 1,
// boxes and palm landmarks about the anchors, sigmoid scores,
// nonMaxSuppression (6 = 3 x maxDetected 2, IoU 0.2, score 0.5), scaled to
// the photo; the angle of palm landmarks 0 -> 2; tf.image.rotateWithOffset
// about the box centre; the palm landmarks turned by -angle about it, their
// box made square and enlarged 5x; cropAndResize to 256 x 256.
async function hands(modelPath, outDir, photos) {
  const model = await loadModel(tf, modelPath);
  const size = model.inputs[0].shape[2];
  const anc = handAnchors(size);
  const inSize = tf.tensor1d([size, size]), twice = tf.tensor1d([2 * size, 2 * size]);
  const result = [];
  for (const [k, file] of photos.entries()) {
    const x = readNpy(file);
    const img = tf.tensor(x.data, [1, ...x.shape], 'float32');
    const h = x.shape[0], w = x.shape[1], fx = w / size, fy = h / size;
    const input = tf.sub(tf.div(tf.image.resizeBilinear(img, [size, size]), 127.5), 1);
    const pred = tf.squeeze(model.execute(input));
    const scores = tf.squeeze(tf.sigmoid(tf.slice(pred, [0, 0], [-1, 1])));
    const centre = tf.add(tf.div(tf.slice(pred, [0, 1], [-1, 2]), inSize), tf.tensor2d(anc));
    const half = tf.div(tf.slice(pred, [0, 3], [-1, 2]), twice);
    const norm = tf.concat2d([tf.mul(tf.sub(centre, half), inSize),
      tf.mul(tf.add(centre, half), inSize)], 1);
    const keep = await tf.image.nonMaxSuppressionAsync(norm, scores, 6, 0.2, 0.5).then(t => t.array());
    const sc = await scores.data();
    const found = [];
    for (const [j, i] of keep.entries()) {
      const b = await tf.slice(norm, [i, 0], [1, -1]).data();
      const raw = tf.reshape(tf.slice(pred, [i, 5], [1, 14]), [-1, 2]);
      const palm = (await tf.mul(tf.add(tf.div(raw, inSize), anc[i]), inSize).array())
        .map(p => [p[0] * fx, p[1] * fy]);
      const r = Math.PI / 2 - Math.atan2(-(palm[2][1] - palm[0][1]), palm[2][0] - palm[0][0]);
      const angle = r - 2 * Math.PI * Math.floor((r + Math.PI) / (2 * Math.PI));
      const c = [(b[0] + b[2]) * fx / 2, (b[1] + b[3]) * fy / 2];
      const turned = tf.image.rotateWithOffset(img, angle, 0, [c[0] / w, c[1] / h]);
      const cs = Math.cos(-angle), sn = Math.sin(-angle);
      const q = palm.map(p => [cs * (p[0] - c[0]) - sn * (p[1] - c[1]) + c[0],
        sn * (p[0] - c[0]) + cs * (p[1] - c[1]) + c[1]]);
      const xs = q.map(p => p[0]), ys = q.map(p => p[1]);
      const mx = (Math.min(...xs) + Math.max(...xs)) / 2, my = (Math.min(...ys) + Math.max(...ys)) / 2;
      const hs = 5 * Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys)) / 2;
      const box = [mx - hs, my - hs, mx + hs, my + hs];
      const crop = tf.image.cropAndResize(turned, [[box[1] / h, box[0] / w, box[3] / h, box[2] / w]],
        [0], [256, 256]);
      writeNpy(path.join(outDir, `${k}_${j}.npy`), [256, 256, 3], crop.dataSync());
      found.push({ score: sc[i], box, angle });
    }
    result.push(found);
  }
  console.log(JSON.stringify(result));
}

async function main() {
  let [modelPath, outDir, ...photos] = process.argv.slice(2);
  await tf.setBackend('cpu');
  if (modelPath === '--body') return body(outDir, photos);
  if (modelPath === '--hand') return hands(outDir, photos[0], photos.slice(1));
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
