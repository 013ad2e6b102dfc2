// Subscriptions over plain HTTP with the clients people run: the graphql-sse
// reference client (GraphQL over SSE) and Apollo Client 4's HttpLink (multipart).
// Each streams a whole sandbox workflow; then graphql-sse drops its connection
// mid-workflow and resumes with `afterSequence` while Apollo keeps watching, and
// both must have seen every change with contiguous sequence numbers.
import { createClient } from "graphql-sse";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { advance, startWorkflow } from "../sim.mjs";

const gateway = `${process.env.GATEWAY_URL}/graphql`;
// "succeeds": PENDING, IN_PROGRESS 10 s later, SUCCEEDED 20 s after that.
const newWorkflow = (domain) => startWorkflow(domain, "succeeds");
const document = (domain, after) => `subscription {
  registrationStatusChanged(domain: "${domain}"${after === undefined ? "" : `, afterSequence: ${after}`}) {
    sequence resynced status { state } } }`;
const show = (change) => `${change.sequence}:${change.status.state}${change.resynced ? "(resynced)" : ""}`;
const WHOLE = "1:PENDING,2:IN_PROGRESS,3:SUCCEEDED";

let passed = 0;
let failed = 0;
function check(name, seen, expected) {
  const ok = seen === expected;
  ok ? passed++ : failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}: saw ${seen}${ok ? "" : `, expected ${expected}`}`);
}

const sse = createClient({ url: gateway, retryAttempts: 0 });

// 1. graphql-sse follows a whole workflow, the clock advanced after each event.
{
  await newWorkflow("interop-sse.com");
  const seen = [];
  for await (const result of sse.iterate({ query: document("interop-sse.com") })) {
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    const change = result.data.registrationStatusChanged;
    seen.push(show(change));
    if (change.status.state === "PENDING") await advance(10);
    if (change.status.state === "IN_PROGRESS") await advance(20);
  }
  check("graphql-sse streams a whole workflow", seen.join(","), WHOLE);
}

// 2. Apollo Client (HttpLink, multipart) watches a workflow; graphql-sse drops
// mid-workflow and resumes after the last sequence it saw.
{
  const domain = "interop-resume.com";
  await newWorkflow(domain);
  const apollo = new ApolloClient({ link: new HttpLink({ uri: gateway }), cache: new InMemoryCache() });
  const apolloSeen = [];
  let apolloProgress = () => {};
  const apolloDone = new Promise((resolve, reject) => {
    apollo.subscribe({ query: gql(document(domain)) }).subscribe({
      next: (result) => {
        if (result.error) return reject(result.error);
        apolloSeen.push(show(result.data.registrationStatusChanged));
        apolloProgress();
      },
      error: reject,
      complete: resolve,
    });
  });
  const apolloReached = (count) =>
    new Promise((resolve) => {
      apolloProgress = () => apolloSeen.length >= count && resolve();
      apolloProgress();
    });

  const sseSeen = [];
  let last;
  for await (const result of sse.iterate({ query: document(domain) })) {
    last = result.data.registrationStatusChanged;
    sseSeen.push(show(last));
    break; // the connection drops after the first event
  }
  await apolloReached(1);
  await advance(10);
  await apolloReached(2); // the change happened while graphql-sse was away
  for await (const result of sse.iterate({ query: document(domain, last.sequence) })) {
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    const change = result.data.registrationStatusChanged;
    sseSeen.push(show(change));
    if (change.status.state === "IN_PROGRESS") await advance(20);
  }
  await apolloDone;
  check("Apollo Client HttpLink (multipart) streams a whole workflow", apolloSeen.join(","), WHOLE);
  check("graphql-sse drops, resumes with afterSequence and loses nothing", sseSeen.join(","), WHOLE);
  apollo.stop();
}

sse.dispose();
console.log(`subscriptions over HTTP: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
