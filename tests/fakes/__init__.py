"""Local test doubles: FakeTwilio, FakeFCM (HTTP servers on 127.0.0.1) and PiAuthenticatorApp.

Import from the submodules (``tests.fakes.fake_twilio`` ...); nothing starts at import time.
"""
