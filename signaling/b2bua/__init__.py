"""The B2BUA: calls joining a customer leg and a carrier leg, and the node that runs them."""
