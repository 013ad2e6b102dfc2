// The explorer page's script: GraphiQL 5 wired to the gateway it was served by.
//
// Everything it needs comes from the page itself: the opening tabs and settings
// from the JSON block the gateway renders (#explorer-config), the endpoints from
// the page's own URL (relative, so it works behind a path prefix; ws or wss by the
// page's scheme), Monaco's workers from files next to this one. No request leaves
// the page's origin.
import { createRoot } from "react-dom/client";
import { GraphiQL } from "graphiql";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import "graphiql/style.css";
import "./explorer.css";

// Monaco's three workers, bundled as separate files by build.mjs; their hashed
// names are compiled in (__WORKERS__), resolved next to this script.
const workers = __WORKERS__;
globalThis.MonacoEnvironment = {
  getWorker(_workerId, label) {
    const file = workers[label] ?? workers.editor;
    return new Worker(new URL(`./${file}`, import.meta.url), { name: label });
  },
};

const config = JSON.parse(document.getElementById("explorer-config").textContent);
const url = new URL("graphql", document.baseURI);
const subscriptionUrl = new URL(url);
subscriptionUrl.protocol = url.protocol === "https:" ? "wss:" : "ws:";
// Headers typed in the headers editor go with every HTTP request and, for
// subscriptions, in the websocket's connection_init payload (the toolkit does both).
const fetcher = createGraphiQLFetcher({
  url: url.href,
  subscriptionUrl: subscriptionUrl.href,
});

// GraphiQL 5.4 opens the first default tab's query but not its variables (its
// initial variables fall back to ""), so a first visit passes them explicitly; a
// returning visitor gets the tabs GraphiQL stored.
const firstVisit = localStorage.getItem("graphiql:tabs") === null;

createRoot(document.getElementById("graphiql")).render(
  <GraphiQL
    fetcher={fetcher}
    defaultTabs={config.tabs}
    defaultHeaders={config.headers}
    initialVariables={firstVisit ? config.tabs[0].variables : undefined}
    defaultEditorToolsVisibility={config.accessKeys ? "headers" : "variables"}
    // With introspection off there is no schema to ask for: the page says why.
    schema={config.introspection ? undefined : null}
    inputValueDeprecation
    // async-graphql answers every schema's description with the __Schema type's
    // own documentation: not worth showing at the top of the docs.
    schemaDescription={false}
  />,
);
