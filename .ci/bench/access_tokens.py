#!/usr/bin/env python3
"""Adds Roster access tokens to the data file gen_data.py wrote, for S12: one per membership,
from POST /auth/token (the exchange of the member's identity token, organization_id given) on
the server under test. Standard library only.

    access_tokens.py --data data.txt --origin http://127.0.0.1:18181 [--workers 4]

The data file's "A" lines are replaced (so that a second run, e.g. after S4 and S10 made the
earlier tokens stale, gets current ones), in the order of its "M" lines, which is S1's:
    A <user> <org> <access token>
Exits non-zero, with the server's answer, on the first exchange that is not 200.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    origin = urllib.parse.urlsplit(args.origin)
    kept, tokens, orgs, members = [], {}, {}, []
    with open(args.data) as data:
        for line in data:
            fields = line.split()
            if not fields or fields[0] == "A":
                continue
            kept.append(line)
            if fields[0] == "U":
                tokens[fields[1]] = fields[3]
            elif fields[0] == "O":
                orgs[fields[1]] = fields[2]
            elif fields[0] == "M":
                members.append((fields[1], fields[2]))
    if not members:
        print("access_tokens.py: no memberships (M lines) in the data file", file=sys.stderr)
        return 1

    local = threading.local()

    def exchange(member):
        user, org = member
        body = urllib.parse.urlencode({
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": tokens[user],
            "subject_token_type": JWT_TOKEN_TYPE,
            "organization_id": orgs[org],
        })
        for attempt in range(2):
            if getattr(local, "conn", None) is None:
                local.conn = http.client.HTTPConnection(origin.hostname, origin.port, timeout=10)
            try:
                local.conn.request("POST", "/auth/token", body,
                                   {"Content-Type": "application/x-www-form-urlencoded"})
                response = local.conn.getresponse()
                answer = response.read()
                break
            except (http.client.HTTPException, OSError):
                local.conn.close()
                local.conn = None
                if attempt:
                    raise
        if response.status != 200:
            raise RuntimeError(f"POST /auth/token for user {user}, org {org}: {response.status} {answer[:300]!r}")
        return f"A {user} {org} {json.loads(answer)['access_token']}\n"

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            lines = list(pool.map(exchange, members))
    except Exception as error:  # noqa: BLE001 (reported, then the exit status)
        print(f"access_tokens.py: {error}", file=sys.stderr)
        return 1
    with open(args.data, "w") as data:
        data.writelines(kept)
        data.writelines(lines)
    print(f"access tokens: {len(lines)} exchanged in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
