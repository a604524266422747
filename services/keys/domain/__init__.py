"""The keys domain: aggregates and their rules. Imports only the standard library and
``eventsourcing.domain``; event topics embed these module paths, so keep them stable."""

from services.keys.domain.api_key import ApiKey
from services.keys.domain.errors import Cause, DomainError
from services.keys.domain.organization import Organization
from services.keys.domain.receipt import CommandReceipt, Outcome

__all__ = ["ApiKey", "Cause", "CommandReceipt", "DomainError", "Organization", "Outcome"]
