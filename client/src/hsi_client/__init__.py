"""Home Security Intelligence client: the server contract shared by the AI server and the integration."""

__version__ = "0.1.0"
