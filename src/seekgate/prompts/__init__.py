"""Versioned prompt packs."""
