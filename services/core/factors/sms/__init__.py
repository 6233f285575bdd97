"""SMS as a factor: the factor (``factor``), its codes (issue, check, send limits,
resend), their delivery by the SMS worker (``delivery``, ``ledger``), the provider
(``sender``, ``twilio_http``) and Twilio's status callbacks (``status``)."""
