"""API keys: issue a secret once, store its digest, find the key a secret belongs to."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from operations.models import ApiKey

SECRET_PREFIX = "chk_"
# Recording every use would add a write to every request; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest_of(secret: str) -> str:
    """Hash a key secret. A fast hash suffices: the secret has 256 bits of entropy."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(user, name: str) -> tuple[ApiKey, str]:
    """Create a key for `user`; return it and its secret, which is never shown again."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        user=user, name=name, prefix=secret[: len(SECRET_PREFIX) + 6], digest=digest_of(secret)
    )
    return key, secret


def authenticate(secret: str) -> ApiKey | None:
    """Return the usable key with this secret, or None."""
    key = ApiKey.objects.usable().select_related("user").filter(digest=digest_of(secret)).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key
