// The graphql-http server audit (the GraphQL-over-HTTP reference checks) against GATEWAY_URL.
import { serverAudits } from "graphql-http";

const url = `${process.env.GATEWAY_URL}/graphql`;
let failed = 0;
let passed = 0;
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  if (result.status === "ok") {
    passed += 1;
  } else {
    failed += 1;
    console.log(`${result.status} ${audit.id} ${audit.name}: ${result.reason}`);
  }
}
console.log(`graphql-http audit: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
