"""Alert rules at work: evaluation, lifecycle, events, notifications, templates. Qt-free.

Wiring (see ``app.station``)::

    dispatcher = Dispatcher()
    engine = AlertEngine(registry, store=store, dispatcher=dispatcher,
                         cameras=supervisor_feed.watched_cameras)
    engine.load_rules()          # again after every rule change
    engine.subscribe(bridge)     # the UI's desktop notifications and sound
    engine.start()               # or engine.tick(now) from the station's own loop
"""

from app.alerts.engine import AlertEngine, AlertEngineError, TickResult
from app.alerts.events import EventSink, MemoryEventSink, StoreEventSink
from app.alerts.notify import Delivery, Dispatcher, NotifyError, post_webhook, run_command
from app.alerts.templates import default_rules, templates

__all__ = [
    "AlertEngine", "AlertEngineError", "Delivery", "Dispatcher", "EventSink", "MemoryEventSink",
    "NotifyError", "StoreEventSink", "TickResult", "default_rules", "post_webhook", "run_command", "templates",
]
