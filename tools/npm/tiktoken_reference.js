#!/usr/bin/env node
// Drives npm's tiktoken (OpenAI's tokenizer compiled to WebAssembly) as the reference for our
// tokenizer:
//   tiktoken_reference.js ranks ENCODING            rank file in tiktoken format on stdout
//   tiktoken_reference.js encode ENCODING FILE...   one JSON array of ids per file, per line
//   tiktoken_reference.js bench ENCODING FILE SECONDS
//                                                   encode FILE repeatedly, print MB/s
// Files are read as UTF-8 the way Node reads text: ill-formed bytes become U+FFFD.
"use strict";
const fs = require("fs");
const path = require("path");

const modules = path.join(__dirname, "node_modules");
const tiktoken = require(path.join(modules, "tiktoken"));
const [mode, encoding, ...args] = process.argv.slice(2);

function rankFile(name) {
  // The package stores ranks as lines "marker first-rank token token ...", tokens in base64
  // with consecutive ranks.
  const data = require(path.join(modules, "tiktoken", "encoders", `${name}.json`));
  const out = [];
  for (const line of data.bpe_ranks.split("\n")) {
    if (!line) continue;
    const [, first, ...tokens] = line.split(" ");
    tokens.forEach((token, i) => out.push(`${token} ${Number(first) + i}`));
  }
  return out.join("\n") + "\n";
}

const encoder = mode === "ranks" ? null : tiktoken.get_encoding(encoding);
if (mode === "ranks") {
  process.stdout.write(rankFile(encoding));
} else if (mode === "encode") {
  for (const file of args) {
    const text = fs.readFileSync(file).toString("utf8");
    process.stdout.write(JSON.stringify(Array.from(encoder.encode_ordinary(text))) + "\n");
  }
} else if (mode === "bench") {
  const text = fs.readFileSync(args[0]).toString("utf8");
  const bytes = Buffer.byteLength(text, "utf8");
  const seconds = Number(args[1] || 5);
  let runs = 0, tokens = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds) {
    tokens = encoder.encode_ordinary(text).length;
    runs++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  const mbps = (bytes * runs) / elapsed / 1e6;
  console.log(JSON.stringify({bytes, tokens, runs, seconds: elapsed, mb_per_s: mbps}));
} else {
  console.error("usage: tiktoken_reference.js ranks|encode|bench ENCODING ...");
  process.exit(2);
}
if (encoder) encoder.free();
