"""The charts page: the station's metrics over time (pyqtgraph)."""
