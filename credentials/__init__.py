"""Certificates: issuance, PDF, verification (page, bulk, API), revocation, reissue."""
