"""Mimetic init outside transformers' own model classes: :mod:`.timm`."""
