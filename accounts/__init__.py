"""Users, roles, login/logout/registration/password reset, profile, user administration."""
