"""Everything on one machine (`apikeys run`): the supervisor of its processes and the embedded
Redis server."""
