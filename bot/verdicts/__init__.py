"""Results as frozen data, and how evidence becomes a verdict: intervals against limits, planned looks."""
