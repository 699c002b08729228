"""Classic reference systems with documented parameters and known answers."""
