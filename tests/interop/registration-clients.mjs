// The registration flow with the clients front ends ship: Apollo Client 4 and urql
// each start a registration (mutation over HTTP), follow it over graphql-ws to
// SUCCEEDED and completion, and start it again, which must return the same
// workflow; the simulator's counters must show one POST per registration.
import { gql } from "@apollo/client";
import { ACCOUNT, Checks, advance, assertEqual } from "./sim.mjs";
import { apolloClient, followWithApollo, followWithUrql, urqlClient } from "./front-ends.mjs";

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

/**
 * The whole flow for `domain` through `start(domain)` and `follow` (followWithApollo
 * or followWithUrql on the same client).
 */
async function flow(domain, start, follow) {
  const before = await upstream(domain);
  const started = await start(domain);
  assertEqual([started.state, started.completed], ["PENDING", false], "started");
  const stateOf = (data) => data.registrationStatusChanged.status.state;
  const seen = await follow(FOLLOW, { domain }, stateOf, async (data) => {
    if (stateOf(data) === "PENDING") await advance(2);
    if (stateOf(data) === "IN_PROGRESS") await advance(3);
  });
  assertEqual(seen, ["PENDING", "IN_PROGRESS", "SUCCEEDED"], "states");
  const again = await start(domain);
  assertEqual([again.state, again.createdAt], ["SUCCEEDED", started.createdAt], "the same workflow");
  const after = await upstream(domain);
  assertEqual(after.creates - before.creates, 1, "POSTs for this registration");
}

const checks = new Checks("registration flow (front-end clients)");
const { client: apollo, dispose: disposeApollo } = apolloClient();
await checks.check("Apollo Client 4: startRegistration, then the subscription to SUCCEEDED, then idempotent", () =>
  flow(
    `apollo-${process.pid}.com`,
    async (domain) => {
      const { data, error } = await apollo.mutate({ mutation: START, variables: { domain } });
      if (error) throw error;
      return data.startRegistration;
    },
    (...args) => followWithApollo(apollo, ...args),
  ),
);
await disposeApollo();

const { client: urql, dispose: disposeUrql } = urqlClient();
await checks.check("urql: startRegistration, then the subscription to SUCCEEDED, then idempotent", () =>
  flow(
    `urql-${process.pid}.com`,
    async (domain) => {
      const { data, error } = await urql.mutation(START, { domain }).toPromise();
      if (error) throw error;
      return data.startRegistration;
    },
    (...args) => followWithUrql(urql, ...args),
  ),
);
await disposeUrql();
checks.finish();
