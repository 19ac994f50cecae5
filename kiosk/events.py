"""Server-sent events from the agent to the kiosk page: scans accepted or refused (a reason code
only, never the read), the session opening and ending, and the reader's state.

Each event has a sequence number. A stream lasts at most `stream_seconds` and then ends; the
browser's EventSource reconnects by itself and sends `Last-Event-ID`, and the events it missed
meanwhile are replayed from a short history. Streams that end by themselves also keep the
server's shutdown quick (uvicorn waits for open responses).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator

HISTORY = 64
QUEUE_SIZE = 64
HEARTBEAT_SECONDS = 10.0


class EventBus:
    def __init__(self, stream_seconds: float = 20.0) -> None:
        self.stream_seconds = stream_seconds
        self._next_id = 1
        self._history: deque[tuple[int, dict]] = deque(maxlen=HISTORY)
        self._subscribers: set[asyncio.Queue[tuple[int, dict] | None]] = set()
        self._closed = False

    @property
    def last_id(self) -> int:
        return self._next_id - 1

    def publish(self, event: dict) -> int:
        """Send an event to every open stream (call on the event loop's thread)."""
        event_id = self._next_id
        self._next_id += 1
        self._history.append((event_id, event))
        for queue in list(self._subscribers):
            if queue.full():  # a stalled stream loses its oldest event, never blocks the kiosk
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait((event_id, event))
        return event_id

    def close(self) -> None:
        """End every stream now (shutdown)."""
        self._closed = True
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    def missed_since(self, last_seen: int) -> list[tuple[int, dict]]:
        return [(event_id, event) for event_id, event in self._history if event_id > last_seen]

    async def stream(self, last_event_id: str | None = None,
                     first: dict | None = None) -> AsyncIterator[str]:
        """One SSE response body: `first` (the current state), events missed since
        `last_event_id`, then live events until `stream_seconds` have passed."""
        queue: asyncio.Queue[tuple[int, dict] | None] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + self.stream_seconds
        try:
            yield "retry: 1000\n\n"
            if first is not None:
                yield format_event(None, first)
            if last_event_id and last_event_id.isdigit():
                for event_id, event in self.missed_since(int(last_event_id)):
                    yield format_event(event_id, event)
            else:
                # A new stream starts after the latest event; its id lets a reconnect resume.
                yield f"id: {self.last_id}\n\n"
            while not self._closed:
                remaining = ends_at - loop.time()
                if remaining <= 0:
                    return
                try:
                    item = await asyncio.wait_for(queue.get(),
                                                  min(remaining, HEARTBEAT_SECONDS))
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if item is None:
                    return
                yield format_event(*item)
        finally:
            self._subscribers.discard(queue)


def format_event(event_id: int | None, event: dict) -> str:
    lines = [] if event_id is None else [f"id: {event_id}"]
    lines.append("data: " + json.dumps(event, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"
