// A tiny second subgraph, the way a team's own service would be written: graphql-yoga
// serving an @apollo/subgraph schema that owns `Domain @key(fields: "name")` and a
// list of domains, with fields of its own. The registration status comes from the
// gateway's subgraph, joined by the supergraph on `name`.
import { createServer } from 'node:http';

import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { createYoga } from 'graphql-yoga';

/** The domains this service knows, in order; their registrations are in the simulator. */
export const DOMAINS = [
  { name: 'demo-succeeded.com', owner: 'team-a' },
  { name: 'demo-pending.com', owner: 'team-b' },
  { name: 'nothing-here.com', owner: 'team-c' },
  { name: 'not a domain', owner: 'team-d' },
  { name: 'demo-failed.com', owner: 'team-e' },
];

const typeDefs = parse(/* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])

  type Query {
    "Every domain this service manages."
    domains: [Domain!]!
  }

  type Domain @key(fields: "name") {
    name: String!
    "The team that owns the domain."
    owner: String!
  }
`);

const resolvers = {
  Query: { domains: () => DOMAINS },
  Domain: {
    __resolveReference: ({ name }) => DOMAINS.find((domain) => domain.name === name) ?? null,
  },
};

/** Starts the subgraph on a free loopback port; resolves to { url, close }. */
export async function startDomainsSubgraph() {
  const yoga = createYoga({
    schema: buildSubgraphSchema([{ typeDefs, resolvers }]),
    graphiql: false,
    logging: false,
  });
  const server = createServer(yoga);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}${yoga.graphqlEndpoint}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
