"""PUSH as a factor: the privacyIDEA Authenticator protocol (../shared/spec/push-protocol.md),
server side.

``factor``: enrollment step 1 and selection; ``crypto``: keys, signatures and encodings
(§0); ``messages``: the challenge data (§4); ``enrollment``: the QR URL (§1) and step 2
(§2); ``login``: push challenges on select (presence options, fraud block, caps);
``endpoint``: answers, polling and Firebase-token updates (§5-§7); ``delivery``: what the
push worker does with ``push.requested``; ``sender``: the FCM and console providers.
"""
