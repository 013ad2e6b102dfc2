// The clients front ends ship, set up as front ends set them up, for the interop
// scripts that drive them (clients.mjs, registration-clients.mjs): Apollo Client 4
// (HttpLink + GraphQLWsLink over graphql-ws) and urql (@urql/core with the fetch
// exchange + subscriptionExchange over graphql-ws), and following a subscription
// with each until it completes.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { Client, fetchExchange, subscriptionExchange } from "@urql/core";
import { Kind, OperationTypeNode } from "graphql";
import { createClient as createWsClient } from "graphql-ws";
import { onEnd, pipe, subscribe } from "wonka";
import WebSocket from "ws";

const httpUrl = `${process.env.GATEWAY_URL}/graphql`;
const wsUrl = `${process.env.GATEWAY_WS_URL}/graphql`;

const isSubscription = ({ query }) =>
  query.definitions.some((d) => d.kind === Kind.OPERATION_DEFINITION && d.operation === OperationTypeNode.SUBSCRIPTION);

/** Apollo Client 4: subscriptions over the websocket link, everything else over HTTP. */
export function apolloClient() {
  const ws = createWsClient({ url: wsUrl, webSocketImpl: WebSocket });
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: ApolloLink.split(isSubscription, new GraphQLWsLink(ws), new HttpLink({ uri: httpUrl })),
  });
  return { client, dispose: () => ws.dispose() };
}

/** urql: the fetch exchange for queries and mutations, graphql-ws for subscriptions. */
export function urqlClient() {
  const ws = createWsClient({ url: wsUrl, webSocketImpl: WebSocket });
  const client = new Client({
    url: httpUrl,
    requestPolicy: "network-only",
    exchanges: [
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? "" }, sink) }),
        }),
      }),
    ],
  });
  return { client, dispose: () => ws.dispose() };
}

/**
 * Follows `query` with Apollo Client until the stream completes; resolves with
 * `describe(data)` of every event. `onEvent(data)` runs after each (e.g. to advance
 * the simulator's clock); a client or `onEvent` error rejects.
 */
export function followWithApollo(apollo, query, variables, describe, onEvent) {
  return new Promise((resolve, reject) => {
    const seen = [];
    apollo.subscribe({ query, variables }).subscribe({
      next: ({ data, error }) => {
        if (error) return reject(error);
        seen.push(describe(data));
        onEvent(data).catch(reject);
      },
      error: reject,
      complete: () => resolve(seen),
    });
  });
}

/** [`followWithApollo`] with urql. */
export function followWithUrql(urql, query, variables, describe, onEvent) {
  return new Promise((resolve, reject) => {
    const seen = [];
    pipe(
      urql.subscription(query, variables),
      onEnd(() => resolve(seen)),
      subscribe(({ data, error }) => {
        if (error) return reject(error);
        const event = describe(data);
        // urql hands the last result over once more when the stream completes
        // (hasNext: false): the same event, rendered again, not a new one.
        if (seen.at(-1) === event) return;
        seen.push(event);
        onEvent(data).catch(reject);
      }),
    );
  });
}
