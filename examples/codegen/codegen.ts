// graphql-codegen's client preset: TypeScript types for the gateway's schema
// (the committed SDL, schema/schema.graphql) and a typed `graphql()` function for
// each folder's documents. Run from examples/: `npm run codegen` (writes the gql/
// folders, not committed), then `npm run typecheck`.
import type { CodegenConfig } from "@graphql-codegen/cli";

// The schema's custom scalars, as they travel in JSON. Without a mapping codegen
// types them `unknown`; `strictScalars` makes a scalar added to the schema fail codegen
// until it is mapped here.
const scalars = {
  // RFC 3339 text, e.g. "2026-12-07T06:30:00Z"; `new Date(value)` parses it.
  DateTime: "string",
  // Any JSON value (e.g. an upstream field this gateway passes through): narrow before use.
  JSON: "unknown",
};
const config = { scalars, strictScalars: true, enumsAsTypes: true, useTypeImports: true };

const codegen: CodegenConfig = {
  schema: "../schema/schema.graphql",
  generates: {
    "codegen/gql/": { preset: "client", documents: ["codegen/*.ts"], config },
    "apollo-react/src/gql/": { preset: "client", documents: ["apollo-react/src/*.tsx"], config },
  },
  ignoreNoDocuments: false,
};
export default codegen;
