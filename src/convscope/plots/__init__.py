"""Every figure convscope draws: matplotlib's Figure API on an Agg canvas, saved atomically
(convscope.plots.figure). envelopes.py is NumPy only, for streamed runs that draw at the end."""
