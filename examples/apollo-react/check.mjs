// CI's check of the page, in Debian's Chromium (driven by playwright-core): serves
// dist/ on PAGE_PORT (the gateway must allow that origin: --cors-origins), opens the
// page for a domain, and reads what a person would see: the state at load, then
// the live state moving to SUCCEEDED with every change listed in order. Any first
// state is accepted (the demo may be anywhere in its run); the end must come
// within DEADLINE_SECONDS. On a failure a screenshot goes to $ARTEFACTS.
// Usage: PAGE_PORT=8000 GATEWAY_URL=… node check.mjs [domain]   (after build.mjs)
import { createReadStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join } from "node:path";
import { chromium } from "playwright-core";

const dist = join(import.meta.dirname, "dist");
const port = Number(process.env.PAGE_PORT ?? 8000);
const domain = process.argv[2] ?? "demo-succeeds.com";
const deadline = Number(process.env.DEADLINE_SECONDS ?? 90) * 1000;
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json" };

// The built page, as any static file server would serve it.
const server = createServer((request, response) => {
  const path = new URL(request.url, "http://page").pathname;
  const file = path === "/" ? "index.html" : path.slice(1);
  if (!/^[\w.-]+$/.test(file) || !TYPES[extname(file)]) return response.writeHead(404).end();
  createReadStream(join(dist, file))
    .on("error", () => response.writeHead(404).end())
    .once("open", () => response.writeHead(200, { "content-type": TYPES[extname(file)] }))
    .pipe(response);
});
await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = await browser.newPage();
const problems = [];
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("console", (message) => message.type() === "error" && problems.push(`console: ${message.text()}`));
page.on("response", (response) => response.status() >= 400 && problems.push(`${response.status()} ${response.url()}`));

const address = new URL(`http://127.0.0.1:${port}/`);
address.searchParams.set("gateway", process.env.GATEWAY_URL ?? "http://127.0.0.1:8080");
address.searchParams.set("domain", domain);
if (process.env.ACCOUNT_ID) address.searchParams.set("accountId", process.env.ACCOUNT_ID);

let failure;
try {
  await page.goto(address.href);
  const atLoad = await page.getByTestId("query").textContent({ timeout: 15_000 });
  const first = /was (PENDING|IN_PROGRESS|SUCCEEDED) at load/.exec(atLoad)?.[1];
  if (!first) throw new Error(`the state at load reads "${atLoad}"`);
  console.log(`page: at load ${first}`);

  // Waits for the live state to read SUCCEEDED and the page to say the workflow ended.
  await page.getByTestId("ended").waitFor({ timeout: deadline });
  const now = await page.getByTestId("state").textContent();
  const changes = await page.getByTestId("changes").locator("li").allTextContents();
  console.log(`page: ${changes.join(", ")}`);
  if (now !== "SUCCEEDED") throw new Error(`the workflow ended ${now}`);
  const states = changes.map((line) => line.split(" ")[1]);
  const sequences = changes.map((line) => Number(/^#(\d+)/.exec(line)?.[1]));
  if (states.at(-1) !== "SUCCEEDED") throw new Error(`the last change listed is ${states.at(-1)}`);
  if (sequences.some((sequence, i) => i > 0 && sequence !== sequences[i - 1] + 1)) {
    throw new Error(`changes out of order or missing: ${sequences}`);
  }
  // A demo seen before its end must have been seen moving, one state after another.
  if (first !== "SUCCEEDED" && !states.includes("IN_PROGRESS")) {
    throw new Error(`started ${first} but never showed IN_PROGRESS`);
  }
  if (problems.length) throw new Error(problems.join("; "));
  console.log(`apollo-react (Chromium): ${domain} shown from ${first} to SUCCEEDED`);
} catch (error) {
  failure = error;
  const artefacts = process.env.ARTEFACTS ?? join(import.meta.dirname, "artefacts");
  await mkdir(artefacts, { recursive: true });
  const path = join(artefacts, "apollo-react.png");
  await page.screenshot({ path, fullPage: true }).catch(() => {});
  console.log(`FAIL apollo-react (Chromium): ${error.message}${problems.length ? ` (${problems.join("; ")})` : ""}; screenshot: ${path}`);
} finally {
  await browser.close();
  server.close();
}
process.exit(failure ? 1 : 0);
