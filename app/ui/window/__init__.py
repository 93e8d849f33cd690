"""The admin window: the main window, its camera, settings and diagnostic dialogs, the status bar and tray."""
