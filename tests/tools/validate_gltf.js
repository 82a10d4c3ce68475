// Validate a glTF / GLB file with the Khronos glTF validator and print its report as JSON.
// Usage: NODE_PATH="$(npm root -g)" node validate_gltf.js FILE
// Exit codes: 0 report printed, 2 usage or read error, 3 the validator itself failed.
"use strict";
const fs = require("fs");
const path = require("path");

const file = process.argv[2];
if (!file) {
  console.error("usage: node validate_gltf.js FILE");
  process.exit(2);
}
let validator;
try {
  validator = require("gltf-validator");
} catch (e) {
  console.error("gltf-validator is not installed (npm install -g gltf-validator): " + e.message);
  process.exit(2);
}
let bytes;
try {
  bytes = new Uint8Array(fs.readFileSync(file));
} catch (e) {
  console.error("cannot read " + file + ": " + e.message);
  process.exit(2);
}
validator
  .validateBytes(bytes, { uri: path.basename(file), maxIssues: 100, writeTimestamp: false })
  .then((report) => {
    process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  })
  .catch((error) => {
    console.error("validation failed: " + error);
    process.exit(3);
  });
