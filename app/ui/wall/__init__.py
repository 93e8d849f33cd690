"""The camera wall: live preview tiles in a grid, shared by the admin window and the kiosk."""
