#!/usr/bin/env bash
# The status of a registration from a shell, with curl: a POST the way GraphQL
# clients send it, and the same query as a GET (cacheable, and easy to paste).
# Usage: examples/curl/status.sh [domain]   (GATEWAY_URL defaults to http://127.0.0.1:8080)
set -euo pipefail
gateway="${GATEWAY_URL:-http://127.0.0.1:8080}"
domain="${1:-demo-succeeded.com}"
query='query Status($domain: String!) { registrationStatus(domain: $domain) { domainName state completed updatedAt } }'

# POST: the body is JSON with the query and its variables.
body="$(printf '{"query": "%s", "variables": {"domain": "%s"}}' "$query" "$domain")"
answer="$(curl -sS --fail-with-body "$gateway/graphql" \
    -H 'content-type: application/json' -H 'accept: application/graphql-response+json' \
    -d "$body")"
echo "POST: $answer"

# GET: the same query in the URL (queries only; mutations are refused over GET).
answer="$(curl -sS --fail-with-body -G "$gateway/graphql" -H 'accept: application/json' \
    --data-urlencode "query=$query" --data-urlencode "variables={\"domain\": \"$domain\"}")"
echo "GET:  $answer"

# A GraphQL error comes back as JSON with "errors"; fail the script on one.
case "$answer" in
    *'"errors"'*) echo "the gateway answered with errors" >&2; exit 1 ;;
esac
