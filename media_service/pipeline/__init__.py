"""Pipelines: ordered lists of small steps over one explicit context."""
