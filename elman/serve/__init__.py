"""The HTTP server: ``elman serve DIR [DIR...]`` (``pip install elman[serve]``)."""
