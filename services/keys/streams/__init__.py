"""The keys service's Redis edges: commands in (intake, consumer, broker, upkeep, replies) and
stored events out (feed, relay, relay process, export)."""
