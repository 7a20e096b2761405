"""Identity: tenancy, access tokens, RBAC and keys for every `sbp` service.

Who uses what:

- `principal`: the authenticated caller (`Principal`, `Role`) and the one id rule
  (`is_valid_id`) for tenant, building, floor and zone ids. Pure.
- `rbac`: the one RBAC SDK. `authorize(principal, action)` decides what a role may do;
  `building_access(...)` decides 404-versus-403 for a building. Every gateway route
  calls it, and so does every `sbp replay` command; nothing checks roles by hand.
  (The registry still uses its own basic auth for Confluent clients; moving it onto
  this SDK is open work.) Pure.
- `tokens`: mint and verify EdDSA access tokens (`typ: at+jwt`), and parse the
  `Authorization: Bearer` header. Failures are `TokenError` with an actionable code.
- `signing_keys`: the platform signing key set (Ed25519, several `kid`s so keys rotate
  without downtime) and its public JWKS for `/.well-known/jwks.json`.
- `keyring`: the one key-management module: per-tenant pseudonyms (`userRef`) and
  comment encryption, behind a `Keyring` protocol so a KMS can replace the local file.
- `dev_cli`: `sbp dev token`, which mints a token from the dev key set.

Invariants: `tenantId` and `userId` always come from a verified token, never from a
request body; secrets live in 0600 files under `settings.keys_dir`.
"""
