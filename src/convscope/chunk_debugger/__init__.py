"""The chunk debugger: a model run chunk by chunk as naive real-time code runs it, vs one shot."""
