"""Builders and fixtures' helpers shared by the tiers; no test lives here."""
