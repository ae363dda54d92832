"""Turning one security event into objects, a description and a risk assessment."""
