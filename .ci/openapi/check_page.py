"""Checks what headless Chromium made of GET /docs (see .ci/openapi-check.sh).

Usage: check_page.py ORIGIN DOCUMENT DOM NETLOG SCREENSHOT

- the page rendered the API: the DOM holds Swagger UI's block of every operation of DOCUMENT;
- it loaded /openapi.json and its assets from ORIGIN, and asked nothing of any other origin (the
  net log's page-initiated requests; Chromium's own background requests are not the page's);
- the screenshot is a real picture.
"""

import json
import sys

origin, document_path, dom_path, netlog_path, screenshot_path = sys.argv[1:6]
problems = []

document = json.load(open(document_path))
dom = open(dom_path, encoding="utf-8", errors="replace").read()
methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
operations = [
    (operation.get("tags", ["default"])[0], operation["operationId"])
    for item in document["paths"].values()
    for method, operation in item.items()
    if method in methods
]
missing = [op for tag, op in operations if f'id="operations-{tag}-{op}"' not in dom]
if not operations or missing:
    problems.append(f"the page shows {len(operations) - len(missing)} of {len(operations)} operations; missing: {missing}")

netlog = json.load(open(netlog_path))
event_types = {number: name for name, number in netlog["constants"]["logEventTypes"].items()}
page_requests = []
for event in netlog["events"]:
    params = event.get("params") or {}
    if event_types.get(event["type"]) == "URL_REQUEST_START_JOB" and params.get("initiator") == origin:
        page_requests.append(params["url"])
foreign = sorted({url for url in page_requests if not url.startswith(origin + "/")})
if foreign:
    problems.append(f"the page loaded resources from elsewhere: {foreign}")
for needed in ("/openapi.json", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js"):
    if origin + needed not in page_requests:
        problems.append(f"the page did not load {needed} (it loaded {sorted(set(page_requests))})")

with open(screenshot_path, "rb") as screenshot:
    picture = screenshot.read()
if not picture.startswith(b"\x89PNG") or len(picture) < 20_000:
    problems.append(f"{screenshot_path} is no real screenshot ({len(picture)} bytes)")

if problems:
    sys.exit("docs page: " + "; ".join(problems))
print(
    f"docs page: rendered all {len(operations)} operations from {len(set(page_requests))} "
    f"same-origin requests and none elsewhere; screenshot {screenshot_path} ({len(picture)} bytes)"
)
