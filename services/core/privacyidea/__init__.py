"""The privacyIDEA relying-party protocol mapped onto twofa's challenges (pi-validate.md).

What is domain here and not HTTP: how a plugin's ``user``/``realm`` names a twofa user
and protected area (``users``), how a transaction id names a challenge (``transactions``),
the service accounts behind ``/auth`` (``accounts``), and what ``/validate/check``,
``/validate/triggerchallenge`` and ``/validate/polltransaction`` decide (``validate``) —
always through the same challenge service the native ``/v1/challenges`` routes call.
"""
