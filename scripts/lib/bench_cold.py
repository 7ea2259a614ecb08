"""Cold starts under a fake Lambda Runtime API, for scripts/bench-cold (which builds the
binaries, starts moto and the other parts, and passes the variants here as JSON).

Each run spawns one function process, serves it `events` API Gateway events, one per
`GET .../invocation/next`, and records on one clock (CLOCK_MONOTONIC):
  init    spawn until the first `GET /2018-06-01/runtime/invocation/next`
  answer  spawn until the first response is posted
  first   the first event: handed over until its response is posted
  warm    the median of the same for the later events
and the process's peak RSS (VmHWM, read before it is killed). Variants run interleaved (one run of each in
turn, N rounds), so a busy moment of the machine spreads over all of them.

CPU shares: a cgroup v1 CPU quota (memory MB / 1769 of one core, Lambda's ratio). With
`share_from = "spawn"` the whole process runs at the share; with "invoke" it joins the
cgroup when it asks for its first event, so init runs at full CPU and invocations at the
share.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

API = "/2018-06-01/runtime"
CGROUP_ROOT = "/sys/fs/cgroup/cpu"
PERIOD_US = 100_000


def quota_for(memory_mb):
    return round(memory_mb / 1769 * PERIOD_US)


class Cgroup:
    """A cgroup v1 CPU group at one memory size's share; removed on close."""

    def __init__(self, memory_mb):
        self.path = f"{CGROUP_ROOT}/otp-bench-{os.getpid()}-{memory_mb}"
        os.mkdir(self.path)
        with open(f"{self.path}/cpu.cfs_period_us", "w") as f:
            f.write(str(PERIOD_US))
        with open(f"{self.path}/cpu.cfs_quota_us", "w") as f:
            f.write(str(quota_for(memory_mb)))

    def add(self, pid):
        with open(f"{self.path}/cgroup.procs", "w") as f:
            f.write(str(pid))

    def close(self):
        try:
            os.rmdir(self.path)
        except OSError as error:
            print(f"bench-cold: could not remove {self.path}: {error}", file=sys.stderr)


def cgroups_available():
    try:
        probe = Cgroup(1769)
    except OSError:
        return False
    probe.close()
    return True


class Run:
    def __init__(self, events, on_first_next):
        self.events = list(events)
        self.on_first_next = on_first_next
        self.next_at = []  # when each GET /next arrived
        self.handed_at = []  # when each event was handed over
        self.answered_at = []  # when each response was posted
        self.responses = []
        self.errors = []
        self.done = asyncio.Event()
        self.stop = asyncio.Event()


class RuntimeApi:
    """Just enough of the Lambda Runtime API, over HTTP/1.1 with keep-alive."""

    def __init__(self):
        self.run = None

    async def serve(self, reader, writer):
        try:
            while True:
                request = await self.read_request(reader)
                if request is None:
                    return
                method, path, body, arrived = request
                run = self.run
                if method == "GET" and path == f"{API}/invocation/next":
                    run.next_at.append(arrived)
                    if len(run.next_at) == 1 and run.on_first_next:
                        run.on_first_next()
                    if not run.events:
                        run.done.set()
                        await run.stop.wait()  # the process is killed meanwhile
                        return
                    index = len(run.handed_at)
                    event = run.events.pop(0)
                    deadline = int(time.time() * 1000) + 30_000
                    headers = {
                        "Lambda-Runtime-Aws-Request-Id": f"bench-{index}",
                        "Lambda-Runtime-Deadline-Ms": str(deadline),
                        "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
                        "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                    }
                    run.handed_at.append(time.clock_gettime_ns(time.CLOCK_MONOTONIC))
                    await self.respond(writer, 200, event, headers)
                elif method == "POST" and path.endswith("/response"):
                    run.answered_at.append(arrived)
                    run.responses.append(body)
                    await self.respond(writer, 202, b'{"status":"OK"}')
                elif method == "POST" and path.endswith("/error"):
                    run.errors.append(body.decode(errors="replace"))
                    await self.respond(writer, 202, b'{"status":"OK"}')
                    run.done.set()
                else:
                    await self.respond(writer, 404, b"{}")
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    @staticmethod
    async def read_request(reader):
        line = await reader.readline()
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers = {}
        while True:
            header = await reader.readline()
            if header in (b"\r\n", b"\n", b""):
                break
            name, value = header.decode("latin-1").split(":", 1)
            headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        return method, path, body, time.clock_gettime_ns(time.CLOCK_MONOTONIC)

    @staticmethod
    async def respond(writer, status, body, headers=None):
        head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def events_for(variant, count):
    """The variant's event, `count` times; each from its own client address and, for a
    send, to its own number, so that no limit of the service turns a later one away.
    The numbers are the variant's `phones` with `{n}` = 1000, 1001, ... (default
    "+1415555{n}"); a verify's is `{n}` = 9999 (no send's) when the variant names `phones`."""
    template = json.loads(variant["event_body"])
    phones = variant.get("phones", "+1415555{n}")
    events = []
    for i in range(count):
        event = json.loads(json.dumps(template))
        event["requestContext"]["identity"]["sourceIp"] = f"203.0.113.{1 + i}"
        body = json.loads(event["body"])
        if "code" not in body:
            body["phone"] = phones.format(n=1000 + i)
            body.pop("defaultCountry", None)
        elif "phones" in variant:
            body["phone"] = phones.format(n=9999)
        event["body"] = json.dumps(body)
        events.append(json.dumps(event).encode())
    return events


async def one_run(api, port, variant, cgroup, share_from, events, log):
    if variant.get("reset"):
        urllib.request.urlopen(urllib.request.Request(variant["reset"], method="DELETE"), timeout=10).read()
    env = dict(os.environ)
    env.update(variant.get("env", {}))
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            # Required by the runtime crate; empty, so the functions do not take the run
            # for Lambda itself (which refuses the memory store and the outbox).
            "AWS_LAMBDA_FUNCTION_NAME": "",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        }
    )
    procs = {}
    join_now = None
    if cgroup is not None and share_from == "invoke":
        join_now = lambda: cgroup.add(procs["pid"])  # noqa: E731
    run = Run(events, join_now)
    api.run = run
    # The only thread is this one, so the child may run Python code before exec.
    preexec = (lambda: cgroup.add(os.getpid())) if cgroup is not None and share_from == "spawn" else None
    spawned = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    proc = subprocess.Popen(variant["cmd"], env=env, stdout=log, stderr=log, preexec_fn=preexec)
    procs["pid"] = proc.pid
    try:
        await asyncio.wait_for(run.done.wait(), timeout=60)
    except asyncio.TimeoutError:
        run.errors.append("timed out")
    # VmHWM, not wait4's ru_maxrss: that one keeps the forked Python's high-water mark.
    peak_kib = peak_rss_kib(proc.pid)
    proc.kill()
    os.wait4(proc.pid, 0)
    proc.returncode = -9
    run.stop.set()
    await asyncio.sleep(0)
    if run.errors or len(run.answered_at) != len(run.handed_at) or not run.answered_at:
        raise RuntimeError(f"{variant['name']}: {run.errors or 'no answer'}")
    expect = variant.get("expect_status")
    for body in run.responses:
        status = json.loads(body).get("statusCode")
        if expect is not None and status != expect:
            raise RuntimeError(f"{variant['name']}: answered {status}, expected {expect}: {body[:300]!r}")
    ms = lambda ns: ns / 1e6  # noqa: E731
    latencies = [ms(a - h) for h, a in zip(run.handed_at, run.answered_at)]
    return {
        "init_ms": ms(run.next_at[0] - spawned),
        "answer_ms": ms(run.answered_at[0] - spawned),
        "first_ms": latencies[0],
        "warm_ms": statistics.median(latencies[1:]) if len(latencies) > 1 else None,
        "peak_rss_mib": peak_kib / 1024,
    }


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", required=True, help="JSON file: [{name, cmd, env, event, expect_status}]")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--shares", default="full,128", help="comma-separated: full or a memory size in MB")
    parser.add_argument("--share-from", choices=["spawn", "invoke"], default="spawn")
    parser.add_argument("--events", type=int, default=1, help="events served per run (the later ones: warm)")
    parser.add_argument("--out", required=True, help="JSON file of every run")
    parser.add_argument("--log", default=os.devnull)
    args = parser.parse_args()

    with open(args.variants) as f:
        variants = json.load(f)
    for variant in variants:
        with open(variant["event"], "rb") as f:
            variant["event_body"] = f.read()

    shares = args.shares.split(",")
    cgroups = {}
    if any(s != "full" for s in shares):
        if cgroups_available():
            for share in shares:
                if share != "full":
                    cgroups[share] = Cgroup(int(share))
        else:
            print("bench-cold: no writable cgroup v1 CPU controller here; full CPU only", file=sys.stderr)
            shares = ["full"]

    api = RuntimeApi()
    server = await asyncio.start_server(api.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    results = []
    try:
        with open(args.log, "ab") as log:
            for round_ in range(args.runs):
                for share in shares:
                    for variant in variants:
                        events = events_for(variant, args.events)
                        figures = await one_run(
                            api, port, variant, cgroups.get(share), args.share_from, events, log
                        )
                        figures.update({"variant": variant["name"], "share": share, "round": round_})
                        results.append(figures)
                print(f"bench-cold: round {round_ + 1} of {args.runs} done", file=sys.stderr)
    finally:
        server.close()
        for cgroup in cgroups.values():
            cgroup.close()
    with open(args.out, "w") as f:
        json.dump(
            {"runs": args.runs, "shares": shares, "share_from": args.share_from, "events": args.events,
             "variants": [v["name"] for v in variants], "results": results},
            f,
            indent=1,
        )


if __name__ == "__main__":
    asyncio.run(main())
