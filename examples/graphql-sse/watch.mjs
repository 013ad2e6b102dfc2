// Follow a registration over plain HTTP with the graphql-sse client (GraphQL over
// Server-Sent Events, "distinct connections" mode): no websocket, so it passes
// proxies and networks that refuse upgrades. Each change as it happens, until the
// workflow ends and the gateway completes the stream.
// Usage: node watch.mjs [domain]   (GATEWAY_URL defaults to http://127.0.0.1:8080;
// ACCOUNT_ID, when set, names the account, else the gateway's default one)
import { createClient } from "graphql-sse";

const url = `${process.env.GATEWAY_URL ?? "http://127.0.0.1:8080"}/graphql`;
const domain = process.argv[2] ?? "demo-succeeds.com";
const accountId = process.env.ACCOUNT_ID || null;
// Node 18+ has fetch; graphql-sse uses it. No retries: a lost stream is an error here.
const client = createClient({ url, retryAttempts: 0 });

const query = `subscription Watch($domain: String!, $accountId: ID) {
  registrationStatusChanged(domain: $domain, accountId: $accountId) {
    sequence
    status { state completed actionRequired { action } error { code message } }
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
  client.dispose();
}
// The loop ends when the gateway completes the stream: the workflow ended.
console.log(`${domain} ended ${last?.status.state}`);
process.exit(last?.status.state === "SUCCEEDED" ? 0 : 1);
