"""SMS as a factor: the factor (``factor``), its codes (issue, check, send limits,
resend), their delivery by the SMS worker (``delivery``, ``ledger``), the providers
(``sender``, ``twilio_http``, ``vonage``) and the failover between them (``failover``,
``circuit``), and the providers' delivery receipts (``status``)."""
