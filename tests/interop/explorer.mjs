// GraphiQL as a person meets it, in Debian's Chromium driven by playwright-core
// (no downloaded browser): the page renders offline, its documentation explorer
// lists the root types, a query and a subscription typed into the editor answer,
// the page breaks none of its Content-Security-Policy, and no request goes
// anywhere but the gateway's origin. On a failure a screenshot is saved in
// $ARTEFACTS (printed). EXPLORER_SCREENSHOT=path saves one with the docs open
// (docs/explorer.png is made so).
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, request as forward } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { Checks, advance, startWorkflow } from "./sim.mjs";

const gateway = new URL(process.env.GATEWAY_URL);
const artefacts = process.env.ARTEFACTS ?? join(import.meta.dirname, "artefacts");
const checks = new Checks("explorer (Chromium)");
const profile = mkdtempSync(join(tmpdir(), "explorer-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = context.pages()[0] ?? (await context.newPage());
const manifest = JSON.parse(readFileSync(new URL("../../web/explorer/dist/manifest.json", import.meta.url), "utf8"));

// Everything the page asks for, and everything it complains about.
const requests = [];
const problems = [];
const encodings = new Map();
page.on("request", (request) => requests.push(request.url()));
page.on("response", (response) => encodings.set(response.url(), response.headers()["content-encoding"]));
page.on("websocket", (socket) => requests.push(socket.url()));
// ERR_ABORTED is the page cancelling its own request (GraphiQL stops the running
// operation when it runs the next one), not a load that failed.
page.on("requestfailed", (request) => {
  const reason = request.failure()?.errorText;
  if (reason !== "net::ERR_ABORTED") problems.push(`request failed: ${request.url()} ${reason}`);
});
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("console", (message) => {
  if (message.type() === "error") problems.push(`console error: ${message.text()}`);
});

/** The text Monaco shows in an editor (its visible lines; spaces as U+00A0). */
const editorText = (selector) =>
  page.locator(`${selector} .monaco-editor .view-lines`).first().innerText().then((text) => text.replace(/\u00a0/g, " "));

/** Waits for the response pane to contain every one of `needles`. */
const responseShows = (needles, timeout = 15000) =>
  page.waitForFunction(
    (needles) => {
      const text = document.querySelector(".graphiql-response .monaco-editor .view-lines")?.innerText.replace(/\u00a0/g, " ") ?? "";
      return needles.every((needle) => text.includes(needle));
    },
    needles,
    { timeout },
  );

/**
 * Replaces the operation editor's document with `document` as typed text, then
 * runs it. GraphiQL re-reads the editor ~100 ms after an edit, so the run button
 * is pressed again until the answer shows (`needles`) rather than after a sleep.
 */
async function typeAndRun(document, needles) {
  await page.locator(".graphiql-query-editor .monaco-editor").first().click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("Delete");
  // insertText types the document as given (no auto-closed brackets).
  await page.keyboard.insertText(document);
  for (let attempt = 1; ; attempt += 1) {
    await page.locator(".graphiql-execute-button").click();
    try {
      await responseShows(needles, 3000);
      return;
    } catch (error) {
      if (attempt === 5) throw error;
    }
  }
}

async function screenshot(name) {
  mkdirSync(artefacts, { recursive: true });
  const path = join(artefacts, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

async function check(name, body) {
  const before = checks.failed;
  await checks.check(name, body);
  if (checks.failed > before) await screenshot(name.replace(/[^a-z0-9]+/gi, "-").toLowerCase());
}

await check("GraphiQL renders with its opening tabs", async () => {
  await page.goto(gateway.href, { waitUntil: "load" });
  await page.locator(".graphiql-execute-button").waitFor({ timeout: 30000 });
  const tabs = await page.locator(".graphiql-tab").count();
  if (tabs !== 3) throw new Error(`${tabs} tabs open`);
  const query = await editorText(".graphiql-query-editor");
  if (!query.includes("registrationStatus(domain: $domain)")) throw new Error(`first tab: ${query}`);
  const variables = await editorText(".graphiql-editor-tool");
  // This gateway has an upstream configured (the simulator), so the tabs name the
  // API documentation's example domain rather than the sandbox's demo domains.
  if (!variables.includes('"domain": "example.com"')) throw new Error(`variables: ${variables}`);
});

await check("the documentation explorer lists Query, Mutation and Subscription", async () => {
  await page.locator('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]').click();
  const explorer = page.locator(".graphiql-doc-explorer");
  await explorer.getByText("Root Types").waitFor({ timeout: 15000 });
  const text = (await explorer.innerText()).replace(/\s+/g, " ");
  // run.sh starts the gateway with --enable-registration: the Mutation root is served.
  for (const root of ["query: Query", "mutation: Mutation", "subscription: Subscription"]) {
    if (!text.includes(root)) throw new Error(`no "${root}" in: ${text.slice(0, 300)}`);
  }
});

await check("a query typed into the editor answers", () =>
  typeAndRun('{ registrationStatus(domain: "demo-failed.com") { domainName state completed } }', [
    '"domainName": "demo-failed.com"',
    '"state": "FAILED"',
  ]),
);

await check("a subscription typed into the editor streams to completion", async () => {
  await startWorkflow("browser-watch.example");
  await typeAndRun(
    'subscription { registrationStatusChanged(domain: "browser-watch.example") { sequence status { state } } }',
    ['"state": "PENDING"'],
  );
  await advance(10);
  await responseShows(['"state": "IN_PROGRESS"']);
  await advance(20);
  await responseShows(['"state": "SUCCEEDED"', '"sequence": 3']);
  if (process.env.EXPLORER_SCREENSHOT) {
    await page.screenshot({ path: process.env.EXPLORER_SCREENSHOT });
    console.log(`screenshot (docs open, a subscription answered): ${process.env.EXPLORER_SCREENSHOT}`);
  }
});

await check("no request leaves the gateway's origin", () => {
  const elsewhere = requests.filter((url) => {
    const { protocol, host } = new URL(url);
    return host !== gateway.host || !["http:", "ws:"].includes(protocol);
  });
  if (requests.length === 0 || elsewhere.length > 0) throw new Error(`elsewhere: ${elsewhere.join(", ")}`);
  console.log(`     ${requests.length} requests, all to ${gateway.host}`);
});

await check("Monaco's three workers load, and the app comes brotli-compressed", () => {
  const workers = Object.keys(manifest.files).filter((name) => /\.worker-[A-Z0-9]+\.js$/.test(name));
  const missing = workers.filter((name) => !requests.some((url) => url.endsWith(`/assets/${name}`)));
  if (workers.length !== 3 || missing.length > 0) throw new Error(`workers ${workers}; not loaded: ${missing}`);
  const script = new URL(`assets/${manifest.script}`, gateway).href;
  if (encodings.get(script) !== "br") throw new Error(`${script} came as ${encodings.get(script)}`);
});

await check("nothing failed or broke the Content-Security-Policy", () => {
  if (problems.length > 0) throw new Error(problems.join("\n"));
});

/**
 * A reverse proxy serving the gateway under `/registrar/` (HTTP and websocket
 * upgrades), as a front-end server would; resolves with its address.
 */
function prefixProxy(prefix) {
  const strip = (url) => (url.startsWith(prefix) ? `/${url.slice(prefix.length)}` : null);
  const proxy = createServer((incoming, outgoing) => {
    const path = strip(incoming.url);
    if (path === null) return outgoing.writeHead(404).end();
    const upstream = forward(
      { host: gateway.hostname, port: gateway.port, path, method: incoming.method, headers: incoming.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode, answer.headers);
        answer.pipe(outgoing);
      },
    );
    incoming.pipe(upstream);
  });
  proxy.on("upgrade", (incoming, socket, head) => {
    const path = strip(incoming.url);
    if (path === null) return socket.destroy();
    const upstream = connect(Number(gateway.port), gateway.hostname, () => {
      const headers = Object.entries(incoming.headers).map(([name, value]) => `${name}: ${value}\r\n`);
      upstream.write(`${incoming.method} ${path} HTTP/1.1\r\n${headers.join("")}\r\n`);
      upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    upstream.on("error", () => socket.destroy());
  });
  return new Promise((resolve) => proxy.listen(0, "127.0.0.1", () => resolve(proxy)));
}

await check("behind a reverse proxy under a path prefix, a query and a subscription answer", async () => {
  const proxy = await prefixProxy("/registrar/");
  const origin = `127.0.0.1:${proxy.address().port}`;
  // The page on the gateway's own origin spawns Monaco's workers lazily: unload it
  // first, so that none of its late requests is counted as the proxied page's.
  await page.goto("about:blank");
  const before = requests.length;
  try {
    await page.goto(`http://${origin}/registrar/`, { waitUntil: "load" });
    await page.locator(".graphiql-execute-button").waitFor({ timeout: 30000 });
    await typeAndRun('{ registrationStatus(domain: "demo-succeeded.com") { state } }', ['"state": "SUCCEEDED"']);
    await typeAndRun('subscription { registrationStatusChanged(domain: "demo-failed.com") { status { state } } }', [
      '"state": "FAILED"',
    ]);
    const elsewhere = requests.slice(before).filter((url) => !url.includes(`${origin}/registrar/`));
    if (elsewhere.length > 0) throw new Error(`outside the prefix: ${elsewhere.join(", ")}`);
  } finally {
    proxy.closeAllConnections();
    proxy.close();
  }
});

await context.close();
rmSync(profile, { recursive: true, force: true });
checks.finish();
