"""The one event emitter every part uses."""

from __future__ import annotations

import logging

from app.domain.emitter import Emitter


def test_listeners_get_every_event_in_order_until_they_unsubscribe():
    em: Emitter[int] = Emitter("test")
    seen: list[tuple[str, int]] = []
    stop_a = em.subscribe(lambda e: seen.append(("a", e)))
    em.subscribe(lambda e: seen.append(("b", e)))
    em.emit(1)
    stop_a()
    em.emit(2)
    assert seen == [("a", 1), ("b", 1), ("b", 2)]
    assert len(em) == 1
    stop_a()  # twice is harmless
    assert len(em) == 1


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog):
    em: Emitter[str] = Emitter("station")
    seen: list[str] = []

    def broken(_e: str) -> None:
        raise RuntimeError("boom")

    em.subscribe(broken)
    em.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="app.domain.emitter"):
        em.emit("x")
    assert seen == ["x"]
    assert "station listener" in caplog.text and "boom" in caplog.text


def test_a_listener_may_unsubscribe_itself_while_being_called():
    em: Emitter[int] = Emitter("test")
    seen: list[int] = []
    holder: list = []

    def once(e: int) -> None:
        seen.append(e)
        holder[0]()

    holder.append(em.subscribe(once))
    em.emit(1)
    em.emit(2)
    assert seen == [1]
