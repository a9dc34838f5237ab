"""Who may log in to the dashboard: its users and their server-side sessions (users.py),
their passwords (passwords.py) and the lockouts failed logins cause (limits.py).

No HTTP here: the login pages are hindsight.dashboard's, the `hindsight users` commands
hindsight.cli's.
"""
