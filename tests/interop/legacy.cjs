// The legacy subscriptions-transport-ws client receives a finished workflow and the completion.
const { SubscriptionClient } = require("subscriptions-transport-ws");
const WebSocket = require("ws");

const client = new SubscriptionClient(`${process.env.GATEWAY_WS_URL}/graphql`, { reconnect: false }, WebSocket);
const seen = [];
const finish = (ok, detail) => {
  console.log(`graphql-ws (subscriptions-transport-ws client): ${detail}; ${ok ? 1 : 0} passed, ${ok ? 0 : 1} failed`);
  client.close();
  process.exit(ok ? 0 : 1);
};
client
  .request({ query: `subscription { registrationStatusChanged(domain: "demo-failed.com") { sequence status { state error { code } } } }` })
  .subscribe({
    next: (result) => seen.push(result),
    error: (error) => finish(false, `error ${JSON.stringify(error)}`),
    complete: () => {
      const change = seen[0]?.data?.registrationStatusChanged;
      const ok = seen.length === 1 && change.status.state === "FAILED" && change.status.error.code === "registry_rejected";
      finish(ok, `saw ${JSON.stringify(seen)}`);
    },
  });
