"""Several keys-service replicas sharing the work: the number of partitions agreed in Redis,
leases (one holder per partition and one relay at a time), the registry of live replicas
that spreads partitions over them, and the coordinator that takes, renews and gives back."""
