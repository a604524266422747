"""What both services share at their edges: reconnect policy, outage logging, lag, lifelines."""
