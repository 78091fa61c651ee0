"""Dashboard users from a TOML file: names, roles, scrypt password hashes, API token hashes.

Nothing here stores a secret in clear: passwords and tokens are salted scrypt hashes,
checked in constant time.
"""

import base64
import hashlib
import hmac
import json
import secrets
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

Role = Literal["reviewer", "admin"]
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str = ""
    token_hash: str = ""


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        found = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except ValueError:
        return False
    return hmac.compare_digest(found, base64.b64decode(digest))


def load_users(path: Path) -> dict[str, User]:
    if not path.is_file():
        return {}
    data = tomllib.loads(path.read_text())
    users = {}
    for entry in data.get("users", []):
        if entry.get("role") not in ("reviewer", "admin"):
            raise ValueError(f"{path}: user {entry.get('name')!r}: role must be reviewer or admin")
        users[entry["name"]] = User(
            name=entry["name"],
            role=entry["role"],
            password_hash=entry.get("password_hash", ""),
            token_hash=entry.get("token_hash", ""),
        )
    return users


def save_users(path: Path, users: dict[str, User]) -> None:
    lines = ["# modstream dashboard users: written by `modstream dashboard add-user` / `token`.", ""]
    for user in users.values():
        lines += (
            ["[[users]]"]
            + [
                f"{field} = {json.dumps(value)}"
                for field, value in (
                    ("name", user.name),
                    ("role", user.role),
                    ("password_hash", user.password_hash),
                    ("token_hash", user.token_hash),
                )
                if value
            ]
            + [""]
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(lines))
    partial.chmod(0o600)
    partial.replace(path)


def add_user(path: Path, name: str, role: Role, password: str) -> User:
    """Create the user, or set their role and password."""
    users = load_users(path)
    previous = users.get(name, User(name=name, role=role))
    users[name] = replace(previous, role=role, password_hash=hash_secret(password))
    save_users(path, users)
    return users[name]


def mint_token(path: Path, name: str) -> str:
    """A new API token for an existing user (the old one stops working); shown once."""
    users = load_users(path)
    if name not in users:
        raise KeyError(f"no dashboard user {name!r} in {path}")
    token = f"{name}.{secrets.token_urlsafe(32)}"
    users[name] = replace(users[name], token_hash=hash_secret(token))
    save_users(path, users)
    return token


def user_for_token(users: dict[str, User], token: str) -> User | None:
    # The token names its user, so only one hash is checked (scrypt is slow on purpose).
    user = users.get(token.split(".", 1)[0])
    return user if user and user.token_hash and verify_secret(token, user.token_hash) else None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
