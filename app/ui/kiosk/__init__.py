"""The kiosk view: draws the wall, ticker, pop-ups and PIN pad, and forwards input to app.kiosk."""
