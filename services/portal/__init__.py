"""The reference self-service portal: the user guide's pages on top of the twofa API.

An HTTP client of the API and nothing more: it never imports ``services.core`` or
``services.api``; it holds its own API key (scopes ``enroll`` and ``challenge``) and
its own small account store for the demo first factor.
"""
