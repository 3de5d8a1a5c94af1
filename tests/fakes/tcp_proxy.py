"""A loopback TCP proxy for network faults between a client and a real server.

    proxy = TcpProxy("127.0.0.1", server_port).start()   # listens on proxy.port
    proxy.drop()      # reset every open connection: "the connection dropped"
    proxy.freeze()    # open connections stay open but carry nothing more, either way: a
                      # silently dead link (NAT timeout, a half-dead server); new connections work
    proxy.stop()

Its event loop runs in a thread of its own, so sync and async tests use it alike."""

from __future__ import annotations

import asyncio
import socket
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter, list[bool]]] = []
        self._server: asyncio.AbstractServer | None = None
        self.connections = 0  # accepted so far

    def start(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        frozen = [False]
        self._links.append((writer, up_writer, frozen))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if frozen[0]:
                        continue  # swallowed: the link is dead but nobody says so
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if not frozen[0]:
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def _each(self, action: str) -> None:
        async def run() -> None:
            for client, upstream, frozen in self._links:
                if action == "freeze":
                    frozen[0] = True
                else:
                    for w in (client, upstream):
                        sock = w.get_extra_info("socket")
                        if sock is not None:  # RST instead of a polite FIN
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        w.close()
            if action == "drop":
                self._links.clear()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def drop(self) -> None:
        self._each("drop")

    def freeze(self) -> None:
        self._each("freeze")

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for client, upstream, _ in self._links:
                client.close()
                upstream.close()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
