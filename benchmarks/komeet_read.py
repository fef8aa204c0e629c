"""Benchmark of reading a domain's accounts from Komeet: page after page, and at once.

    .venv/bin/python benchmarks/komeet_read.py
    .venv/bin/python benchmarks/komeet_read.py --accounts 10000 --latency 0.02

The Komeet stand-in is the third-party ``scim2-server`` command in its own process (its
default ServiceProviderConfig: filters, ``maxResults`` 1,000), loaded with ``--accounts``
accounts of one domain through SCIM Bulk. Each read goes through a fault-free proxy of
``komeet_sync.emulators.http_proxy`` in its own process, adding ``--latency`` seconds to
every request as a remote API would, and counting the requests it receives (``--stats``).
A read is ``KomeetClient.list_users`` for the domain, as ``komeet-sync sync`` does it:
discovery, then pages of ``userName ew "@DOMAIN"`` of 1,000 accounts (``maxResults``); the
sequential read asks for one page at a time (``--concurrency 1``), the concurrent one for
``--concurrency`` at once after the first. Both reads must return the same accounts in the
same order, and each read's requests must be its pages plus the discovery request. The
client's and the proxy's timeouts are ``--timeout`` (600 s) rather than 30: the stand-in
answers one page at a time, about 2 s of CPU each at 100,000 accounts, so a page asked for
with 7 others waits behind them.

The target is a wall time within 1.5x of ceil(pages / concurrency) x the round trip. What
a page costs scim2-server is measured in the same run: its CPU seconds during each read
(``/proc``), and the CPU of one request of one account (a pass over the whole domain: the
stand-in filters and sorts every account for each page). Because that cost does not
overlap (one process, one lock over its storage), the same pages are also read from a
*replay* of them: a server in its own process answering each page with its JSON as the
stand-in gave it, at once, behind the same proxy. The replay shows what the client does
when Komeet answers at the speed of the network; and the client's own floor is measured
beside it: the pages' JSON decoded with ``json.loads``, in this process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from machine import describe  # benchmarks/machine.py, beside this script

from komeet_sync.komeet.client import USER_ATTRIBUTES, KomeetClient
from komeet_sync.model.collector import collector_paused

DOMAIN = "bench.example"
TOKEN = "bench-token"
BIN = Path(sys.executable).parent
SCIM_JSON = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": SCIM_JSON}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"{process.args[0]} did not start; see {log}") from None
            time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def account(number: int) -> dict[str, Any]:
    email = f"person{number:06d}@{DOMAIN}"
    return {
        "schemas": [USER],
        "userName": email,
        "externalId": f"g{number}",
        "active": True,
        "name": {"givenName": f"Given{number}", "familyName": f"Family{number}"},
        "emails": [{"value": email, "type": "work", "primary": True}],
    }


def load(url: str, count: int) -> None:
    """``count`` accounts into the stand-in, 1,000 a Bulk request (its maxOperations)."""
    session = requests.Session()
    for first in range(0, count, 1000):
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"b{n}", "data": account(n)}
            for n in range(first, min(count, first + 1000))
        ]
        body = json.dumps({"schemas": [BULK], "Operations": operations})
        response = session.post(f"{url}/Bulk", data=body, headers=HEADERS, timeout=600)
        response.raise_for_status()
        statuses = {op["status"] for op in response.json()["Operations"]}
        assert statuses == {"201"}, statuses


class Proxy:
    """The latency proxy in its own process, for one read: its requests counted apart."""

    def __init__(
        self, upstream: str, latency: float, folder: Path, name: str, timeout: float
    ) -> None:
        self.stats_file = folder / f"proxy-{name}.json"
        log = folder / f"proxy-{name}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "komeet_sync.emulators.http_proxy", "--upstream", upstream,
             "--latency", str(latency), "--upstream-timeout", str(timeout),
             "--stats", str(self.stats_file)],
            stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.search(r"http://[\d.]+:\d+", line)
        if match is None:
            self.process.kill()
            raise SystemExit(f"the proxy did not start: {line!r}; see {log}")
        self.url = match.group(0)

    def stop(self) -> dict[str, Any]:
        """Stop it; what it received (``--stats``)."""
        self.process.terminate()
        self.process.wait(timeout=30)
        return json.loads(self.stats_file.read_text())


def read(path: str, concurrency: int, proxy: Proxy, server_pid: int, timeout: float) -> dict:
    """One read of the domain's accounts through ``proxy``, timed, its requests counted."""
    client = KomeetClient(f"{proxy.url}{path}", TOKEN, timeout=timeout)
    server_before, proxy_before = cpu_seconds(server_pid), cpu_seconds(proxy.process.pid)
    client_before = time.process_time()
    started = time.perf_counter()
    accounts = client.list_users([DOMAIN], concurrency=concurrency)
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    server_cpu = cpu_seconds(server_pid) - server_before
    proxy_cpu = cpu_seconds(proxy.process.pid) - proxy_before
    stats = proxy.stop()
    pages = sum(1 for method, where in stats["requests"] if where.endswith("/Users"))
    return {
        "accounts": accounts,
        "seconds": seconds,
        "requests": stats["received"],
        "pages": pages,
        "discovery": stats["received"] - pages,
        "most_in_flight": stats["most_in_flight"],
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "proxy_cpu": proxy_cpu,
    }


def round_trip(upstream: str, latency: float, folder: Path) -> float:
    """The median wall time of a request the stand-in answers at once (its discovery),
    through the latency proxy."""
    proxy = Proxy(upstream, latency, folder, "round-trip", 30.0)
    session = requests.Session()
    times = []
    for _ in range(21):
        started = time.perf_counter()
        session.get(f"{proxy.url}/read/v2/ServiceProviderConfig", headers=HEADERS, timeout=30)
        times.append(time.perf_counter() - started)
    proxy.stop()
    return statistics.median(times)


def page_costs(url: str, server_pid: int, accounts: int) -> tuple[float, float]:
    """Server CPU of a request for one account and for a full page (the read's query), the
    median of 3 each, at the start, the middle and the end of the listing."""
    session = requests.Session()
    costs = []
    for count in (1, 1000):
        samples = []
        for start in (1, max(1, accounts // 2), max(1, accounts - 999)):
            params = {
                "attributes": USER_ATTRIBUTES,
                "filter": f'userName ew "@{DOMAIN}"',
                "count": count,
                "startIndex": start,
            }
            before = cpu_seconds(server_pid)
            session.get(f"{url}/Users", params=params, headers=HEADERS, timeout=600)
            samples.append(cpu_seconds(server_pid) - before)
        costs.append(statistics.median(samples))
    return costs[0], costs[1]


# --- the replay: the same pages, answered at once ------------------------------------------


def serve_replay(pages_file: Path) -> None:
    """Answer ``GET .../ServiceProviderConfig`` and ``GET .../Users?startIndex=N`` with the
    bodies in ``pages_file`` (a JSON object: "config", and "pages" by startIndex), until
    killed; print one line saying where, once listening."""
    recorded = json.loads(pages_file.read_text())
    config = recorded["config"].encode()
    pages = {int(start): body.encode() for start, body in recorded["pages"].items()}

    class Replay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.endswith("/ServiceProviderConfig"):
                body = config
            else:
                start = int(parse_qs(parts.query).get("startIndex", ["1"])[0])
                body = pages[start]
            self.send_response(200)
            self.send_header("Content-Type", SCIM_JSON)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    server.daemon_threads = True
    print(f"Replaying on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def record(url: str, accounts: list[dict], folder: Path) -> Path:
    """The stand-in's discovery, and the read's pages as the stand-in listed them."""
    config = requests.get(f"{url}/ServiceProviderConfig", headers=HEADERS, timeout=30).text
    total = len(accounts)
    pages = {
        start: json.dumps(
            {
                "schemas": [LIST_RESPONSE],
                "totalResults": total,
                "itemsPerPage": len(accounts[start - 1 : start + 999]),
                "startIndex": start,
                "Resources": accounts[start - 1 : start + 999],
            }
        )
        for start in range(1, total + 1, 1000)
    }
    path = folder / "pages.json"
    path.write_text(json.dumps({"config": config, "pages": pages}))
    return path


# --- the run ----------------------------------------------------------------------------


def row(label: str, result: dict, floor: float) -> str:
    return (
        f"| {label} | {result['seconds']:.2f} s | {result['seconds'] / floor:.1f}x | "
        f"{result['requests']:,} ({result['pages']:,} pages + {result['discovery']}) | "
        f"{result['most_in_flight']} | {result['server_cpu']:.1f} s | "
        f"{result['client_cpu']:.1f} s | {result['proxy_cpu']:.1f} s |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds a page may take (KOMEET_SYNC_KOMEET_TIMEOUT): the stand-in answers "
        "one page at a time, so a page asked for at once waits behind the others",
    )
    parser.add_argument("--replay-pages", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay_pages is not None:
        serve_replay(args.replay_pages)
        return 0
    folder = Path(tempfile.mkdtemp(prefix="komeet-read-bench-"))
    port = free_port()
    server_log = folder / "scim2-server.log"
    server = subprocess.Popen(
        [str(BIN / "scim2-server"), "--port", str(port), "--bearer-token", TOKEN,
         "--dynamic-tenants"],
        stdout=subprocess.DEVNULL, stderr=server_log.open("w"),
    )  # fmt: skip
    replay: subprocess.Popen | None = None
    try:
        wait_for(port, server, server_log)
        upstream = f"http://127.0.0.1:{port}"
        direct = f"{upstream}/read/v2"
        started = time.perf_counter()
        load(direct, args.accounts)
        print(f"Loaded {args.accounts:,} accounts in {time.perf_counter() - started:.0f} s")
        pages = math.ceil(args.accounts / 1000)
        one, full = page_costs(direct, server.pid, args.accounts)
        print(f"scim2-server CPU a request: {one:.2f} s for 1 account, {full:.2f} s for 1,000")
        rtt = round_trip(upstream, args.latency, folder)
        floor = math.ceil(pages / args.concurrency) * rtt
        print(
            f"Round trip {rtt * 1000:.1f} ms; floor ceil({pages} / {args.concurrency}) x "
            f"{rtt * 1000:.1f} ms = {floor:.2f} s; target 1.5x = {1.5 * floor:.2f} s"
        )

        results: dict[str, dict] = {}
        for label, concurrency in (("concurrent", args.concurrency), ("sequential", 1)):
            proxy = Proxy(upstream, args.latency, folder, label, args.timeout)
            results[label] = read("/read/v2", concurrency, proxy, server.pid, args.timeout)
            print(f"scim2-server, {label}: {results[label]['seconds']:.1f} s", flush=True)
        accounts = results["concurrent"]["accounts"]
        assert len(accounts) == args.accounts
        assert [a["id"] for a in accounts] == [a["id"] for a in results["sequential"]["accounts"]]

        pages_file = record(direct, accounts, folder)
        bodies = list(json.loads(pages_file.read_text())["pages"].values())
        decoding = time.process_time()
        with collector_paused():  # as the read decodes them
            for body in bodies:
                json.loads(body)
        decoding = time.process_time() - decoding
        megabytes = sum(map(len, bodies)) / 1e6
        replay = subprocess.Popen(
            [sys.executable, __file__, "--replay-pages", str(pages_file)],
            stdout=subprocess.PIPE, stderr=(folder / "replay.log").open("w"), text=True,
        )  # fmt: skip
        assert replay.stdout is not None
        replay_url = re.search(r"http://[\d.]+:\d+", replay.stdout.readline())
        assert replay_url is not None, "the replay did not start"
        for label, concurrency in (("concurrent", args.concurrency), ("sequential", 1)):
            proxy = Proxy(
                replay_url.group(0), args.latency, folder, f"replay-{label}", args.timeout
            )
            result = read("/read/v2", concurrency, proxy, replay.pid, args.timeout)
            assert [a["id"] for a in result["accounts"]] == [a["id"] for a in accounts]
            results[f"replay {label}"] = result
            print(f"replay, {label}: {result['seconds']:.2f} s", flush=True)

        print()
        print(
            f"Accounts: {args.accounts:,} in {pages} pages of 1,000; latency "
            f"{args.latency * 1000:g} ms a request; concurrency {args.concurrency}; round "
            f"trip {rtt * 1000:.1f} ms; floor {floor:.2f} s; target {1.5 * floor:.2f} s"
        )
        print()
        print(
            "| read | wall time | / floor | requests at the proxy | most in flight | "
            "server CPU | client CPU | proxy CPU |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        names = {
            "concurrent": f"scim2-server, concurrent ({args.concurrency} in flight)",
            "sequential": "scim2-server, sequential (1 in flight)",
            "replay concurrent": f"replay, concurrent ({args.concurrency} in flight)",
            "replay sequential": "replay, sequential (1 in flight)",
        }
        for key, label in names.items():
            print(row(label, results[key], floor))
        print()
        for key in ("concurrent", "replay concurrent"):
            result = results[key]
            met = result["seconds"] <= 1.5 * floor and result["requests"] == pages + 1
            print(
                f"{names[key]}: {result['seconds']:.2f} s = {result['seconds'] / floor:.2f}x "
                f"the floor (target 1.5x), {result['requests']:,} requests for "
                f"{pages:,} pages + 1: {'met' if met else 'missed'}"
            )
        for kind in ("", "replay "):
            sequential, concurrent = results[f"{kind}sequential"], results[f"{kind}concurrent"]
            ratio = sequential["seconds"] / concurrent["seconds"]
            print(f"{kind or 'scim2-server '}sequential / concurrent: {ratio:.1f}x")
        server_page = results["concurrent"]["server_cpu"] / pages
        print(
            f"scim2-server CPU a page in the read: {server_page:.2f} s (a request for one "
            f"account {one:.2f} s, for a page of 1,000 {full:.2f} s)"
        )
        client_page = results["replay concurrent"]["client_cpu"] / pages * 1000
        print(
            f"Client CPU a page (replay, concurrent): {client_page:.1f} ms; decoding the "
            f"{pages} pages' JSON ({megabytes:.1f} MB) with json.loads: {decoding:.2f} s; "
            f"the least round trips (discovery, the first page, then the others): "
            f"{(2 + math.ceil((pages - 1) / args.concurrency)) * rtt:.2f} s"
        )
        print(describe("scim2-server", "requests"))
    finally:
        if replay is not None:
            replay.kill()
            replay.wait()
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
