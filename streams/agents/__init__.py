"""faust agents, one module per pipeline stage: processor → aggregator, vote sink."""
