"""Music generation."""
