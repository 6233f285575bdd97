"""Login challenges: does (user, area) need a second factor, which factor is used, and
did the code or the phone say yes."""
