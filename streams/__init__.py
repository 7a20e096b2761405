"""Stream processing: topic declarations, faust agents and their tables."""
