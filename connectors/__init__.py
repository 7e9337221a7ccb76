"""Storage targets. Each connector reads the store's state, computes the physical grants
for the logical access decisions, renders changes to the store's own language, and runs them."""
