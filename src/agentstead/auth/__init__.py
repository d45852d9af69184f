"""Identity and access: tokens, OIDC, the principal, authorization, rate limits."""
