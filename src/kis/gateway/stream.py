"""Quote fan-out: many stream clients share one KIS subscription per symbol."""

from __future__ import annotations

import asyncio

from kis.gateway.quotes import Quote, QuoteCache

QUEUE_SIZE = 256


class QuoteFanout:
    def __init__(self, cache: QuoteCache) -> None:
        self.subscribers: dict[str, set[asyncio.Queue[Quote]]] = {}
        cache.listeners.append(self._publish)

    def _publish(self, quote: Quote) -> None:
        queues = self.subscribers.get(quote.symbol)
        if not queues:
            return
        for q in queues:
            if q.full():  # a slow client loses its oldest quotes, never the gateway's memory
                q.get_nowait()
            q.put_nowait(quote)

    def subscribe(self, symbols: list[str]) -> asyncio.Queue[Quote]:
        queue: asyncio.Queue[Quote] = asyncio.Queue(QUEUE_SIZE)
        for sym in symbols:
            self.subscribers.setdefault(sym, set()).add(queue)
        return queue

    def unsubscribe(self, symbols: list[str], queue: asyncio.Queue[Quote]) -> None:
        for sym in symbols:
            queues = self.subscribers.get(sym)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self.subscribers[sym]

    @property
    def clients(self) -> int:
        return len({id(q) for qs in self.subscribers.values() for q in qs})
