// Follow a registration from Node with the graphql-ws client (what GraphiQL,
// Apollo Client and urql use for subscriptions): each change as it happens,
// until the workflow ends and the gateway completes the subscription.
// Usage: node watch.mjs [domain]   (GATEWAY_WS_URL defaults to ws://127.0.0.1:8080;
// ACCOUNT_ID, when set, names the account, else the gateway's default one)
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const url = `${process.env.GATEWAY_WS_URL ?? "ws://127.0.0.1:8080"}/graphql`;
const domain = process.argv[2] ?? "demo-succeeds.com";
const accountId = process.env.ACCOUNT_ID || null;
const client = createClient({ url, webSocketImpl: WebSocket, lazy: true });

const query = `subscription Watch($domain: String!, $accountId: ID) {
  registrationStatusChanged(domain: $domain, accountId: $accountId) {
    sequence
    status { state completed nextCheckAt actionRequired { action } error { code message } }
  }
}`;

let last;
try {
  for await (const result of client.iterate({ query, variables: { domain, accountId } })) {
    if (result.errors) throw new Error(result.errors.map((error) => error.message).join("; "));
    last = result.data.registrationStatusChanged;
    console.log(`#${last.sequence} ${domain} ${last.status.state}`);
  }
} finally {
  await client.dispose();
}
// The loop ends when the gateway completes the subscription: the workflow ended.
console.log(`${domain} ended ${last?.status.state}`);
process.exit(last?.status.state === "SUCCEEDED" ? 0 : 1);
