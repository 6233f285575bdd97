"""Telling users, on another channel, when their second factors change."""
