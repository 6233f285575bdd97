"""SMS codes (issue, throttle, verify), their delivery by the SMS worker, and status callbacks."""
