"""Home Security Intelligence AI server: every model behind one aiohttp application."""

__version__ = "0.1.0"
