"""Query and follow a registration from Python with gql, which fetches the
gateway's schema first (introspection) and checks each document against it.

Usage: python watch.py [domain]   (GATEWAY_URL defaults to http://127.0.0.1:8080;
ACCOUNT_ID, when set, names the account, else the gateway's default one)
"""

import asyncio
import os
import sys

from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.websockets import WebsocketsTransport

GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
DOMAIN = sys.argv[1] if len(sys.argv) > 1 else "demo-succeeds.com"
VARIABLES = {"domain": DOMAIN, "accountId": os.environ.get("ACCOUNT_ID") or None}

STATUS = gql(
    """query Status($domain: String!, $accountId: ID) {
      registrationStatus(domain: $domain, accountId: $accountId) { domainName state completed updatedAt }
    }"""
)
WATCH = gql(
    """subscription Watch($domain: String!, $accountId: ID) {
      registrationStatusChanged(domain: $domain, accountId: $accountId) {
        sequence
        status { state completed actionRequired { action } error { code message } }
      }
    }"""
)


async def main() -> int:
    http = AIOHTTPTransport(url=f"{GATEWAY}/graphql")
    async with Client(transport=http, fetch_schema_from_transport=True) as session:
        answer = await session.execute(STATUS, variable_values=VARIABLES)
        print("query:", answer["registrationStatus"])

    ws_url = GATEWAY.replace("http", "ws", 1) + "/graphql"
    websocket = WebsocketsTransport(url=ws_url)  # graphql-transport-ws
    state = None
    async with Client(transport=websocket) as session:
        async for change in session.subscribe(WATCH, variable_values=VARIABLES):
            event = change["registrationStatusChanged"]
            state = event["status"]["state"]
            print(f"#{event['sequence']} {DOMAIN} {state}")
    print(f"{DOMAIN} ended {state}")
    return 0 if state == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
