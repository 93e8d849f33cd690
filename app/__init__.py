"""Edge Station: turns a small PC into a camera station."""

__version__ = "0.1.0"
APP_NAME = "edge-station"
APP_DISPLAY_NAME = "Edge Station"
