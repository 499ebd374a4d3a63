"""A cheap OpenAI-compatible upstream for the overhead benchmark.

A raw asyncio Protocol speaking just enough HTTP/1.1 (keep-alive, Content-Length bodies,
pipelining tolerated) so that its own cost per request stays far below the gateway's: it
parses the request line, Content-Length and whether the body asks for `"stream": true`,
then answers from pre-encoded bytes.

    python benchmarks/_mock_upstream.py [--port 0] [--chunks 64] [--interval-ms 0]

It prints `PORT <n>` on stdout once it listens, and serves until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from typing import cast

__all__ = ["MockProtocol", "Replies", "serve"]

_STREAM_FLAG = re.compile(rb'"stream"\s*:\s*true')
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


def _response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _chunked(payload: bytes) -> bytes:
    """One frame of chunked transfer encoding."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class Replies:
    """Every answer the mock gives, encoded once at start."""

    def __init__(self, chunks: int, interval_s: float) -> None:
        base = {"id": "chatcmpl-mock", "created": 1700000000, "model": "mock"}
        usage = {"prompt_tokens": 9, "completion_tokens": chunks, "total_tokens": 9 + chunks}
        completion = base | {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "tok " * 16}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 16, "total_tokens": 25},
        }
        self.chat = _response("200 OK", json.dumps(completion, separators=(",", ":")).encode())
        self.models = _response("200 OK", b'{"object":"list","data":[{"id":"mock","object":"model","owned_by":"mock"}]}')
        self.not_found = _response("404 Not Found", b'{"error":{"message":"not found","type":"not_found"}}')

        def event(choices: list[dict[str, object]], **extra: object) -> bytes:
            body = base | {"object": "chat.completion.chunk", "choices": choices} | extra
            return _chunked(b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n")

        self.stream_head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        self.token = event([{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}])
        self.chunks = chunks
        self.interval_s = interval_s
        # The finish chunk, the usage chunk, [DONE], and the zero-length frame that ends the body.
        self.stream_tail = (
            event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            + event([], usage=usage)
            + _chunked(b"data: [DONE]\n\n")
            + b"0\r\n\r\n"
        )


class MockProtocol(asyncio.Protocol):
    def __init__(self, replies: Replies) -> None:
        self._replies = replies
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        # Streams are written by a task; later pipelined requests queue behind it.
        self._busy: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._busy is not None:
            self._busy.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._busy is None:
            self._drain()

    def _drain(self) -> None:
        """Answer every complete request in the buffer."""
        transport = self._transport
        while transport is not None and self._busy is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[: end + 2]
            match = _CONTENT_LENGTH.search(head)
            length = int(match.group(1)) if match else 0
            if len(self._buffer) < end + 4 + length:
                return
            body = self._buffer[end + 4 : end + 4 + length]
            self._buffer = self._buffer[end + 4 + length :]
            method, _, rest = head.partition(b" ")
            path = rest.partition(b" ")[0]
            if method == b"POST" and path.endswith(b"/chat/completions"):
                if _STREAM_FLAG.search(body):
                    self._busy = asyncio.get_running_loop().create_task(self._stream(transport))
                else:
                    transport.write(self._replies.chat)
            elif method == b"GET" and path.endswith(b"/models"):
                transport.write(self._replies.models)
            else:
                transport.write(self._replies.not_found)
            if _CLOSE.search(head):
                transport.close()
                return

    async def _stream(self, transport: asyncio.Transport) -> None:
        r = self._replies
        transport.write(r.stream_head + r.token)
        for _ in range(r.chunks - 1):
            # Yield (at least) between events so they leave as separate writes, as a model's
            # tokens would, and the gateway pays its per-event cost instead of parsing one buffer.
            await asyncio.sleep(r.interval_s)
            transport.write(r.token)
        await asyncio.sleep(r.interval_s)
        transport.write(r.stream_tail)
        self._busy = None
        self._drain()


async def serve(port: int, chunks: int, interval_s: float) -> None:
    loop = asyncio.get_running_loop()
    replies = Replies(chunks, interval_s)
    server = await loop.create_server(lambda: MockProtocol(replies), "127.0.0.1", port, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0: any free port)")
    parser.add_argument("--chunks", type=int, default=64, help="content chunks per streamed answer")
    parser.add_argument("--interval-ms", type=float, default=0.0, help="pause between streamed chunks (0: just yield)")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port, args.chunks, args.interval_ms / 1e3))
    else:
        uvloop.run(serve(args.port, args.chunks, args.interval_ms / 1e3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
