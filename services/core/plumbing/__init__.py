"""Plumbing every use case stands on: settings, clock, database and unit of work, the
context handed to use cases, encryption, batching, migrations and the messaging outbox.

Nothing here knows about tokens, factors or challenges.
"""
