"""Helpers of the kiosk tests: a private D-Bus session bus and a stand-in desktop screen-saver service."""
