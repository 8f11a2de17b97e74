"""The fault-injection proof: the real command through a fault-injecting proxy, and an oracle."""
