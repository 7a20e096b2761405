"""The local keyring: pseudonyms, comment encryption and race-safe secret files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity.keyring import (
    KEYRING_FILE,
    DecryptionError,
    Keyring,
    KeyringError,
    LocalKeyring,
    read_or_create_secret_file,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

# Built once: hypothesis runs many examples and a function-scoped fixture would be shared
# across them anyway.
KEYRING = LocalKeyring.generate()


def test_local_keyring_satisfies_the_protocol() -> None:
    keyring: Keyring = KEYRING
    assert keyring.pseudonym("acme", "u-1")


def test_pseudonym_is_deterministic_and_survives_a_reload(tmp_path: Path) -> None:
    first = LocalKeyring.load_or_create(tmp_path)
    again = LocalKeyring.load_or_create(tmp_path)
    assert first.pseudonym("acme", "u-1") == first.pseudonym("acme", "u-1")
    assert first.pseudonym("acme", "u-1") == again.pseudonym("acme", "u-1")


def test_pseudonym_differs_across_tenants_users_and_keyrings() -> None:
    refs = {
        KEYRING.pseudonym("acme", "u-1"),
        KEYRING.pseudonym("globex", "u-1"),
        KEYRING.pseudonym("acme", "u-2"),
        LocalKeyring.generate().pseudonym("acme", "u-1"),
    }
    assert len(refs) == 4


@settings(max_examples=200)
@given(
    tenant=st.text(alphabet=ID_ALPHABET, min_size=1, max_size=64),
    # At least 8 characters: a shorter id made only of hex digits can occur in a
    # 64-digit hex string by chance, which says nothing about leaking it.
    user=st.text(alphabet=ID_ALPHABET, min_size=8, max_size=64),
)
def test_pseudonym_never_reveals_the_user_id(tenant: str, user: str) -> None:
    ref = KEYRING.pseudonym(tenant, user)
    assert len(ref) == 64
    assert all(c in "0123456789abcdef" for c in ref)
    assert ref != user
    assert user.lower() not in ref


@pytest.mark.parametrize(("tenant", "user"), [("bad tenant", "u"), ("acme", "bad user"), ("", "u")])
def test_pseudonym_refuses_invalid_ids(tenant: str, user: str) -> None:
    with pytest.raises(ValueError):
        KEYRING.pseudonym(tenant, user)


@pytest.mark.parametrize("text", ["", "too hot on 3F", "zone 🔥 ünïcode " * 10])
def test_comment_round_trip(text: str) -> None:
    blob = KEYRING.encrypt_comment("acme", text)
    assert text.encode() not in blob or text == ""
    assert blob[0] == 1
    assert KEYRING.decrypt_comment("acme", blob) == text


def test_same_text_encrypts_differently() -> None:
    assert KEYRING.encrypt_comment("acme", "same") != KEYRING.encrypt_comment("acme", "same")


def test_wrong_tenant_cannot_decrypt() -> None:
    blob = KEYRING.encrypt_comment("acme", "secret")
    with pytest.raises(DecryptionError) as info:
        KEYRING.decrypt_comment("globex", blob)
    assert info.value.code == "decrypt_failed"


def test_another_keyring_cannot_decrypt() -> None:
    blob = KEYRING.encrypt_comment("acme", "secret")
    with pytest.raises(DecryptionError):
        LocalKeyring.generate().decrypt_comment("acme", blob)


def test_every_tampered_byte_is_detected() -> None:
    blob = KEYRING.encrypt_comment("acme", "the vent is broken")
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(DecryptionError):
            KEYRING.decrypt_comment("acme", bytes(tampered))


@pytest.mark.parametrize("cut", [0, 1, 13, 28])
def test_truncated_blob_is_refused(cut: int) -> None:
    blob = KEYRING.encrypt_comment("acme", "")
    assert len(blob) == 29
    with pytest.raises(DecryptionError):
        KEYRING.decrypt_comment("acme", blob[:cut])


def test_key_file_is_private(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    LocalKeyring.load_or_create(keys_dir)
    assert stat.S_IMODE(os.stat(keys_dir / KEYRING_FILE).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(keys_dir).st_mode) == 0o700
    assert os.listdir(keys_dir) == [KEYRING_FILE]  # no temp files left behind


def test_a_readable_key_file_is_refused(tmp_path: Path) -> None:
    LocalKeyring.load_or_create(tmp_path)
    os.chmod(tmp_path / KEYRING_FILE, 0o644)
    with pytest.raises(KeyringError) as info:
        LocalKeyring.load_or_create(tmp_path)
    assert info.value.code == "insecure_key_file"


@pytest.mark.parametrize(
    "content",
    [b"not json", b"{}", b'{"version": 1, "master_secret": "c2hvcnQ="}', b'{"version": 2}'],
)
def test_a_corrupt_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / KEYRING_FILE
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyringError) as info:
        LocalKeyring.load_or_create(tmp_path)
    assert info.value.code == "corrupt_key_file"


def test_losing_the_creation_race_adopts_the_winner(tmp_path: Path) -> None:
    path = tmp_path / "secret"

    def make_while_another_process_wins() -> bytes:
        # Another process publishes its file between our existence check and our link.
        path.write_bytes(b"winner")
        path.chmod(0o600)
        return b"loser"

    assert read_or_create_secret_file(path, make_while_another_process_wins) == b"winner"
    assert os.listdir(tmp_path) == ["secret"]


def test_concurrent_first_use_from_threads_yields_one_key(tmp_path: Path) -> None:
    barrier = threading.Barrier(16)
    refs: list[str] = []

    def start() -> None:
        barrier.wait()
        refs.append(LocalKeyring.load_or_create(tmp_path).pseudonym("acme", "u-1"))

    threads = [threading.Thread(target=start) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(refs) == 16
    assert len(set(refs)) == 1


def test_concurrent_first_use_from_processes_yields_one_key(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from identity.keyring import LocalKeyring; "
        "print(LocalKeyring.load_or_create(Path(sys.argv[1])).pseudonym('acme', 'u-1'))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "keys")],
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            env=env,
        )
        for _ in range(6)
    ]
    outputs = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert len(outputs) == 1
    assert outputs == {
        LocalKeyring.load_or_create(tmp_path / "keys").pseudonym("acme", "u-1").encode()
    }
