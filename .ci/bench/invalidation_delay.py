"""The delay from a psql change's commit to the API serving it, while S1 runs.

`make bench` runs this beside S1 with the cache on: it changes an organization's description
with raw SQL in psql, COUNT times, and after each commit reads GET /organizations/{id} on one
kept-alive connection until the new description is served. The delay is from psql confirming
the commit to the first response showing it: the cache's invalidation (the change log read by
the listener) plus one request through a loaded server.

    python3 invalidation_delay.py --data DATA --origin URL --database-url URL [--count N]

Prints one line: BENCH_DELAY n=... p50_ms=... p99_ms=... max_ms=...
"""

import argparse
import http.client
import json
import subprocess
import sys
import time
import urllib.parse


def first_membership(path):
    """(token, organization id) of the data file's first membership (as gen_data.py writes it)."""
    users, orgs, member = {}, {}, None
    with open(path) as data:
        for line in data:
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "U":
                users[fields[1]] = fields[3]
            elif fields[0] == "O":
                orgs[fields[1]] = fields[2]
            elif fields[0] == "M" and member is None:
                member = (fields[1], fields[2])
    if member is None:
        sys.exit("no membership in the data file")
    return users[member[0]], orgs[member[1]]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--pause", type=float, default=0.03, help="seconds between changes")
    args = parser.parse_args()

    token, org = first_membership(args.data)
    origin = urllib.parse.urlparse(args.origin)
    api = http.client.HTTPConnection(origin.hostname, origin.port, timeout=5)
    headers = {"Authorization": f"Bearer {token}"}
    psql = subprocess.Popen(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", args.database_url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
    )

    def served_description():
        api.request("GET", f"/organizations/{org}", headers=headers)
        response = api.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit(f"GET /organizations/{org}: {response.status} {body[:200]!r}")
        return json.loads(body).get("description")

    delays = []
    stamp = int(time.time())
    for i in range(args.count):
        description = f"delay probe {stamp}-{i}"
        served_description()  # cached at the old version, so that the change must invalidate it
        psql.stdin.write(
            f"update roster.organizations set description = '{description}' where id = '{org}';\n"
            f"\\echo committed {i}\n"
        )
        while psql.stdout.readline().strip() != f"committed {i}":
            if psql.poll() is not None:
                sys.exit("psql ended")
        committed = time.monotonic()
        while served_description() != description:
            if time.monotonic() - committed > 5:
                sys.exit(f"change {i} not served within 5 s")
        delays.append((time.monotonic() - committed) * 1000)
        time.sleep(args.pause)
    psql.stdin.close()
    psql.wait()
    print(
        f"BENCH_DELAY n={len(delays)} p50_ms={percentile(delays, 0.5):.2f} "
        f"p99_ms={percentile(delays, 0.99):.2f} max_ms={max(delays):.2f}"
    )


if __name__ == "__main__":
    main()
