// nsfwjs's MobileNetV2 run as nsfwjs 4.4.0 runs it, on TensorFlow.js's pure-JS CPU backend:
// the reference the ONNX conversion (modstream.models.weights.nsfwjs) is checked against.
//
// usage: node predict.mjs MODEL_JS WEIGHTS_JS PIXELS
//   MODEL_JS, WEIGHTS_JS: model.min.js and group1-shard1of1.min.js from the nsfwjs tarball
//   PIXELS: raw float32 little-endian, NHWC [n, 224, 224, 3], RGB 0-1 (nsfwjs divides by 255
//           before calling the model; its resize is left to the caller)
// prints {"backend": "cpu", "scores": [[drawing, hentai, neutral, porn, sexy], ...]}
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";

const SIZE = 224;

// The package's models are browserify bundles (UMD); nsfwjs require()s them as CommonJS.
function bundled(path) {
  const module = { exports: {} };
  new Function("module", "exports", readFileSync(path, "utf8"))(module, module.exports);
  return module.exports;
}

function exactBuffer(bytes) {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

// What nsfwjs's JSONHandler hands to tf.loadLayersModel: the topology, every group's weight
// specs in order, and the shards' base64 decoded and concatenated (one shard here).
async function loadModel(modelPath, weightsPath) {
  const modelJson = bundled(modelPath);
  const weightData = Buffer.from(bundled(weightsPath), "base64");
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest.flatMap((group) => group.weights),
      weightData: exactBuffer(weightData),
    }),
  );
}

const [modelPath, weightsPath, pixelsPath] = process.argv.slice(2);
if (!pixelsPath) {
  console.error("usage: node predict.mjs MODEL_JS WEIGHTS_JS PIXELS");
  process.exit(2);
}
await tf.setBackend("cpu");
const model = await loadModel(modelPath, weightsPath);
const pixels = new Float32Array(exactBuffer(readFileSync(pixelsPath)));
const count = pixels.length / (SIZE * SIZE * 3);
if (!Number.isInteger(count)) {
  console.error(`${pixelsPath}: ${pixels.length} floats is not a whole number of 224x224x3 images`);
  process.exit(2);
}
const scores = tf.tidy(() => model.predict(tf.tensor4d(pixels, [count, SIZE, SIZE, 3])));
console.log(JSON.stringify({ backend: tf.getBackend(), scores: await scores.array() }));
