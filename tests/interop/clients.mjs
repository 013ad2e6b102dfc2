// The clients front ends ship, against the gateway, asserting what a page would
// render: Apollo Client 4 (HttpLink + GraphQLWsLink over graphql-ws) and urql
// (@urql/core + subscriptionExchange over graphql-ws). Each runs a query, a
// dashboard list with one failing item, and a subscription to its completion;
// Apollo's persisted-query link (automatic persisted queries) over POST and GET.
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { Checks, advance, assertEqual, setFaults, startWorkflow } from "./sim.mjs";
import { apolloClient, followWithApollo, followWithUrql, urqlClient } from "./front-ends.mjs";

const httpUrl = `${process.env.GATEWAY_URL}/graphql`;

const STATUS = gql`
  query Status($domain: String!) {
    registrationStatus(domain: $domain) { domainName state completed error { code } }
  }
`;
const DASHBOARD = gql`
  query Dashboard($domains: [String!]!) {
    registrationStatuses(domains: $domains) { domainName state }
  }
`;
const WATCH = gql`
  subscription Watch($domain: String!) {
    registrationStatusChanged(domain: $domain) { sequence previousState status { state completed } }
  }
`;

/** The rows a status page renders for a failed demo registration. */
const FAILED = { domainName: "demo-failed.com", state: "FAILED", completed: true, error: { code: "registry_rejected" } };

/**
 * The dashboard with its second domain failing upstream: the first is served
 * from the cache (asked for first), the second is an error at its index.
 * `fetchList` runs the client's query and returns { rows, errors }.
 */
async function dashboardWithOneFailure(failing, fetchList) {
  await fetchList(["demo-succeeded.com"]);
  await setFaults({ error_share: 1 });
  try {
    const { rows, errors } = await fetchList(["demo-succeeded.com", failing]);
    assertEqual(rows, [{ domainName: "demo-succeeded.com", state: "SUCCEEDED" }, null], "rows");
    assertEqual(errors.map((e) => [e.path, e.extensions?.code]), [[["registrationStatuses", 1], "UPSTREAM_UNAVAILABLE"]], "errors");
  } finally {
    await setFaults({});
  }
}

/**
 * Follows a fresh workflow for `domain` with `follow` (followWithApollo or
 * followWithUrql on its client) to completion, advancing the simulator's clock
 * after each state.
 */
async function watchToCompletion(domain, follow) {
  await startWorkflow(domain);
  const describe = ({ registrationStatusChanged: change }) =>
    `${change.sequence}:${change.previousState}:${change.status.state}`;
  const seen = await follow(WATCH, { domain }, describe, async ({ registrationStatusChanged: change }) => {
    if (change.status.state === "PENDING") await advance(10);
    if (change.status.state === "IN_PROGRESS") await advance(20);
  });
  assertEqual(seen, ["1:null:PENDING", "2:PENDING:IN_PROGRESS", "3:IN_PROGRESS:SUCCEEDED"], "events");
}

const checks = new Checks("front-end clients");

const { client: apollo, dispose: disposeApollo } = apolloClient();
await checks.check("Apollo Client 4: a query renders a failed registration", async () => {
  const { data, error } = await apollo.query({ query: STATUS, variables: { domain: "demo-failed.com" } });
  assertEqual(error, undefined, "error");
  const { __typename, error: reason, ...row } = data.registrationStatus;
  assertEqual({ ...row, error: { code: reason.code } }, FAILED, "row");
  assertEqual(__typename, "RegistrationStatus", "__typename");
});
await checks.check("Apollo Client 4: a dashboard keeps its rows when one domain fails", () =>
  dashboardWithOneFailure("demo-pending.com", async (domains) => {
    const { data, error } = await apollo.query({
      query: DASHBOARD,
      variables: { domains },
      errorPolicy: "all",
      fetchPolicy: "network-only",
    });
    const rows = data.registrationStatuses.map((row) => row && { domainName: row.domainName, state: row.state });
    return { rows, errors: error?.errors ?? [] };
  }),
);
await checks.check("Apollo Client 4: a subscription streams every state to completion", () =>
  watchToCompletion("apollo-watch.example", (...args) => followWithApollo(apollo, ...args)),
);
await disposeApollo();

/**
 * Apollo Client 4 with its persisted-query link (automatic persisted queries):
 * every request it sends is recorded as { method, query, hash, status, errors }.
 */
function persistedQueryClient(useGETForHashedQueries) {
  const sent = [];
  const recordingFetch = async (uri, options) => {
    const url = new URL(uri);
    const params = options.method === "GET" ? Object.fromEntries(url.searchParams) : JSON.parse(options.body);
    const extensions = typeof params.extensions === "string" ? JSON.parse(params.extensions) : params.extensions;
    const response = await fetch(uri, options);
    const body = await response.clone().json();
    sent.push({
      method: options.method,
      query: params.query !== undefined,
      hash: extensions?.persistedQuery?.sha256Hash !== undefined,
      status: response.status,
      errors: (body.errors ?? []).map((error) => error.extensions?.code),
    });
    return response;
  };
  const sha256 = (text) => createHash("sha256").update(text).digest("hex");
  const link = createPersistedQueryLink({ sha256, useGETForHashedQueries }).concat(
    new HttpLink({ uri: httpUrl, fetch: recordingFetch }),
  );
  return { client: new ApolloClient({ cache: new InMemoryCache(), link }), sent };
}

/** The failed registration's row as a page renders it (Apollo adds `__typename`s). */
function renderedRow(status) {
  const { __typename, error: reason, ...row } = status;
  return { ...row, error: { code: reason.code } };
}

await checks.check("Apollo Client 4: persisted queries over POST: the document once, then its hash alone", async () => {
  const { client, sent } = persistedQueryClient(false);
  const ask = () => client.query({ query: STATUS, variables: { domain: "demo-failed.com" }, fetchPolicy: "network-only" });
  for (const round of [1, 2]) {
    const { data, error } = await ask();
    assertEqual(error, undefined, `error ${round}`);
    assertEqual(renderedRow(data.registrationStatus), FAILED, `row ${round}`);
  }
  assertEqual(
    sent.map(({ method, query, hash, errors }) => ({ method, query, hash, errors })),
    [
      { method: "POST", query: false, hash: true, errors: ["PERSISTED_QUERY_NOT_FOUND"] },
      { method: "POST", query: true, hash: true, errors: [] },
      { method: "POST", query: false, hash: true, errors: [] },
    ],
    "requests",
  );
});
await checks.check("Apollo Client 4: persisted queries over GET: another client sends the hash alone at once", async () => {
  const { client, sent } = persistedQueryClient(true);
  const { data, error } = await client.query({ query: STATUS, variables: { domain: "demo-failed.com" } });
  assertEqual(error, undefined, "error");
  assertEqual(renderedRow(data.registrationStatus), FAILED, "row");
  assertEqual(
    sent.map(({ method, query, hash, status, errors }) => ({ method, query, hash, status, errors })),
    [{ method: "GET", query: false, hash: true, status: 200, errors: [] }],
    "requests",
  );
});

const { client: urql, dispose: disposeUrql } = urqlClient();
await checks.check("urql: a query renders a failed registration", async () => {
  const { data, error } = await urql.query(STATUS, { domain: "demo-failed.com" }).toPromise();
  assertEqual(error, undefined, "error");
  assertEqual(data.registrationStatus, FAILED, "row");
});
await checks.check("urql: a dashboard keeps its rows when one domain fails", () =>
  dashboardWithOneFailure("demo-in-progress.com", async (domains) => {
    const { data, error } = await urql.query(DASHBOARD, { domains }).toPromise();
    return { rows: data.registrationStatuses, errors: error?.graphQLErrors ?? [] };
  }),
);
await checks.check("urql: a subscription streams every state to completion", () =>
  watchToCompletion("urql-watch.example", (...args) => followWithUrql(urql, ...args)),
);
await disposeUrql();
checks.finish();
