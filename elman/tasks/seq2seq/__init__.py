"""Sequence to sequence with attention."""
