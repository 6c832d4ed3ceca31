"""Soak under faults: see README.md in this folder."""
