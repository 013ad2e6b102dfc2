// The whole registration flow a front end runs, with the graphql-ws reference client
// (the transport GraphiQL, Apollo Client and urql use): startRegistration, then
// registrationStatusChanged to SUCCEEDED and completion; then the same mutation again,
// which must return the same workflow without a second POST. The simulator's manual
// clock is advanced after each event, and its counters give the upstream's POSTs and GETs.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const account = "023e105f4ecef8ad9ca31a8372d0c353";
const domain = `interop-${process.pid}.com`;
const sim = (path, init) => fetch(`${process.env.SIMULATOR_URL}/__sim${path}`, init);
const advance = (seconds) =>
  sim("/clock/advance", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ seconds }),
  });
const upstream = async () => {
  const stats = await (await sim("/stats")).json();
  const requests = stats.registrations[account]?.[domain] ?? 0;
  return { posts: stats.creates, gets: requests - stats.creates };
};

const client = createClient({ url: `${process.env.GATEWAY_WS_URL}/graphql`, webSocketImpl: WebSocket });
const once = async (query, variables) => {
  for await (const result of client.iterate({ query, variables })) return result;
};
const start = `mutation Start($domain: String!) {
  startRegistration(domain: $domain, years: 1, autoRenew: true, privacyMode: REDACTION) {
    state completed createdAt nextCheckAt } }`;
const follow = `subscription Follow($domain: String!) {
  registrationStatusChanged(domain: $domain) { sequence status { state completed nextCheckAt } } }`;

const failures = [];
const check = (ok, what) => ok || failures.push(what);

const started = (await once(start, { domain })).data?.startRegistration;
check(started?.state === "PENDING" && started.completed === false, `started PENDING: ${JSON.stringify(started)}`);
check(typeof started?.nextCheckAt === "string", "the mutation says when the gateway checks next");
const afterStart = await upstream();
check(afterStart.posts === 1 && afterStart.gets === 1, `one GET and one POST: ${JSON.stringify(afterStart)}`);

const seen = [];
for await (const event of client.iterate({ query: follow, variables: { domain } })) {
  const change = event.data.registrationStatusChanged;
  seen.push(change.status.state);
  if (change.status.state === "PENDING") await advance(2);
  if (change.status.state === "IN_PROGRESS") await advance(3);
}
check(seen.join(",") === "PENDING,IN_PROGRESS,SUCCEEDED", `states ${seen.join(",")}`);

const again = (await once(start, { domain })).data?.startRegistration;
check(again?.state === "SUCCEEDED" && again.createdAt === started?.createdAt, `the same workflow again: ${JSON.stringify(again)}`);
const end = await upstream();
check(end.posts === 1, `never posted twice: ${JSON.stringify(end)}`);
await client.dispose();

const ok = failures.length === 0;
failures.forEach((failure) => console.error(`FAILED: ${failure}`));
console.log(`registration flow (graphql-ws client): saw ${seen.join(",")}; upstream GETs ${end.gets}, POSTs ${end.posts}; ${ok ? 1 : 0} passed, ${ok ? 0 : 1} failed`);
process.exit(ok ? 0 : 1);
