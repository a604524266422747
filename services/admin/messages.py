"""The service's error codes in words a person understands, and the form field each concerns."""

from __future__ import annotations

MESSAGES = {
    "name_required": "Give the key a name.",
    "name_too_long": "The name can be at most 100 characters long.",
    "locations_required": "Choose at least one network location.",
    "unknown_location": "One of the chosen locations no longer exists. Choose again.",
    "location_not_on_key": "That location is not on this key any more.",
    "location_already_on_key": "That location is already on this key.",
    "last_location": "A key keeps at least one network location.",
    "too_many_locations": "A key can have at most 1,000 network locations.",
    "unknown_role": "One of the chosen roles no longer exists. Choose again.",
    "role_not_on_key": "That role is not on this key any more.",
    "role_already_on_key": "That role is already on this key.",
    "too_many_roles": "A key can have at most 10 roles.",
    "matrix_unavailable": (
        "Advanced Role Configuration needs two or more locations and at least one role."
    ),
    "api_module_disabled": "The API module is not enabled for this organization.",
    "not_api_administrator": "You need the API Administrator permission to do this.",
    "unknown_organization": "This organization is not known.",
    "unknown_key": "This key does not exist.",
    "key_deleted": "This key has been deleted.",
    "key_exists": "A key with this id exists already. Try again.",
    "invalid_secret_hash": "The new secret was not accepted. Try again.",
    "invalid_secret_hint": "The new secret was not accepted. Try again.",
    "invalid_command": "The request was not understood (an id may be too long).",
    "value_too_long": "A value is too long.",
    "timeout": (
        "The keys service did not answer in time. The change may still be applied: "
        "reload the page before trying again."
    ),
}

FIELDS = {
    "name_required": "name",
    "name_too_long": "name",
    "locations_required": "locations",
    "unknown_location": "locations",
    "location_not_on_key": "locations",
    "location_already_on_key": "locations",
    "last_location": "locations",
    "too_many_locations": "locations",
    "unknown_role": "roles",
    "role_not_on_key": "roles",
    "role_already_on_key": "roles",
    "too_many_roles": "roles",
    "matrix_unavailable": "roles",
}


def message(code: str) -> str:
    return MESSAGES.get(code, f"The change was refused ({code}).")


def field_errors(code: str) -> dict[str, str]:
    """``{field: words}``; errors that concern no field are under ``form``."""
    return {FIELDS.get(code, "form"): message(code)}
