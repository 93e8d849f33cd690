"""Qt-free parts of kiosk mode: the operator PIN and the single-instance lock."""
