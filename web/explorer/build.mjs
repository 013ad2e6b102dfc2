// Builds the explorer into dist/: content-hashed files, a precompressed .gz and
// .br copy of each, and manifest.json (the hash of every source input and of
// every output). dist/ is committed and embedded in the gateway binary, so
// `cargo build` never needs Node; a Rust test (tests/api/explorer.rs) fails when
// dist/ no longer matches manifest.json or the sources no longer match its hash.
//
// Usage: npm ci && node build.mjs   (from web/explorer/)
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const here = import.meta.dirname;
const dist = join(here, "dist");
const work = join(here, "node_modules", ".explorer-build");
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

// The inputs whose change must rebuild dist/, in a fixed order; the Rust test
// hashes the same list the same way (path, NUL, contents, NUL for each).
const SOURCES = ["package.json", "package-lock.json", "build.mjs", "src/explorer.css", "src/favicon.svg", "src/main.jsx"];
const sourceHash = createHash("sha256");
for (const path of SOURCES) {
  sourceHash.update(`${path}\0`).update(readFileSync(join(here, path))).update("\0");
}

const common = { bundle: true, minify: true, legalComments: "none", logLevel: "warning", write: false };

// Monaco's workers: classic scripts, one file each, loaded by URL (CSP worker-src 'self').
const workerEntries = {
  "editor.worker": "monaco-editor/esm/vs/editor/editor.worker.js",
  "json.worker": "monaco-editor/esm/vs/language/json/json.worker.js",
  "graphql.worker": "monaco-graphql/esm/graphql.worker.js",
};
const outputs = new Map();
const workers = await esbuild.build({
  ...common,
  entryPoints: workerEntries,
  format: "iife",
  outdir: work,
  entryNames: "[name]-[hash]",
});
const workerFiles = {};
for (const file of workers.outputFiles) {
  const name = basename(file.path);
  outputs.set(name, file.contents);
  workerFiles[name.split(".worker-")[0]] = name;
}

// The app: one ES module, its stylesheet, and the codicon font it references.
const app = await esbuild.build({
  ...common,
  entryPoints: { explorer: join(here, "src/main.jsx") },
  format: "esm",
  jsx: "automatic",
  outdir: work,
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  loader: { ".ttf": "file", ".woff": "file", ".woff2": "file" },
  define: { __WORKERS__: JSON.stringify(workerFiles), "process.env.NODE_ENV": '"production"' },
});
for (const file of app.outputFiles) outputs.set(basename(file.path), file.contents);

// The favicon, hashed like the rest.
const favicon = readFileSync(join(here, "src/favicon.svg"));
outputs.set(`favicon-${sha256(favicon).slice(0, 8)}.svg`, favicon);

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
const files = {};
for (const [name, contents] of [...outputs].sort(([a], [b]) => a.localeCompare(b))) {
  const gzip = gzipSync(contents, { level: 9 });
  const brotli = brotliCompressSync(contents, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: contents.length },
  });
  writeFileSync(join(dist, name), contents);
  writeFileSync(join(dist, `${name}.gz`), gzip);
  writeFileSync(join(dist, `${name}.br`), brotli);
  for (const [file, bytes] of [[name, contents], [`${name}.gz`, gzip], [`${name}.br`, brotli]]) {
    files[file] = { sha256: sha256(bytes), bytes: bytes.length };
  }
}
const pick = (suffix) => [...outputs.keys()].find((name) => name.startsWith("explorer-") && name.endsWith(suffix));
const manifest = {
  sources: { files: SOURCES, sha256: sourceHash.digest("hex") },
  script: pick(".js"),
  style: pick(".css"),
  favicon: [...outputs.keys()].find((name) => name.startsWith("favicon-")),
  files,
};
writeFileSync(join(dist, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
rmSync(work, { recursive: true, force: true });
const total = (suffix) =>
  Object.entries(files).filter(([name]) => suffix(name)).reduce((sum, [, file]) => sum + file.bytes, 0);
console.log(
  `explorer: ${outputs.size} files, ${total((n) => !/\.(gz|br)$/.test(n))} bytes raw, ` +
    `${total((n) => n.endsWith(".gz"))} gzip, ${total((n) => n.endsWith(".br"))} brotli; dist/manifest.json written`,
);
