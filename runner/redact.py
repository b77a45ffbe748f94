"""Secrets out of messages: every form a credential takes in what a service or a library says back, replaced by
`[secret]` before the message is stored in the timeline or printed.

The forms: the value itself and its start or end (8 characters or more: a service that shows part of a token);
its base64 at any alignment (`Basic base64(user:token)` in an echoed header, or inside a longer base64 run);
whatever follows `Basic`, `Bearer` or `Token` (an Authorization value, whoever's it is); and a URL's userinfo
(`https://user:password@host`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

SECRET = "[secret]"
SHORTEST = 8  # the shortest start or end of a secret that is redacted on its own
# a credential after its scheme: not a plain word ("token scopes" is prose; a credential has a digit or a sign)
_AUTHORIZATION = re.compile(r"\b(Basic|Bearer|Token)(\s+|%20|=)(?=[A-Za-z]*[0-9._~+/=%-])[A-Za-z0-9._~+/=%-]{4,}",
                            re.I)
# a URL's user part: all of it (`https://TOKEN@host`), except a database's role name before its password
_USERINFO = re.compile(r"\b((?:postgres(?:ql)?://[^/\s@?#:]*:)|[a-z][a-z0-9+.-]*://)[^/\s@?#]*@", re.I)
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")


def forms(secret: str) -> set[str]:
    """The text forms of `secret` that a message may quote."""
    raw = secret.encode()
    out = {secret} | {secret[:n] for n in range(SHORTEST, len(secret))} | {secret[-n:] for n in range(SHORTEST,
                                                                                                   len(secret))}
    for shift in range(3):  # the base64 of the secret wherever it sits in the encoded bytes
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw).decode().rstrip("=")
            core = encoded[4 if shift else 0:][:-4 or None] if len(encoded) > 8 else encoded
            if len(core) >= SHORTEST:
                out.add(core)
    return out


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret, in every form, replaced by `[secret]`."""
    text = _AUTHORIZATION.sub(lambda m: f"{m.group(1)}{m.group(2)}{SECRET}", text)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{SECRET}@" if not m.group(1).endswith("://")
                         or not m.group(1).lower().startswith("postgres") else m.group(), text)
    values = [s for s in secrets if s]
    for form in sorted({f for s in values for f in forms(s)}, key=len, reverse=True):
        # a secret too short to tell from the letters of words (a test's "x") is replaced where it stands alone
        text = text.replace(form, SECRET) if len(form) >= SHORTEST else \
            re.sub(rf"(?<![\w-]){re.escape(form)}(?![\w-])", SECRET, text)
    return _BASE64.sub(lambda m: SECRET if _hides(m.group(), values) else m.group(), text) if values else text


def _hides(blob: str, secrets: list[str]) -> bool:
    """Whether a base64 run decodes to text holding a secret (or its start or end)."""
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            decoded = decode(blob + "=" * (-len(blob) % 4)).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            continue
        if any(form in decoded for s in secrets for form in forms(s)):
            return True
    return False
