"""Who is signed in: the user named by the single sign-on proxy's header, believed only when
the request comes from a trusted proxy; or, for local use, the configured development user."""

from __future__ import annotations

import ipaddress

from services.admin.settings import AdminSettings

USER_MAX = 200  # an id on the wire


def signed_in_user(
    settings: AdminSettings, client_host: str | None, header_value: str | None
) -> str | None:
    """The user id, or None when nobody is signed in."""
    if settings.dev_user is not None:
        return settings.dev_user
    if header_value is None or not from_trusted_proxy(settings, client_host):
        return None
    user = header_value.strip()
    if not user or len(user) > USER_MAX or any(ord(c) < 32 or ord(c) == 127 for c in user):
        return None
    return user


def from_trusted_proxy(settings: AdminSettings, client_host: str | None) -> bool:
    if client_host is None:
        return False
    try:
        address = ipaddress.ip_address(client_host)
    except ValueError:
        return False
    return any(address in network for network in settings.trusted_proxies)
