// A real supergraph: the gateway's subgraph (started with --federation by run.sh, at
// GATEWAY_URL) and a tiny Domain subgraph, composed with The Guild's federation
// composition and served by Hive Gateway (its runtime package, the engine the
// `hive-gateway` CLI runs, without the CLI's 600 packages of plugins), all on loopback. Through Hive Gateway it
// runs what a front end would: a list of domains from one subgraph with their
// registration states from the other (per-item errors included), and a subscription
// that Hive Gateway forwards to the subgraph over graphql-transport-ws.
import { refusedConnections } from './loopback-only.mjs';

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';

import { createGatewayRuntime } from '@graphql-hive/gateway-runtime';
import { composeServices, compositionHasErrors } from '@theguild/federation-composition';
import { parse } from 'graphql';

import { DOMAINS, startDomainsSubgraph } from './domains-subgraph.mjs';

const subgraphUrl = `${process.env.GATEWAY_URL}/graphql`;

async function post(url, query, variables = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: await response.json() };
}

// 1. The subgraph SDL, as a composition pipeline reads it, is the committed one.
const { body: service } = await post(subgraphUrl, '{ _service { sdl } }');
const sdl = service.data._service.sdl;
const committed = await readFile(new URL('../../../schema/subgraph.graphql', import.meta.url), 'utf8');
assert.equal(sdl, committed, '_service { sdl } is schema/subgraph.graphql');
assert.match(sdl, /@link\(\s*url: "https:\/\/specs\.apollo\.dev\/federation\/v2\.\d+"/);

// 2. Compose the supergraph.
const domains = await startDomainsSubgraph();
const composed = composeServices([
  { name: 'registrations', typeDefs: parse(sdl), url: subgraphUrl },
  { name: 'domains', typeDefs: parse(await sdlOf(domains.url)), url: domains.url },
]);
if (compositionHasErrors(composed)) {
  throw new Error(`composition failed:\n${composed.errors.map((e) => e.message).join('\n')}`);
}

async function sdlOf(url) {
  const { body } = await post(url, '{ _service { sdl } }');
  return body.data._service.sdl;
}

// 3. Serve it with Hive Gateway: no usage reporting, no telemetry, no CDN (none is
// configured, and loopback-only.mjs would refuse any connection off this machine);
// subscriptions go to the subgraph's own endpoint over graphql-transport-ws.
const gateway = createGatewayRuntime({
  supergraph: composed.supergraphSdl,
  logging: false,
  transportEntries: {
    registrations: { options: { subscriptions: { kind: 'ws', location: '/graphql' } } },
  },
});
const server = createServer(gateway);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const gatewayUrl = `http://127.0.0.1:${server.address().port}/graphql`;

let failed = false;
async function check(name, body) {
  try {
    await body();
    console.log(`ok - ${name}`);
  } catch (error) {
    failed = true;
    console.log(`not ok - ${name}\n${error.stack}`);
  }
}

await check('a query mixing both subgraphs answers each domain, with errors on their own items', async () => {
  const { status, body } = await post(gatewayUrl, /* GraphQL */ `
    query Dashboard {
      domains {
        name
        owner
        registrationStatus { domainName state completed error { code } }
      }
    }
  `);
  assert.equal(status, 200, JSON.stringify(body));
  const rows = body.data.domains;
  assert.deepEqual(rows.map((row) => [row.name, row.owner]), DOMAINS.map((d) => [d.name, d.owner]));
  const states = rows.map((row) => row.registrationStatus?.state ?? null);
  assert.deepEqual(states, ['SUCCEEDED', 'PENDING', null, null, 'FAILED'], JSON.stringify(body));
  assert.equal(rows[0].registrationStatus.completed, true);
  assert.equal(rows[0].registrationStatus.domainName, 'demo-succeeded.com');
  assert.equal(rows[4].registrationStatus.error.code, 'registry_rejected');
  // nothing-here.com has no workflow: null, not an error. "not a domain" is refused
  // by the subgraph (which reports it at `_entities.3.registrationStatus`); the
  // others still answer. Hive Gateway's batch delegation (graphql-tools) drops
  // the list index when it relocates the error: it says which field and which
  // name, not which position.
  assert.equal(body.errors?.length, 1, JSON.stringify(body.errors));
  const [error] = body.errors;
  assert.deepEqual(error.path, ['domains', 'registrationStatus'], JSON.stringify(error));
  assert.equal(error.extensions.code, 'BAD_USER_INPUT', JSON.stringify(error));
  assert.equal(error.extensions.serviceName, 'registrations', JSON.stringify(error));
  assert.match(error.message, /"not a domain"/);
});

await check('a subscription through Hive Gateway streams from the subgraph until the workflow ends', async () => {
  const response = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({
      query: 'subscription { registrationStatusChanged(domain: "demo-succeeded.com") { sequence status { state completed } } }',
    }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(response.status, 200);
  const text = await response.text();
  const events = text
    .split('\n')
    .filter((line) => line.startsWith('data:') && line.length > 'data:'.length)
    .map((line) => JSON.parse(line.slice(5)))
    .filter((payload) => payload.data || payload.errors);
  assert.deepEqual(
    events.map((event) => event.data?.registrationStatusChanged?.status),
    [{ state: 'SUCCEEDED', completed: true }],
    text,
  );
});

await check('nothing left loopback', async () => {
  assert.deepEqual(refusedConnections, []);
});

await gateway[Symbol.asyncDispose]?.();
server.close();
server.closeAllConnections();
await domains.close();
process.exit(failed ? 1 : 0);
