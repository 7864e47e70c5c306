#!/usr/bin/env python3
"""Turns export.sql's output into the data file scenario.lua reads, signing one HS256 token per
user with JWT_SECRET (the claims `roster token` writes: sub, exp, iat). Standard library only.

    psql ... -f export.sql | JWT_SECRET=... gen_data.py --out data.txt

The data file has one record per line, fields separated by spaces, indexes 1-based for Lua:
    U <user> <user id> <token>
    O <org> <organization id> <owner: user index>
    M <user> <org>                  active memberships, shuffled (S1, S2, S5 single)
    L <user>                        users with at least one organization, shuffled (S3)
    B <user> <org>,<org>,...        users with --batch organizations, and those (S5 batch)
    W <org> <user>                  user is not a member of org (S4), orgs interleaved
    C <user> <org> <model id>       a resource check on a model of the org (S8), shuffled
    G <org> <user>                  user is a member of org but not its owner (S10), orgs
                                    interleaved
    S <user> <org>                  a member of the first organization, whose resources S9 lists
    V <token>                       a service's token for the tenant (S6)
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(secret: bytes, user_id: str, now: int, ttl: int, tenant: str = "") -> str:
    header = b64url(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    claims = {"sub": user_id, "exp": now + ttl, "iat": now}
    if tenant:
        claims["tid"] = tenant
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="-", help="export.sql output (default: stdin)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--ttl", type=int, default=7200, help="token lifetime in seconds")
    parser.add_argument("--batch", type=int, default=20, help="organizations per S5 batch")
    parser.add_argument("--write-pairs", type=int, default=40000, help="S4 (org, user) pairs")
    parser.add_argument("--seed", type=int, default=42, help="shuffle seed (same order every run)")
    parser.add_argument("--models", type=int, default=100, help="models per organization (S8)")
    args = parser.parse_args()

    secret = os.environ.get("JWT_SECRET", "").encode()
    if len(secret) < 32:
        print("gen_data.py: JWT_SECRET must be set, at least 32 bytes", file=sys.stderr)
        return 2

    users, orgs, owner_of, memberships, roles, tenant = [], [], {}, [], {}, ""
    with (sys.stdin if args.input == "-" else open(args.input)) as lines:
        for line in lines:
            fields = line.rstrip("\n").split("\t")
            if fields[0] == "U":
                users.append(fields[1])
            elif fields[0] == "O":
                orgs.append(fields[1])
                owner_of[fields[1]] = fields[3]
            elif fields[0] == "T":
                tenant = fields[1]
            elif fields[0] == "M":
                memberships.append((fields[1], fields[2]))
                roles[(fields[1], fields[2])] = fields[3]
    if not users or not orgs or not memberships:
        print("gen_data.py: no users, organizations or memberships in the input", file=sys.stderr)
        return 1

    user_index = {u: i + 1 for i, u in enumerate(users)}
    org_index = {o: i + 1 for i, o in enumerate(orgs)}
    rng = random.Random(args.seed)
    now = int(time.time())

    members = [(user_index[u], org_index[o]) for u, o in memberships]
    rng.shuffle(members)
    orgs_of = {}
    members_of = {}
    for u, o in members:
        orgs_of.setdefault(u, []).append(o)
        members_of.setdefault(o, set()).add(u)
    listers = sorted(orgs_of)
    rng.shuffle(listers)
    batchers = [u for u in sorted(orgs_of) if len(orgs_of[u]) >= args.batch]

    # Round r takes the r-th non-member of every organization, so that consecutive pairs (and
    # concurrent connections) spread over all organizations instead of queueing on one row.
    outsiders = []
    for o in range(1, len(orgs) + 1):
        candidates = [u for u in range(1, len(users) + 1) if u not in members_of.get(o, ())]
        rng.shuffle(candidates)
        outsiders.append((o, candidates))
    pairs = []
    for r in range(max(len(c) for _, c in outsiders)):
        for o, candidates in outsiders:
            if r < len(candidates) and len(pairs) < args.write_pairs:
                pairs.append((o, candidates[r]))
        if len(pairs) >= args.write_pairs:
            break

    # S10: every non-owner membership, one organization after another in each round.
    by_org = {}
    for u, o in members:
        if roles[(users[u - 1], orgs[o - 1])] != "owner":
            by_org.setdefault(o, []).append(u)
    group_pairs = []
    for r in range(max((len(v) for v in by_org.values()), default=0)):
        for o in sorted(by_org):
            if r < len(by_org[o]):
                group_pairs.append((o, by_org[o][r]))
    s9_user = by_org.get(1, [None])[0]

    with open(args.out, "w") as out:
        for i, u in enumerate(users, 1):
            out.write(f"U {i} {u} {sign(secret, u, now, args.ttl)}\n")
        for i, o in enumerate(orgs, 1):
            out.write(f"O {i} {o} {user_index[owner_of[o]]}\n")
        for u, o in members:
            out.write(f"M {u} {o}\n")
        for u in listers:
            out.write(f"L {u}\n")
        for u in batchers:
            out.write(f"B {u} {','.join(str(o) for o in orgs_of[u][:args.batch])}\n")
        for o, u in pairs:
            out.write(f"W {o} {u}\n")
        for u, o in members:
            out.write(f"C {u} {o} m{u % args.models}\n")
        for o, u in group_pairs:
            out.write(f"G {o} {u}\n")
        if s9_user is not None:
            out.write(f"S {s9_user} 1\n")
        if tenant:
            out.write(f"V {sign(secret, 'service:bench', now, args.ttl, tenant)}\n")
    print(
        f"data: {len(users)} users, {len(orgs)} organizations, {len(members)} memberships, "
        f"{len(batchers)} users with {args.batch}+ organizations, {len(pairs)} write pairs",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
