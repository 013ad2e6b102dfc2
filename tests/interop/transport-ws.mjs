// The graphql-ws client (GraphiQL's, Apollo's, urql's) follows a registration through
// every state; the simulator's manual clock is advanced after each event.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const advance = (seconds) =>
  fetch(`${process.env.SIMULATOR_URL}/__sim/clock/advance`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ seconds }),
  });

const client = createClient({ url: `${process.env.GATEWAY_WS_URL}/graphql`, webSocketImpl: WebSocket });
const query = `subscription { registrationStatusChanged(domain: "demo-succeeds.com") {
  sequence previousState status { state completed } } }`;
const seen = [];
for await (const event of client.iterate({ query })) {
  const change = event.data.registrationStatusChanged;
  seen.push(`${change.sequence}:${change.status.state}`);
  if (change.status.state === "PENDING") await advance(10);
  if (change.status.state === "IN_PROGRESS") await advance(20);
}
await client.dispose();
const expected = "1:PENDING,2:IN_PROGRESS,3:SUCCEEDED";
const ok = seen.join(",") === expected;
console.log(`graphql-transport-ws (graphql-ws client): saw ${seen.join(",")}; ${ok ? 1 : 0} passed, ${ok ? 0 : 1} failed`);
process.exit(ok ? 0 : 1);
