"""Directory sources: who a principal is, which groups it is in, which attributes it has."""
