"""Signed webhooks (Standard Webhooks): the audit chain, delivered to subscribers in order."""
