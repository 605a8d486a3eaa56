"""Call processing on the store: admission, routing, real-time rating and CDRs (docs/routing.md,
docs/billing.md). :class:`StoreRouter` is the :class:`signaling.routing.Router` the SIP node
uses when a store is configured."""

from signaling.callproc.router import StoreRouter

__all__ = ["StoreRouter"]
