"""Language models: characters and words."""
