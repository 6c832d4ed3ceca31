"""CoalescedWrites: writes of one loop step leave together, in order, and none waits past the step."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.coalesced_writes import CoalescedWrites


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


async def test_two_writes_in_one_step_are_one_write(transport: RecordingTransport) -> None:
    writes = CoalescedWrites(transport, asyncio.get_running_loop())
    writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert transport.calls == []
    writes.write(b"body")
    assert transport.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody")]
    await asyncio.sleep(0)
    assert transport.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody")]


async def test_a_lone_write_leaves_at_the_end_of_the_step(transport: RecordingTransport) -> None:
    writes = CoalescedWrites(transport, asyncio.get_running_loop())
    writes.write(bytearray(b"head"))
    await asyncio.sleep(0)
    assert transport.calls == [("write", b"head")]
    writes.write(b"a")
    writes.write(b"b")
    writes.write(b"c")  # held again after the first two left together
    await asyncio.sleep(0)
    assert transport.calls == [("write", b"head"), ("write", b"ab"), ("write", b"c")]


@pytest.mark.parametrize("end", ["close", "abort"])
async def test_ending_the_connection_sends_what_is_held_first(transport: RecordingTransport, end: str) -> None:
    writes = CoalescedWrites(transport, asyncio.get_running_loop())
    writes.write(b"head")
    getattr(writes, end)()
    assert transport.calls == [("write", b"head"), (end, None)]
    await asyncio.sleep(0)
    assert len(transport.calls) == 2


async def test_nothing_is_written_to_a_connection_already_closing(transport: RecordingTransport) -> None:
    writes = CoalescedWrites(transport, asyncio.get_running_loop())
    writes.write(b"head")
    transport.closing = True  # the client went away meanwhile
    await asyncio.sleep(0)
    assert transport.calls == []
    assert writes.is_closing()
    assert writes.get_extra_info("peername") == ("127.0.0.1", 1)
