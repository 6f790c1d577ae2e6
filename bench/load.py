"""Load generators: wrk when installed (else a small asyncio HTTP/1.1 client), and timed requests.

Every throughput sample also counts the response statuses, so a run that was
answered 429 or 500 instead of the expected status is caught, not reported as fast.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

CONNECTIONS = 8
RESULT_MARK = "BENCH_JSON "

# wrk runs response() in each of its threads; done() adds the threads' counts up.
WRK_SCRIPT = """\
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  local fields = {}
  for status, count in pairs(total) do
    table.insert(fields, string.format('"%d":%d', status, count))
  end
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"statuses":{%s}}\\n',
    "RESULT_MARK", summary.requests, summary.duration, table.concat(fields, ",")))
end
""".replace("RESULT_MARK", RESULT_MARK)


@dataclass(frozen=True)
class Sample:
    """One throughput run against one URL."""

    requests_per_second: float
    statuses: dict[int, int]

    def share(self, status: int) -> float:
        total = sum(self.statuses.values())
        return self.statuses.get(status, 0) / total if total else 0.0


class LoadGenerator:
    """Drive one URL as hard as CONNECTIONS keep-alive connections can for a few seconds."""

    def __init__(self, directory: Path, prefer: str = "auto") -> None:
        self.wrk = shutil.which("wrk") if prefer in ("auto", "wrk") else None
        if prefer == "wrk" and self.wrk is None:
            raise RuntimeError("wrk was asked for but is not installed (apt-get install wrk).")
        self.why_python = "wrk not installed" if prefer == "auto" else "--client python"
        self.script = directory / "statuses.lua"
        self.script.write_text(WRK_SCRIPT)

    @property
    def name(self) -> str:
        if self.wrk is None:
            return f"python asyncio client ({CONNECTIONS} connections; {self.why_python})"
        return f"{wrk_version(self.wrk)} (1 thread, {CONNECTIONS} connections)"

    def run(self, url: str, seconds: float, headers: dict[str, str] | None = None) -> Sample:
        if self.wrk is None:
            return asyncio.run(python_load(url, seconds, headers or {}))
        return self.run_wrk(url, seconds, headers or {})

    def run_wrk(self, url: str, seconds: float, headers: dict[str, str]) -> Sample:
        command = [self.wrk, "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s"]
        command += ["--timeout", "5s", "-s", str(self.script)]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        finished = subprocess.run(
            [*command, url], capture_output=True, text=True, timeout=seconds + 30
        )
        for line in finished.stdout.splitlines():
            if line.startswith(RESULT_MARK):
                found = json.loads(line.removeprefix(RESULT_MARK))
                return Sample(
                    found["requests"] / (found["duration_us"] / 1e6),
                    {int(status): count for status, count in found["statuses"].items()},
                )
        raise RuntimeError(f"wrk printed no result for {url}: {finished.stdout}{finished.stderr}")


def wrk_version(binary: str) -> str:
    # `wrk -v` prints its banner and exits 1.
    banner = subprocess.run([binary, "-v"], capture_output=True, text=True).stdout
    words = banner.split()
    return f"wrk {words[1]}" if len(words) > 1 else "wrk"


async def python_load(url: str, seconds: float, headers: dict[str, str]) -> Sample:
    """The fallback: CONNECTIONS asyncio connections sending the same GET back to back."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    deadline = started + seconds

    async def connection() -> None:
        reader = writer = None
        while time.perf_counter() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                status, keep_alive = await read_response(reader)
                statuses[status] += 1
            except (OSError, asyncio.IncompleteReadError, ValueError):
                keep_alive = False  # a failed request counts no status; reconnect
            if not keep_alive and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - started
    return Sample(sum(statuses.values()) / elapsed, dict(statuses))


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the connection stays open."""
    status = int((await reader.readline()).split()[1])
    length, chunked, keep_alive = 0, False, True
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            keep_alive = value != "close"
    if chunked:
        while size := int((await reader.readline()).strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readline()
    elif length:
        await reader.readexactly(length)
    return status, keep_alive
