// Builds the page into dist/ with esbuild (one bundle, minified), or serves it with
// rebuilds on change: `node build.mjs --serve` (http://127.0.0.1:8000/; start the
// gateway with GATEWAY_CORS_ORIGINS=http://127.0.0.1:8000 so the browser may call it).
// Run `npm run codegen` first (from examples/): the page imports its typed documents.
import * as esbuild from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";

const here = new URL(".", import.meta.url).pathname;
const dist = `${here}dist`;
await mkdir(dist, { recursive: true });
await copyFile(`${here}index.html`, `${dist}/index.html`);
const options = {
  entryPoints: [`${here}src/main.tsx`],
  outfile: `${dist}/main.js`,
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: true,
  target: "es2022",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
};
if (process.argv.includes("--serve")) {
  const context = await esbuild.context({ ...options, minify: false, define: { "process.env.NODE_ENV": '"development"' } });
  await context.watch();
  const { hosts, port } = await context.serve({ servedir: dist, host: "127.0.0.1", port: 8000 });
  console.log(`serving http://${hosts[0]}:${port}/`);
} else {
  await esbuild.build(options);
}
