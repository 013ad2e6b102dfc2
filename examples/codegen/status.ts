// A typed client with no GraphQL library at run time: the documents are written
// with codegen's `graphql()`, so their results and variables are TypeScript types
// (`updatedAt` is a `string`, `state` a union of the schema's states), checked by
// `tsc --noEmit`. The query goes over fetch, the subscription over graphql-sse.
// Usage (from examples/): npm run codegen && npm run typecheck && npm run build (esbuild
// bundles it into codegen/dist/status.mjs), then node codegen/dist/status.mjs [domain]
// (GATEWAY_URL defaults to http://127.0.0.1:8080; ACCOUNT_ID, when set, names the account)
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { createClient } from "graphql-sse";
import { graphql } from "./gql";

const gateway = `${process.env.GATEWAY_URL ?? "http://127.0.0.1:8080"}/graphql`;

const Status = graphql(`
  query Status($domain: String!, $accountId: ID) {
    registrationStatus(domain: $domain, accountId: $accountId) { domainName state completed updatedAt }
  }
`);
const Watch = graphql(`
  subscription Watch($domain: String!, $accountId: ID) {
    registrationStatusChanged(domain: $domain, accountId: $accountId) {
      sequence
      status { state completed updatedAt error { code message } }
    }
  }
`);

interface Answer<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** Sends a query; its result type follows from the document. */
export async function query<R, V>(document: TypedDocumentNode<R, V>, variables: V): Promise<R> {
  const response = await fetch(gateway, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const answer = (await response.json()) as Answer<R>;
  if (answer.errors?.length || !answer.data) {
    throw new Error(answer.errors?.map((e) => `${e.extensions?.code}: ${e.message}`).join("; ") ?? `HTTP ${response.status}`);
  }
  return answer.data;
}

/** Follows a subscription; each event is typed from the document. */
export async function* subscribe<R, V extends Record<string, unknown>>(document: TypedDocumentNode<R, V>, variables: V) {
  const client = createClient({ url: gateway, retryAttempts: 0 });
  try {
    for await (const result of client.iterate<R>({ query: print(document), variables })) {
      if (result.errors?.length || !result.data) throw new Error(JSON.stringify(result.errors));
      yield result.data;
    }
  } finally {
    client.dispose();
  }
}

/** How long ago an RFC 3339 `DateTime` was, in whole seconds. */
const ageOf = (dateTime: string): number => Math.round((Date.now() - new Date(dateTime).getTime()) / 1000);

const domain = process.argv[2] ?? "demo-succeeds.com";
const accountId = process.env.ACCOUNT_ID || null;
const { registrationStatus } = await query(Status, { domain, accountId });
if (!registrationStatus) throw new Error(`no registration for ${domain}`);
console.log(`query: ${registrationStatus.domainName} ${registrationStatus.state}, changed ${ageOf(registrationStatus.updatedAt)} s ago`);

let last: string | undefined;
for await (const { registrationStatusChanged: change } of subscribe(Watch, { domain, accountId })) {
  // `state` is "PENDING" | "IN_PROGRESS" | ...: a typo in a comparison fails tsc.
  if (change.status.state === "FAILED") console.log(`failed: ${change.status.error?.message}`);
  console.log(`#${change.sequence} ${domain} ${change.status.state}`);
  last = change.status.state;
}
console.log(`${domain} ended ${last}`);
process.exit(last === "SUCCEEDED" ? 0 : 1);
