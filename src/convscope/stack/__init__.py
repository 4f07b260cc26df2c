"""The conv core: plan, build, trace, lengths, MACs, rates, streaming algebra. Writes no files."""
