// urql's core client from Node: the status as a query over HTTP, then the changes
// as a subscription over the gateway's websocket (urql's subscriptionExchange
// handing operations to the graphql-ws client), until the workflow ends.
// The same client code runs in a browser (drop `webSocketImpl`), and the React
// bindings (`urql`'s useQuery/useSubscription) sit on top of this client.
// Usage: node watch.mjs [domain]   (GATEWAY_URL defaults to http://127.0.0.1:8080;
// ACCOUNT_ID, when set, names the account, else the gateway's default one)
import { Client, fetchExchange, gql, subscriptionExchange } from "@urql/core";
import { createClient as createWsClient } from "graphql-ws";
import WebSocket from "ws";

const http = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";
const domain = process.argv[2] ?? "demo-succeeds.com";
const variables = { domain, accountId: process.env.ACCOUNT_ID || null };

const ws = createWsClient({ url: `${http.replace(/^http/, "ws")}/graphql`, webSocketImpl: WebSocket });
const client = new Client({
  url: `${http}/graphql`,
  exchanges: [
    fetchExchange,
    subscriptionExchange({
      forwardSubscription: (request) => ({
        subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? "" }, sink) }),
      }),
    }),
  ],
});

const STATUS = gql`
  query Status($domain: String!, $accountId: ID) {
    registrationStatus(domain: $domain, accountId: $accountId) { domainName state completed updatedAt }
  }
`;
const WATCH = gql`
  subscription Watch($domain: String!, $accountId: ID) {
    registrationStatusChanged(domain: $domain, accountId: $accountId) {
      sequence
      status { state completed actionRequired { action } error { code message } }
    }
  }
`;

const status = await client.query(STATUS, variables).toPromise();
if (status.error) throw status.error;
console.log("query:", JSON.stringify(status.data.registrationStatus));

// A subscription is a stream of results; the last one is the workflow's end
// (`completed`), after which the gateway completes the subscription.
const last = await new Promise((resolve, reject) => {
  const { unsubscribe } = client.subscription(WATCH, variables).subscribe((result) => {
    if (result.error) return reject(result.error);
    const change = result.data.registrationStatusChanged;
    console.log(`#${change.sequence} ${domain} ${change.status.state}`);
    if (change.status.completed) {
      unsubscribe();
      resolve(change);
    }
  });
});
await ws.dispose();
console.log(`${domain} ended ${last.status.state}`);
process.exit(last.status.state === "SUCCEEDED" ? 0 : 1);
