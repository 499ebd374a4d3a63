"""The human-review queue for high-risk requests."""
