// 1,000 subscribers (10 graphql-ws clients x 100 subscriptions) follow demo-succeeds.com through its
// whole workflow (about 30 s) with the gateway's default poll settings; prints what they saw and how
// many requests the upstream (the simulator) received. Run by bench/thousand-subscribers.sh.
import { createClient } from "graphql-ws";
import WebSocket from "ws";
const gateway = process.env.GATEWAY_WS_URL, simulator = process.env.SIMULATOR_URL;
const query = `subscription { registrationStatusChanged(domain: "demo-succeeds.com") { sequence status { state } } }`;
const started = Date.now();
const sequences = new Map();
const watchers = [];
for (let c = 0; c < 10; c++) {
  const client = createClient({ url: `${gateway}/graphql`, webSocketImpl: WebSocket, lazy: false });
  for (let s = 0; s < 100; s++) {
    watchers.push((async () => {
      const seen = [];
      for await (const event of client.iterate({ query })) seen.push(event.data.registrationStatusChanged.status.state);
      sequences.set(seen.join(","), (sequences.get(seen.join(",")) ?? 0) + 1);
    })());
  }
}
await Promise.all(watchers);
const stats = await (await fetch(`${simulator}/__sim/stats`)).json();
console.log(`seconds: ${((Date.now() - started) / 1000).toFixed(1)}`);
console.log("state sequences seen (count of subscribers):", Object.fromEntries(sequences));
console.log("upstream requests (simulator requests_total):", stats.requests_total);
process.exit(0);
