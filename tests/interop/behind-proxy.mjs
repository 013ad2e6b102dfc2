// The browser's view of a gateway behind a proxy (scale-out.sh's nginx, the container check's
// compose nginx), in Debian's Chromium: unlike Node clients a browser sends `Origin`, and its
// `Host` carries the proxy's port, so these fail when the proxy hides the port from the gateway.
// - the explorer's page and every asset it loads answer (no 403), and GraphiQL renders;
// - a POST query sent by the page (Origin and Host with the port) answers;
// - a websocket subscription opened by the page (graphql-transport-ws, the browser's Origin)
//   follows a registration to its end.
// GATEWAY_URL is the proxy (use `localhost`, as a person types it). With SIMULATOR_URL (a
// manual-clock simulator) a fresh workflow is started and the clock moved on after each event;
// without it the workflow of SUBSCRIBE_DOMAIN must end on its own.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { Checks, advance, startWorkflow } from "./sim.mjs";

const gateway = new URL(process.env.GATEWAY_URL);
const domain = process.env.SUBSCRIBE_DOMAIN ?? `behind-proxy-${process.pid}.com`;
if (process.env.SIMULATOR_URL) await startWorkflow(domain);
const checks = new Checks(`behind a proxy (Chromium, ${gateway.host})`);
const profile = mkdtempSync(join(tmpdir(), "behind-proxy-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = context.pages()[0] ?? (await context.newPage());
const answers = [];
page.on("response", (response) => answers.push(`${response.status()} ${response.url()}`));

await checks.check("the explorer's page and all its assets load through the proxy", async () => {
  // "load", as explorer.mjs: every answer seen is checked below, and the app must render.
  // Not "networkidle": Monaco asks for its JSON worker script twice at once, Chromium answers
  // both from one fetch (the server sees one), and Playwright never marks the second finished,
  // so the page is never idle in its eyes, with or without a proxy in front.
  const response = await page.goto(new URL("/", gateway).href, { waitUntil: "load" });
  if (response.status() !== 200) throw new Error(`the page answered ${response.status()}`);
  const refused = answers.filter((answer) => !/^(200|204|304) /.test(answer));
  if (refused.length > 0) throw new Error(`refused: ${refused.join(", ")}`);
  if (answers.length < 2) throw new Error(`only ${answers.join(", ")} loaded`);
  await page.locator(".graphiql-container").waitFor({ timeout: 15000 });
});

await checks.check("a POST query from the page (Origin and Host with the port) answers", async () => {
  const body = await page.evaluate(async () => {
    const response = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: '{ registrationStatus(domain: "demo-succeeded.com") { state } }' }),
    });
    return { status: response.status, json: await response.json() };
  });
  if (body.status !== 200 || body.json.data?.registrationStatus?.state !== "SUCCEEDED") {
    throw new Error(JSON.stringify(body));
  }
});

await checks.check(`a websocket subscription from the page follows ${domain} to its end`, async () => {
  await page.exposeFunction("advanceClock", async (state) => {
    if (!process.env.SIMULATOR_URL) return;
    if (state === "PENDING") await advance(10);
    if (state === "IN_PROGRESS") await advance(20);
  });
  const seen = await page.evaluate(
    (domain) =>
      new Promise((resolve, reject) => {
        const url = new URL("/graphql", location.href);
        url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
        const socket = new WebSocket(url, "graphql-transport-ws");
        const seen = [];
        const timer = setTimeout(() => reject(new Error(`timed out after ${seen.join(",")}`)), 90000);
        socket.onopen = () => socket.send(JSON.stringify({ type: "connection_init" }));
        socket.onerror = () => reject(new Error("the websocket failed (refused at the upgrade?)"));
        socket.onmessage = async ({ data }) => {
          const message = JSON.parse(data);
          if (message.type === "connection_ack") {
            const query = `subscription { registrationStatusChanged(domain: "${domain}") { status { state } } }`;
            socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query } }));
          } else if (message.type === "next") {
            const state = message.payload.data?.registrationStatusChanged?.status.state;
            seen.push(state ?? JSON.stringify(message.payload));
            await window.advanceClock(state);
          } else if (message.type === "complete") {
            clearTimeout(timer);
            socket.close();
            resolve(seen);
          } else if (message.type === "error") {
            reject(new Error(JSON.stringify(message.payload)));
          }
        };
      }),
    domain,
  );
  if (seen.at(-1) !== "SUCCEEDED" || seen.length < 2) throw new Error(`saw ${seen.join(",")}`);
  console.log(`     saw ${seen.join(" -> ")}`);
});

await context.close();
rmSync(profile, { recursive: true, force: true });
checks.finish();
