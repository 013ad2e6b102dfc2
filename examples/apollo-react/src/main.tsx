// A React page with Apollo Client: the registration's status as a query, then its
// changes as they happen over a subscription (graphql-ws). Queries go over HTTP,
// subscriptions over the gateway's websocket, split by operation type.
// The page takes ?gateway=, ?domain= and ?accountId= from its address (defaults:
// http://127.0.0.1:8080, demo-succeeds.com, the gateway's default account).
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { ApolloProvider, useQuery, useSubscription } from "@apollo/client/react";
import { getMainDefinition } from "@apollo/client/utilities";
import { OperationTypeNode } from "graphql";
import { createClient } from "graphql-ws";
import { useState } from "react";
import { createRoot } from "react-dom/client";
import { graphql } from "./gql";
import type { WatchSubscription } from "./gql/graphql";

const params = new URLSearchParams(location.search);
const gateway = params.get("gateway") ?? "http://127.0.0.1:8080";
const domain = params.get("domain") ?? "demo-succeeds.com";
const accountId = params.get("accountId");

const link = ApolloLink.split(
  ({ query }) => {
    const definition = getMainDefinition(query);
    return definition.kind === "OperationDefinition" && definition.operation === OperationTypeNode.SUBSCRIPTION;
  },
  new GraphQLWsLink(createClient({ url: `${gateway.replace(/^http/, "ws")}/graphql` })),
  new HttpLink({ uri: `${gateway}/graphql` }),
);
const client = new ApolloClient({ link, cache: new InMemoryCache() });

// Typed by graphql-codegen (examples/codegen/codegen.ts): `state` is the schema's
// enum as a union of strings, `updatedAt` (a DateTime) a string.
const Status = graphql(`
  query Status($domain: String!, $accountId: ID) {
    registrationStatus(domain: $domain, accountId: $accountId) { domainName state completed updatedAt }
  }
`);
const Watch = graphql(`
  subscription Watch($domain: String!, $accountId: ID) {
    registrationStatusChanged(domain: $domain, accountId: $accountId) {
      sequence
      status { state completed updatedAt actionRequired { action } error { code message } }
    }
  }
`);
type Change = WatchSubscription["registrationStatusChanged"];

function StatusAtLoad() {
  const { data, error, loading } = useQuery(Status, { variables: { domain, accountId } });
  if (loading) return <p>Loading…</p>;
  if (error) return <p role="alert">Query failed: {error.message}</p>;
  const status = data?.registrationStatus;
  if (!status) return <p>No registration for {domain}.</p>;
  return (
    <p data-testid="query">
      {status.domainName} was <strong>{status.state}</strong> at load (last change{" "}
      {new Date(status.updatedAt).toLocaleTimeString()}).
    </p>
  );
}

function LiveStatus() {
  const [changes, setChanges] = useState<Change[]>([]);
  const { error, data } = useSubscription(Watch, {
    variables: { domain, accountId },
    // Every event, not only the latest: the page lists them.
    onData: ({ data: event }) => {
      const change = event.data?.registrationStatusChanged;
      if (change) setChanges((seen) => [...seen, change]);
    },
  });
  if (error) return <p role="alert">Subscription failed: {error.message}</p>;
  const now = data?.registrationStatusChanged.status;
  return (
    <>
      <p>
        Now: <strong data-testid="state">{now?.state ?? "connecting…"}</strong>
        {now?.completed && <span data-testid="ended"> (ended)</span>}
        {now?.actionRequired && <span> — to do: {now.actionRequired.action}</span>}
        {now?.error && <span> — {now.error.message}</span>}
      </p>
      <ol data-testid="changes">
        {changes.map((change) => (
          <li key={change.sequence}>
            #{change.sequence} {change.status.state} at {new Date(change.status.updatedAt).toLocaleTimeString()}
          </li>
        ))}
      </ol>
    </>
  );
}

createRoot(document.getElementById("root")!).render(
  <ApolloProvider client={client}>
    <h1>Registration of {domain}</h1>
    <StatusAtLoad />
    <h2>Live</h2>
    <LiveStatus />
  </ApolloProvider>,
);
