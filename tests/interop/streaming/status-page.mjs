// The live status page in Debian's Chromium (driven by playwright-core): it renders
// a workflow, follows it live over EventSource, survives a dropped connection
// mid-workflow (the browser reconnects with Last-Event-ID and the gateway replays
// what was missed: the history shows every sequence), and loads nothing from
// anywhere but the gateway.
import { chromium } from "playwright-core";
import { createClient } from "graphql-sse";
import net from "node:net";
import { advance, startWorkflow } from "../sim.mjs";

const domain = "interop-page.com";
await startWorkflow(domain, "succeeds");

// Another watcher keeps the gateway polling while the page is offline.
const sse = createClient({ url: `${process.env.GATEWAY_URL}/graphql`, retryAttempts: 0 });
const watcherSeen = [];
let watcherProgress = () => {};
const watcherDone = (async () => {
  const query = `subscription { registrationStatusChanged(domain: "${domain}") { sequence } }`;
  for await (const result of sse.iterate({ query })) {
    watcherSeen.push(result.data.registrationStatusChanged.sequence);
    watcherProgress();
  }
})();
const watcherReached = (count) =>
  new Promise((resolve) => {
    watcherProgress = () => watcherSeen.length >= count && resolve();
    watcherProgress();
  });

// The page talks to the gateway through this TCP relay, which can cut every
// connection (a network drop the browser cannot tell from a real one).
const gateway = new URL(process.env.GATEWAY_URL);
const sockets = new Set();
let cutting = false;
const relay = net.createServer((client) => {
  if (cutting) return client.destroy();
  const upstream = net.connect(Number(gateway.port), gateway.hostname);
  for (const socket of [client, upstream]) {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
  }
  client.pipe(upstream).pipe(client);
});
await new Promise((resolve) => relay.listen(0, "127.0.0.1", resolve));
const relayUrl = `http://127.0.0.1:${relay.address().port}`;
const cut = (on) => {
  cutting = on;
  if (on) for (const socket of sockets) socket.destroy();
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
let failed = 0;
const problems = [];
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const origin = new URL(relayUrl).origin;
  const foreign = [];
  page.on("request", (request) => {
    if (new URL(request.url()).origin !== origin) foreign.push(request.url());
  });
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  await page.goto(`${relayUrl}/status/${domain}`);
  await page.waitForSelector("#change-1");
  await watcherReached(1);
  const first = await page.textContent("#state");

  // Drop the page's connection, let the workflow move on, then come back.
  cut(true);
  await page.waitForFunction(() => document.getElementById("connection").textContent.includes("reconnecting"));
  await advance(10);
  await watcherReached(2);
  await advance(20);
  await watcherReached(3); // the whole rest of the workflow happened while the page was away
  cut(false);
  await page.waitForSelector("#change-3", { timeout: 30000 });
  await page.waitForFunction(() => document.getElementById("connection").textContent.includes("No more changes"));
  const history = await page.$$eval("#history li", (items) => items.map((item) => item.id).join(","));
  const state = await page.textContent("#state");
  const checks = [
    ["the page rendered the first state", first, "PENDING"],
    ["the history is whole across the drop", history, "change-1,change-2,change-3"],
    ["the page shows the final state", state, "SUCCEEDED"],
    ["nothing was loaded from another origin", foreign.join(" "), ""],
    ["no script error (CSP included)", problems.filter((text) => !text.includes("ERR_") && !text.includes("EventSource")).join(" | "), ""],
  ];
  for (const [name, seen, expected] of checks) {
    const ok = seen === expected;
    if (!ok) failed++;
    console.log(`${ok ? "ok  " : "FAIL"} status page: ${name}: ${JSON.stringify(seen)}${ok ? "" : ` (expected ${JSON.stringify(expected)})`}`);
  }
} catch (error) {
  failed++;
  console.log(`FAIL status page: ${error.message}`);
} finally {
  await browser.close();
  relay.close();
  cut(true);
  await watcherDone.catch(() => {});
  sse.dispose();
}
console.log(`status page in Chromium: ${failed === 0 ? "passed" : `${failed} failed`}`);
process.exit(failed === 0 ? 0 : 1);
