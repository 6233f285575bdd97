"""kombu's Redis transport with one redis-py client per channel for its synchronous commands.

kombu builds a new ``redis.Redis`` for every synchronous command it sends: each publish,
each acknowledgement and the bookkeeping of unacknowledged messages around it. Building one
costs more than the command (redis-py fills its table of response callbacks every time),
which is CPU the API's publishing thread takes from the event loop and a worker from its
tasks. A client holds no connection of its own: it takes one from the channel's pool for
each command, so one client per pool serves every command of the channel.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        client = self._sync_client
        # kombu drops its pools after a connection error: a client of the old pool goes too.
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()  # type: ignore[misc]
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
