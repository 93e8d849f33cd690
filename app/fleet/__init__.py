"""The fleet: a station's identity (its stable id and name), its registration and heartbeat in the
shared database, and the ``edge-station fleet`` commands. Qt-free; the heartbeat runs on a thread of
its own. The rows are in :mod:`app.store.stations`, the rules (gone, takeover) in
:mod:`app.domain.fleet`; docs/fleet.md walks from one box to a fleet.
"""
