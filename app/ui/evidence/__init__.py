"""Evidence: clip player, thumbnails and the evidence page."""
