#!/usr/bin/env python3
"""Issue 10's validation-amplification shape against a running gateway.

Unused fragments, one with conflicting aliases spread many times by another:
before the validation bound, async-graphql expanded them with one error per
conflicting field per spread. Prints body size, wall time and answer size.

    registrar-gateway --listen 127.0.0.1:18080 &
    python3 bench/validation_amplification.py http://127.0.0.1:18080/graphql
"""
import json
import sys
import time
import urllib.error
import urllib.request


def document(spreads, aliases):
    conflicting = "a:x " + "a:y " * aliases
    spread = "q{...B} " * spreads
    return "{ __typename } fragment B on Query { %s} fragment X on Query { %s}" % (conflicting, spread)


def main(url):
    for spreads, aliases in [(200, 400), (450, 800)]:
        body = json.dumps({"query": document(spreads, aliases)}).encode()
        request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
        started = time.time()
        try:
            answer = urllib.request.urlopen(request).read()
        except urllib.error.HTTPError as error:
            answer = error.read()
        print(f"{len(body)} byte body -> {time.time() - started:.2f} s, {len(answer)} byte answer: {answer[:100]!r}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/graphql")
