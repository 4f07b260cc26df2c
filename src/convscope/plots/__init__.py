"""Every figure convscope draws (matplotlib, Agg backend, saved atomically)."""
