"""`drivesim bench ...`: speed and memory measurements, printed as tables."""
