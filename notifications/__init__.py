"""Emails people get about their account, learning and certificates, and the choices they make about them."""
