"""The load generator: closed-loop TOTP logins over raw HTTP/1.1 keep-alive, one process.

Usage (the orchestrator calls it; it prints one JSON line):
  python -m bench.compare.loadgen --target twofa|twofa-pi|pi|hello --url http://127.0.0.1:PORT \
      --tokens FILE --state FILE --concurrency 8 --duration 10 [--warmup 2] [--flow 1|2|3] [--rate R]

Each of ``concurrency`` coroutines owns one keep-alive connection and runs complete logins
back to back (like wrk -c). A login is every request the server's flow needs:
  pi        POST /validate/check  user, realm, pass=<code>         (1 request)
  twofa-pi  the very same request, to twofa's privacyIDEA-compatible API
  twofa     --flow 1: POST /v1/challenges {user_id, area, code}      (1 request)
            --flow 2|3: POST /v1/challenges, [POST …/select,] POST …/verify (2 or 3 requests)
  hello  GET /                                                     (the stack's ceiling)

Tokens are walked as a ring; each token gets a wrong code and then a fresh valid code, so
half the logins are valid, no token's failure counter ever passes 1 (no back-off, no
lock-out on either server), and a token's valid code is always for a time step later than
its last accepted one (both servers refuse replays). A token whose fresh code
would be a replay is skipped and counted as ``starved``: that many tokens were too few for
the rate. The per-token state is kept in ``--state`` across runs.

The client is deliberately minimal (no HTTP library, uvloop, precomputed headers) so that
its own CPU stays small; it reports its CPU seconds so the report can show it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import resource
import struct
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

PERIOD = 30


def totp_code(key: bytes, step: int, digits: int = 6) -> str:
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def wrong_code(key: bytes, step: int) -> str:
    """A code that matches none of the steps the server may try (±2 around now)."""
    taken = {totp_code(key, s) for s in range(step - 2, step + 3)}
    candidate = int(totp_code(key, step))
    while True:
        candidate = (candidate + 500_001) % 1_000_000
        code = str(candidate).zfill(6)
        if code not in taken:
            return code


@dataclass
class Token:
    user: str
    token_id: str
    key: bytes
    last_valid_step: int = -1


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    valid_ok: int = 0
    wrong_rejected: int = 0
    unexpected: int = 0
    errors: int = 0
    starved: int = 0
    requests: int = 0
    samples: list[str] = field(default_factory=list)


class Conn:
    """One keep-alive HTTP/1.1 connection; enough of the protocol for these servers."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes, headers: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n".encode()
        self.writer.write(head + headers + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = 0
        close = False
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"connection" and value.strip().lower() == b"close":
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.writer.close()
            self.writer = None
        return status, data


class Driver:
    def __init__(self, args: argparse.Namespace, tokens: list[Token]) -> None:
        self.args = args
        self.tokens = tokens
        self.cursor = 0
        self.pending: Token | None = None
        u = urlsplit(args.url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.json_headers = b"Content-Type: application/json\r\n"
        if args.api_key:
            self.json_headers += f"Authorization: Bearer {args.api_key}\r\n".encode()
        self.form_headers = b"Content-Type: application/x-www-form-urlencoded\r\n"

    def next_login(self, stats: Stats) -> tuple[Token, str, bool]:
        """Odd logins: a wrong code for the next token; even: a fresh code for that same token.

        The valid login resets the failure counter the wrong one raised, so no token ever
        has more than one failure (no back-off, no lock-out, on either server).
        """
        step = int(time.time() // PERIOD)
        pending = self.pending
        if pending is not None:
            self.pending = None
            if pending.last_valid_step < step:
                pending.last_valid_step = step
                return pending, totp_code(pending.key, step), True
            stats.starved += 1
        for _ in range(len(self.tokens)):
            tok = self.tokens[self.cursor]
            self.cursor = (self.cursor + 1) % len(self.tokens)
            if tok.last_valid_step < step:
                self.pending = tok
                return tok, wrong_code(tok.key, step), False
            stats.starved += 1
        raise RuntimeError("every token is used up for this time step: seed more users")

    async def login(self, conn: Conn, stats: Stats) -> None:
        target = self.args.target
        if target == "hello":
            status, _ = await conn.request("GET", "/", b"", b"")
            stats.requests += 1
            if status == 200:
                stats.valid_ok += 1
            else:
                stats.unexpected += 1
            return
        tok, code, valid = self.next_login(stats)
        if target in ("pi", "twofa-pi"):
            body = f"user={tok.user}&realm={self.args.realm}&pass={code}".encode()
            status, data = await conn.request("POST", "/validate/check", body, self.form_headers)
            stats.requests += 1
            accepted = status == 200 and (b'"value": true' in data or b'"value":true' in data)
        elif self.args.flow == 1:
            body = json.dumps({"user_id": tok.user, "area": "sso", "code": code}).encode()
            status, data = await conn.request("POST", "/v1/challenges", body, self.json_headers)
            stats.requests += 1
            accepted = status == 200 and b'"verified"' in data
            if not accepted and status != 422:
                self._unexpected(stats, status, data)
                return
        else:
            body = json.dumps({"user_id": tok.user, "area": "sso"}).encode()
            status, data = await conn.request("POST", "/v1/challenges", body, self.json_headers)
            stats.requests += 1
            if status != 200:
                self._unexpected(stats, status, data)
                return
            cid = json.loads(data)["challenge_id"]
            if self.args.flow == 3:
                body = json.dumps({"token_id": tok.token_id}).encode()
                status, data = await conn.request("POST", f"/v1/challenges/{cid}/select", body, self.json_headers)
                stats.requests += 1
                if status != 200:
                    self._unexpected(stats, status, data)
                    return
                body = json.dumps({"code": code}).encode()
            else:
                body = json.dumps({"code": code, "token_id": tok.token_id}).encode()
            status, data = await conn.request("POST", f"/v1/challenges/{cid}/verify", body, self.json_headers)
            stats.requests += 1
            accepted = status == 200 and b'"verified"' in data
            if not accepted and status not in (200, 422):
                self._unexpected(stats, status, data)
                return
        if accepted == valid:
            if valid:
                stats.valid_ok += 1
            else:
                stats.wrong_rejected += 1
        else:
            self._unexpected(stats, status, data)

    @staticmethod
    def _unexpected(stats: Stats, status: int, data: bytes) -> None:
        stats.unexpected += 1
        if len(stats.samples) < 5:
            stats.samples.append(f"{status} {data[:200]!r}")

    async def worker(self, stats: Stats, start: float, stop: float, index: int = 0) -> None:
        conn = Conn(self.host, self.port)
        # --rate: each of the connections starts a login every concurrency/rate seconds at most,
        # the connections spread over that interval (in step they would queue behind each other)
        interval = self.args.concurrency / self.args.rate if self.args.rate > 0 else 0.0
        if interval:
            await asyncio.sleep(interval * index / self.args.concurrency)
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                break
            try:
                await self.login(conn, stats)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                stats.errors += 1
                if len(stats.samples) < 5:
                    stats.samples.append(repr(exc)[:200])
                conn = Conn(self.host, self.port)
                continue
            t1 = time.perf_counter()
            if t0 >= start:
                stats.latencies.append(t1 - t0)
            if interval and (left := t0 + interval - t1) > 0:
                await asyncio.sleep(left)
        if conn.writer is not None:
            conn.writer.close()

    async def run(self) -> dict[str, object]:
        measured = Stats()
        now = time.perf_counter()
        start, stop = now + self.args.warmup, now + self.args.warmup + self.args.duration
        cpu0 = _cpu()
        # One Stats for the whole run; latencies of logins started in the warm-up are dropped.
        await asyncio.gather(*(self.worker(measured, start, stop, i) for i in range(self.args.concurrency)))
        cpu = _cpu() - cpu0
        lat = sorted(measured.latencies)
        n = len(lat)

        def pct(q: float) -> float:
            return lat[min(n - 1, int(q * n))] * 1000 if n else float("nan")

        return {
            "target": self.args.target,
            "flow": self.args.flow,
            "concurrency": self.args.concurrency,
            "duration": self.args.duration,
            "logins": n,
            "logins_per_s": n / self.args.duration,
            "requests_total": measured.requests,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "mean_ms": (sum(lat) / n * 1000) if n else float("nan"),
            "valid_ok": measured.valid_ok,
            "wrong_rejected": measured.wrong_rejected,
            "unexpected": measured.unexpected,
            "errors": measured.errors,
            "starved": measured.starved,
            "samples": measured.samples,
            "loadgen_cpu_s": cpu,
            "loadgen_cores": cpu / (self.args.warmup + self.args.duration),
        }


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load_tokens(path: str, state_path: str | None) -> list[Token]:
    with open(path) as f:
        rows = json.load(f)
    tokens = [Token(r["user"], r.get("token_id", ""), bytes.fromhex(r["secret_hex"])) for r in rows]
    if state_path and os.path.exists(state_path):
        with open(state_path) as f:
            state = json.load(f)
        for tok, last in zip(tokens, state["tokens"]):
            tok.last_valid_step = last
    return tokens


def save_state(path: str, tokens: list[Token], cursor: int) -> None:
    with open(path, "w") as f:
        json.dump({"tokens": [t.last_valid_step for t in tokens], "cursor": cursor}, f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", choices=["twofa", "twofa-pi", "pi", "hello"], required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--tokens")
    ap.add_argument("--state")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--realm", default="bench")
    ap.add_argument("--flow", type=int, choices=[1, 2, 3], default=2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--rate", type=float, default=0, help="logins/s at most, over all connections (0: closed loop)")
    args = ap.parse_args()
    tokens = load_tokens(args.tokens, args.state) if args.tokens else []
    driver = Driver(args, tokens)
    if args.state and os.path.exists(args.state):
        with open(args.state) as f:
            driver.cursor = json.load(f).get("cursor", 0) % max(1, len(tokens))
    try:
        import uvloop

        result = uvloop.run(driver.run())
    except ImportError:
        result = asyncio.run(driver.run())
    if args.state and tokens:
        save_state(args.state, tokens, driver.cursor)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

