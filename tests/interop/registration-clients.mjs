// The registration flow with the clients front ends ship: Apollo Client 4 and urql
// each start a registration (mutation over HTTP), follow it over graphql-ws to
// SUCCEEDED and completion, and start it again, which must return the same
// workflow; the simulator's counters must show one POST per registration.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { Client, fetchExchange, subscriptionExchange } from "@urql/core";
import { Kind, OperationTypeNode } from "graphql";
import { createClient as createWsClient } from "graphql-ws";
import { onEnd, pipe, subscribe } from "wonka";
import WebSocket from "ws";
import { ACCOUNT, Checks, advance, assertEqual } from "./sim.mjs";

const httpUrl = `${process.env.GATEWAY_URL}/graphql`;
const wsUrl = `${process.env.GATEWAY_WS_URL}/graphql`;
const START = gql`
  mutation Start($domain: String!) { startRegistration(domain: $domain) { domainName state completed createdAt } }
`;
const FOLLOW = gql`
  subscription Follow($domain: String!) { registrationStatusChanged(domain: $domain) { status { state completed } } }
`;

/** POSTs and GETs the simulator received for `domain`, and all creates so far. */
async function upstream(domain) {
  const stats = await (await fetch(`${process.env.SIMULATOR_URL}/__sim/stats`)).json();
  return { creates: stats.creates, requests: stats.registrations[ACCOUNT]?.[domain] ?? 0 };
}

/** The whole flow for `domain` through `start(domain)` and `follow(domain, onState)`. */
async function flow(domain, start, follow) {
  const before = await upstream(domain);
  const started = await start(domain);
  assertEqual([started.state, started.completed], ["PENDING", false], "started");
  const seen = await follow(domain, async (state) => {
    if (state === "PENDING") await advance(2);
    if (state === "IN_PROGRESS") await advance(3);
  });
  assertEqual(seen, ["PENDING", "IN_PROGRESS", "SUCCEEDED"], "states");
  const again = await start(domain);
  assertEqual([again.state, again.createdAt], ["SUCCEEDED", started.createdAt], "the same workflow");
  const after = await upstream(domain);
  assertEqual(after.creates - before.creates, 1, "POSTs for this registration");
}

const checks = new Checks("registration flow (front-end clients)");
const apolloWs = createWsClient({ url: wsUrl, webSocketImpl: WebSocket });
const isSubscription = ({ query }) =>
  query.definitions.some((d) => d.kind === Kind.OPERATION_DEFINITION && d.operation === OperationTypeNode.SUBSCRIPTION);
const apollo = new ApolloClient({
  cache: new InMemoryCache(),
  link: ApolloLink.split(isSubscription, new GraphQLWsLink(apolloWs), new HttpLink({ uri: httpUrl })),
});
await checks.check("Apollo Client 4: startRegistration, then the subscription to SUCCEEDED, then idempotent", () =>
  flow(
    `apollo-${process.pid}.com`,
    async (domain) => {
      const { data, error } = await apollo.mutate({ mutation: START, variables: { domain } });
      if (error) throw error;
      return data.startRegistration;
    },
    (domain, onState) =>
      new Promise((resolve, reject) => {
        const seen = [];
        apollo.subscribe({ query: FOLLOW, variables: { domain } }).subscribe({
          next: ({ data, error }) => {
            if (error) return reject(error);
            seen.push(data.registrationStatusChanged.status.state);
            onState(seen.at(-1)).catch(reject);
          },
          error: reject,
          complete: () => resolve(seen),
        });
      }),
  ),
);
await apolloWs.dispose();

const urqlWs = createWsClient({ url: wsUrl, webSocketImpl: WebSocket });
const urql = new Client({
  url: httpUrl,
  requestPolicy: "network-only",
  exchanges: [
    fetchExchange,
    subscriptionExchange({
      forwardSubscription: (request) => ({
        subscribe: (sink) => ({ unsubscribe: urqlWs.subscribe({ ...request, query: request.query ?? "" }, sink) }),
      }),
    }),
  ],
});
await checks.check("urql: startRegistration, then the subscription to SUCCEEDED, then idempotent", () =>
  flow(
    `urql-${process.pid}.com`,
    async (domain) => {
      const { data, error } = await urql.mutation(START, { domain }).toPromise();
      if (error) throw error;
      return data.startRegistration;
    },
    (domain, onState) =>
      new Promise((resolve, reject) => {
        const seen = [];
        pipe(
          urql.subscription(FOLLOW, { domain }),
          onEnd(() => resolve(seen)),
          subscribe(({ data, error }) => {
            if (error) return reject(error);
            const state = data.registrationStatusChanged.status.state;
            // urql repeats the last result when the stream completes: not a new event.
            if (seen.at(-1) === state) return;
            seen.push(state);
            onState(state).catch(reject);
          }),
        );
      }),
  ),
);
await urqlWs.dispose();
checks.finish();
