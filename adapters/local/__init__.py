"""The local profile's adapters: stand-ins as processes on loopback and the adapters that talk to them."""
