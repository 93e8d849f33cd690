"""Shared pieces of the window: table models, formatting, translation, reasons, tasks, the station bridge, resources."""
