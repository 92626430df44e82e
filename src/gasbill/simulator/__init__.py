"""A stand-in for the iotmeterv1 platform and a fleet of meters."""
