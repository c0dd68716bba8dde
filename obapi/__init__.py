"""The Open Badges 3.0 API, provider side (1EdTech's "Host" role for our own credentials): discovery, OAuth 2.0
dynamic client registration, authorization code with PKCE, tokens, revocation, getCredentials and getProfile, so
that a learner can connect a backpack or an LER wallet to their account and take it back from the account page."""
