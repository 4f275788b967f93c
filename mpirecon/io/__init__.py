"""Reading inputs and writing outputs: loading calibrations and measurements, frame selection, the rule for every output file, provenance."""
