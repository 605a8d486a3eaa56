"""The store: accounts, payments, gateways, rates, packages, calendars, parameters and CDRs, on
SQLite (embedded default) or PostgreSQL (shared by several nodes). See docs/storage.md."""

from signaling.store.accounts import RIGHTS, Account, AccountPackage, Payment, Phone
from signaling.store.admin import Admin, RateGroupUsage
from signaling.store.cdr import Cdr
from signaling.store.codec import Dialect
from signaling.store.errors import (
    AppendOnlyError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    SchemaError,
    SchemaTooNewError,
    StoreError,
    ValidationError,
)
from signaling.store.gateways import GatewayGroup, MappingGateway, RoutingGateway
from signaling.store.rates import Package, PeriodRate, Rate, RateGroup, WorkCalendar
from signaling.store.reservations import Grant, PackageRequest, Reservation
from signaling.store.store import DEFAULT_URL, Store, open_store

__all__ = [
    "DEFAULT_URL",
    "RIGHTS",
    "Account",
    "AccountPackage",
    "Admin",
    "AppendOnlyError",
    "Cdr",
    "ConflictError",
    "Dialect",
    "GatewayGroup",
    "Grant",
    "MappingGateway",
    "NotFoundError",
    "Package",
    "PackageRequest",
    "Payment",
    "PeriodRate",
    "PermissionDeniedError",
    "Phone",
    "Rate",
    "RateGroup",
    "RateGroupUsage",
    "Reservation",
    "RoutingGateway",
    "SchemaError",
    "SchemaTooNewError",
    "Store",
    "StoreError",
    "ValidationError",
    "WorkCalendar",
    "open_store",
]
