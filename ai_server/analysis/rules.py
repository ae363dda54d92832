"""Transitional: the rules scorer is the client library's (hsi_client.rules)."""

from hsi_client.rules import Quality, entities, quality_of, score

__all__ = ["Quality", "entities", "quality_of", "score"]
