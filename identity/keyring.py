"""The one key-management module: pseudonyms (`userRef`) and field encryption.

Events and topic keys never carry a raw `userId`; they carry
`userRef = HMAC-SHA256(tenant pseudonym key, userId)`. Personal-data fields (comments)
are encrypted with AES-256-GCM before they are produced (brief §4), and so are the
personal and secret columns of accounts (email, display name, TOTP seed) before they
are stored.

`LocalKeyring` is the default: one random 256-bit master secret in a 0600 file under
`settings.keys_dir`, from which per-tenant keys are derived with HKDF-SHA256. Anything
else (a KMS) implements the `Keyring` protocol instead.

Invariants:
- per-tenant keys are derived with the tenant id in the HKDF `info`, so no key, pseudonym
  or ciphertext of one tenant is usable for another; ciphertexts also bind the tenant id
  as associated data;
- a pseudonym is deterministic for (tenant, user) and reveals nothing about the user id;
- secret files are created exactly once, atomically, with mode 0600, even when several
  processes start together (`read_or_create_secret_file`, shared with `signing_keys`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from identity.principal import is_valid_id

KEYRING_FILE = "keyring.json"

_BLOB_V1 = b"\x01"
# What may be sealed; the names are part of each key's derivation ("comment" keeps the
# key and associated data that comments always had).
SEALED_FIELDS = frozenset({"comment", "totp_secret", "email", "display_name", "refresh_successor"})
_NONCE_LEN = 12
_TAG_LEN = 16
_MASTER_LEN = 32


class KeyringError(Exception):
    """A key-management failure; `code` says what an operator should look at."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DecryptionError(KeyringError):
    """A ciphertext that is tampered, truncated, of an unknown version or another tenant's."""

    def __init__(self, message: str) -> None:
        super().__init__("decrypt_failed", message)


class Keyring(Protocol):
    def pseudonym(self, tenant_id: str, user_id: str) -> str: ...

    def encrypt_comment(self, tenant_id: str, plaintext: str) -> bytes: ...

    def decrypt_comment(self, tenant_id: str, blob: bytes) -> str: ...

    def encrypt_field(self, tenant_id: str, field: str, plaintext: str) -> bytes: ...

    def decrypt_field(self, tenant_id: str, field: str, blob: bytes) -> str: ...


# --- secret files ------------------------------------------------------------------


def read_or_create_secret_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """Return `path`'s content, first creating it with `make()` if it does not exist.

    Race-safe across processes: the content is written to a private temp file and
    published with `os.link`, which fails if `path` already exists. The loser of a race
    discards its own secret and reads the winner's, so every process ends up with the
    same keys and a reader never sees a half-written file.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        tmp = _write_private_temp(path, make())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won; its file is the one everybody uses
        finally:
            tmp.unlink()
        _fsync_dir(path.parent)
    return read_secret_file(path)


def read_secret_file(path: Path) -> bytes:
    """Read a secret file, refusing one that group or others can read or write."""
    mode = os.stat(path).st_mode
    if stat.S_IMODE(mode) & 0o077:
        raise KeyringError(
            "insecure_key_file",
            f"{path} has mode {stat.S_IMODE(mode):04o}; secret files must be 0600",
        )
    return path.read_bytes()


def replace_secret_file(path: Path, content: bytes) -> None:
    """Atomically replace `path` (temp file + rename), keeping mode 0600."""
    tmp = _write_private_temp(path, content)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _write_private_temp(path: Path, content: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        # The umask may only remove bits, but be explicit: the mode is the contract.
        os.fchmod(fd, 0o600)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink()
        raise
    os.close(fd)
    return tmp


def _fsync_dir(directory: Path) -> None:
    # Makes the new directory entry durable, so a crash cannot "un-create" a key that
    # tokens or ciphertexts already depend on.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the local keyring ---------------------------------------------------------------


class LocalKeyring:
    """Per-tenant keys derived from one local master secret."""

    __slots__ = ("_field_keys", "_master", "_pseudonym_keys")

    def __init__(self, master_secret: bytes) -> None:
        if len(master_secret) != _MASTER_LEN:
            raise ValueError(f"master secret must be {_MASTER_LEN} bytes")
        self._master = master_secret
        # Derived keys are cached: pseudonyms are computed once per event on hot paths.
        self._pseudonym_keys: dict[str, bytes] = {}
        self._field_keys: dict[tuple[str, str], AESGCM] = {}

    def __repr__(self) -> str:
        return "LocalKeyring(<secret>)"

    @classmethod
    def generate(cls) -> LocalKeyring:
        """An in-memory keyring with a fresh master secret (tests, throwaway tools)."""
        return cls(secrets.token_bytes(_MASTER_LEN))

    @classmethod
    def load_or_create(cls, keys_dir: Path) -> LocalKeyring:
        raw = read_or_create_secret_file(keys_dir / KEYRING_FILE, _new_keyring_file)
        try:
            doc = json.loads(raw)
            master = base64.b64decode(doc["master_secret"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise KeyringError(
                "corrupt_key_file", f"{keys_dir / KEYRING_FILE} is not a keyring file"
            ) from exc
        if doc.get("version") != 1 or len(master) != _MASTER_LEN:
            raise KeyringError(
                "corrupt_key_file", f"{keys_dir / KEYRING_FILE} has an unsupported format"
            )
        return cls(master)

    def pseudonym(self, tenant_id: str, user_id: str) -> str:
        """`userRef`: hex HMAC-SHA256 of the user id under the tenant's pseudonym key."""
        if not is_valid_id(user_id):
            raise ValueError("user_id is not a valid id")
        key = self._pseudonym_keys.get(tenant_id)
        if key is None:
            key = self._derive(b"pseudonym", tenant_id)
            self._pseudonym_keys[tenant_id] = key
        return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()

    def encrypt_comment(self, tenant_id: str, plaintext: str) -> bytes:
        return self.encrypt_field(tenant_id, "comment", plaintext)

    def decrypt_comment(self, tenant_id: str, blob: bytes) -> str:
        return self.decrypt_field(tenant_id, "comment", blob)

    def encrypt_field(self, tenant_id: str, field: str, plaintext: str) -> bytes:
        """`0x01 || nonce(12) || AES-256-GCM(ciphertext || tag)`, bound to tenant and field.

        Each field has its own key and associated data, so a sealed TOTP seed cannot be
        swapped into an email column (or another tenant's row) and opened there."""
        nonce = secrets.token_bytes(_NONCE_LEN)
        sealed = self._aead(tenant_id, field).encrypt(
            nonce, plaintext.encode(), _aad(tenant_id, field)
        )
        return _BLOB_V1 + nonce + sealed

    def decrypt_field(self, tenant_id: str, field: str, blob: bytes) -> str:
        if len(blob) < 1 + _NONCE_LEN + _TAG_LEN:
            raise DecryptionError("ciphertext is truncated")
        if blob[:1] != _BLOB_V1:
            raise DecryptionError(f"unknown ciphertext version {blob[0]}")
        nonce, sealed = blob[1 : 1 + _NONCE_LEN], blob[1 + _NONCE_LEN :]
        try:
            plain = self._aead(tenant_id, field).decrypt(nonce, sealed, _aad(tenant_id, field))
        except InvalidTag:
            # Deliberately one message for tamper and wrong tenant: which one it was
            # is not something to reveal.
            raise DecryptionError("ciphertext failed authentication") from None
        return plain.decode()

    def _aead(self, tenant_id: str, field: str) -> AESGCM:
        if field not in SEALED_FIELDS:
            raise ValueError(f"unknown sealed field {field!r}")
        aead = self._field_keys.get((tenant_id, field))
        if aead is None:
            aead = AESGCM(self._derive(field.encode(), tenant_id))
            self._field_keys[(tenant_id, field)] = aead
        return aead

    def _derive(self, purpose: bytes, tenant_id: str) -> bytes:
        if not is_valid_id(tenant_id):
            raise ValueError("tenant_id is not a valid id")
        # Tenant ids cannot contain ':', so the info string is unambiguous.
        info = b"sbp:" + purpose + b":v1:" + tenant_id.encode()
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self._master)


def _aad(tenant_id: str, field: str) -> bytes:
    return b"sbp:" + field.encode() + b":v1:" + tenant_id.encode()


def _new_keyring_file() -> bytes:
    master = base64.b64encode(secrets.token_bytes(_MASTER_LEN)).decode()
    return json.dumps({"version": 1, "master_secret": master}, indent=2).encode() + b"\n"
