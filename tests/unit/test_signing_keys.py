"""The platform key set: kids, JWKS, persistence, rotation and race-safe creation."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from identity.keyring import KeyringError
from identity.signing_keys import (
    SIGNING_KEYS_FILE,
    KeySet,
    KeySetError,
    SigningKey,
    expired_kids,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# The Ed25519 example key of RFC 8037, appendices A.1 to A.3.
RFC_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def write_key_file(keys_dir: Path, doc: dict[str, object]) -> None:
    path = keys_dir / SIGNING_KEYS_FILE
    path.write_text(json.dumps(doc))
    path.chmod(0o600)


def test_kid_is_the_rfc7638_thumbprint(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.from_private_bytes(_b64url_decode(RFC_D))
    assert SigningKey("any", private, datetime.now(UTC)).public_jwk()["x"] == RFC_X
    entry = {"kid": RFC_THUMBPRINT, "d": RFC_D, "created_at": "2025-01-01T00:00:00+00:00"}
    write_key_file(tmp_path, {"version": 1, "active_kid": RFC_THUMBPRINT, "keys": [entry]})
    # Loading recomputes each kid from its key and refuses a mismatch.
    assert KeySet.load_or_create(tmp_path).kids == [RFC_THUMBPRINT]


def test_jwks_is_public_only() -> None:
    keyset = KeySet.generate()
    keyset.rotate()
    jwks = keyset.jwks()
    assert len(jwks["keys"]) == 2
    for jwk in jwks["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}
        assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == (
            "OKP",
            "Ed25519",
            "sig",
            "EdDSA",
        )
        assert len(_b64url_decode(jwk["x"])) == 32
    assert "private" not in repr(keyset.signing_key).lower()


def test_file_is_created_once_private_and_reloaded(tmp_path: Path) -> None:
    first = KeySet.load_or_create(tmp_path / "keys")
    again = KeySet.load_or_create(tmp_path / "keys")
    assert first.kids == again.kids
    assert first.signing_key.kid == again.signing_key.kid
    path = tmp_path / "keys" / SIGNING_KEYS_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_rotate_and_retire_persist(tmp_path: Path) -> None:
    keyset = KeySet.load_or_create(tmp_path)
    old = keyset.signing_key.kid
    new = keyset.rotate()
    reloaded = KeySet.load_or_create(tmp_path)
    assert reloaded.signing_key.kid == new
    assert set(reloaded.kids) == {old, new}
    keyset.retire(old)
    assert KeySet.load_or_create(tmp_path).kids == [new]
    assert stat.S_IMODE(os.stat(tmp_path / SIGNING_KEYS_FILE).st_mode) == 0o600
    assert keyset.verification_key(old) is None
    assert keyset.verification_key(new) is not None


def test_the_signing_key_cannot_be_retired() -> None:
    keyset = KeySet.generate()
    with pytest.raises(KeySetError) as info:
        keyset.retire(keyset.signing_key.kid)
    assert info.value.code == "active_key"


def test_retiring_an_unknown_kid_fails() -> None:
    with pytest.raises(KeySetError) as info:
        KeySet.generate().retire("nope")
    assert info.value.code == "unknown_key"


def test_rotations_by_two_holders_are_both_kept(tmp_path: Path) -> None:
    a = KeySet.load_or_create(tmp_path)
    b = KeySet.load_or_create(tmp_path)
    original = a.signing_key.kid
    kid_a = a.rotate()
    kid_b = b.rotate()  # b re-reads the file under the lock, so a's key survives
    assert set(KeySet.load_or_create(tmp_path).kids) == {original, kid_a, kid_b}


def test_refresh_is_a_no_op_when_nothing_changed(tmp_path: Path) -> None:
    keyset = KeySet.load_or_create(tmp_path)
    assert keyset.refresh() is False
    assert KeySet.generate().refresh() is False


def test_a_readable_key_file_is_refused(tmp_path: Path) -> None:
    KeySet.load_or_create(tmp_path)
    (tmp_path / SIGNING_KEYS_FILE).chmod(0o640)
    with pytest.raises(KeyringError) as info:
        KeySet.load_or_create(tmp_path)
    assert info.value.code == "insecure_key_file"


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"version": 1, "active_kid": "x", "keys": []},
        {"version": 1, "active_kid": "x", "keys": [{"kid": "x", "d": "AA", "created_at": "now"}]},
    ],
)
def test_a_corrupt_key_file_is_refused(tmp_path: Path, doc: dict[str, object]) -> None:
    write_key_file(tmp_path, doc)
    with pytest.raises(KeySetError) as info:
        KeySet.load_or_create(tmp_path)
    assert info.value.code == "corrupt_key_file"


def test_a_kid_that_does_not_match_its_key_is_refused(tmp_path: Path) -> None:
    KeySet.load_or_create(tmp_path)
    path = tmp_path / SIGNING_KEYS_FILE
    doc = json.loads(path.read_text())
    doc["keys"][0]["kid"] = doc["active_kid"] = "swapped"
    path.write_text(json.dumps(doc))
    with pytest.raises(KeySetError):
        KeySet.load_or_create(tmp_path)


def test_concurrent_first_use_from_threads_yields_one_key_set(tmp_path: Path) -> None:
    barrier = threading.Barrier(16)
    kids: list[str] = []

    def start() -> None:
        barrier.wait()
        kids.append(KeySet.load_or_create(tmp_path).signing_key.kid)

    threads = [threading.Thread(target=start) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(kids) == 16
    assert len(set(kids)) == 1


def test_concurrent_first_use_from_processes_yields_one_key_set(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from identity.signing_keys import KeySet; "
        "print(KeySet.load_or_create(Path(sys.argv[1])).signing_key.kid)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            env=env,
        )
        for _ in range(6)
    ]
    kids = {proc.communicate(timeout=60)[0].strip().decode() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert kids == {KeySet.load_or_create(tmp_path).signing_key.kid}


def test_keys_retire_once_every_token_they_signed_has_expired() -> None:
    t0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    first = SigningKey.generate(now=t0)
    second = SigningKey.generate(now=t0 + timedelta(minutes=60))
    third = SigningKey.generate(now=t0 + timedelta(minutes=70))
    keys = [third, first, second]
    horizon = timedelta(minutes=15, seconds=30)
    # `first` stopped signing at 60 min, when `second` was made; `second` at 70 min.
    assert expired_kids(keys, third.kid, t0 + timedelta(minutes=70), horizon) == set()
    assert expired_kids(keys, third.kid, t0 + timedelta(minutes=76), horizon) == {first.kid}
    assert expired_kids(keys, third.kid, t0 + timedelta(minutes=86), horizon) == {
        first.kid,
        second.kid,
    }
    # The signing key never retires, however old.
    assert third.kid not in expired_kids(keys, third.kid, t0 + timedelta(days=9), horizon)


def test_retire_expired_persists_what_it_removed(tmp_path: Path) -> None:
    keyset = KeySet.load_or_create(tmp_path)
    old = keyset.signing_key.kid
    keyset.rotate()
    assert keyset.retire_expired(timedelta(minutes=15)) == []  # the old one just stopped
    later = datetime.now(UTC) + timedelta(minutes=16)
    assert keyset.retire_expired(timedelta(minutes=15), now=later) == [old]
    assert old not in KeySet.load_or_create(tmp_path).kids
