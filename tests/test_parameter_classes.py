"""When a stored parameter change takes effect (signaling/params.py ``TAKES_EFFECT``) is derived
from where signaling/ reads each parameter, and these tests hold the classification to the code:
a parameter read only while the node starts (signaling/run.py builds the media engine,
``Node.__init__`` the tracer and the RTP marking) must be ``restart``; one read per call, per
transaction or by the router's reloaded snapshot is ``reload``; one read nowhere is ``never``.
Reference: security-quality-timerouting-failover.md §B.6, §B.8, §B.10 and behaviour 38
("Parameter changes flagged 'restart required' do not change behaviour until the media/signalling
service restarts"); timers-trace-routing-dialplan.md §2.6 and behaviour 77 for the live ones.

The reads are found in the source (``ast``: a string constant that is exactly a parameter's name,
as in ``p["SS_RTP_TIMEOUT"]``; a name inside prose does not count), so a new read of a parameter
somewhere changes the derived class and fails here until signaling/params.py says so too."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from signaling import params
from signaling.b2bua.settings import GROUPS
from signaling.run import media_engine_options
from signaling.store.parameters import SERVER_PARAMETERS

SIGNALING = Path(params.__file__).parent
ALL_NAMES = frozenset(params.PARAMETERS) | frozenset(SERVER_PARAMETERS)
#: where parameters are defined, not read
DEFINITIONS = {SIGNALING / "params.py", SIGNALING / "store" / "parameters.py"}
#: the file-routed node's router: no store reaches it (its parameters are the file's, read at
#: start like everything else in the file)
FILE_ONLY = {SIGNALING / "routing.py"}
#: read once at start: the media engine's settings here, and ``Node.__init__`` (below)
START_FILES = {SIGNALING / "run.py"}
NODE = SIGNALING / "b2bua" / "node.py"


def names_in(node: ast.AST) -> set[str]:
    return {
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in ALL_NAMES
    }


def node_init(tree: ast.Module) -> ast.FunctionDef:
    for cls in tree.body:
        if isinstance(cls, ast.ClassDef) and cls.name == "Node":
            for item in cls.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    return item
    raise AssertionError("Node.__init__ not found in signaling/b2bua/node.py")


def reads() -> tuple[set[str], set[str]]:
    """(names read at start, names read per call / per reload / per request) in signaling/."""
    at_start: set[str] = set()
    live: set[str] = set()
    for path in sorted(SIGNALING.rglob("*.py")):
        if path in DEFINITIONS or path in FILE_ONLY:
            continue
        tree = ast.parse(path.read_text(), str(path))
        if path in START_FILES:
            at_start |= names_in(tree)
        elif path == NODE:
            init = node_init(tree)
            at_start |= names_in(init)
            init_ids = {id(n) for n in ast.walk(init)}
            live |= {
                n.value
                for n in ast.walk(tree)
                if id(n) not in init_ids
                and isinstance(n, ast.Constant)
                and isinstance(n.value, str)
                and n.value in ALL_NAMES
            }
        else:
            live |= names_in(tree)
    return at_start, live


def with_aliases(names: set[str]) -> set[str]:
    """``names`` and every alias all of whose targets are among them."""
    return names | {alias for alias, targets in params.ALIASES.items() if set(targets) <= names}


def test_every_parameter_is_in_exactly_one_class() -> None:
    counts = Counter(name for _, names in params._CLASSES for name in names)
    assert set(counts) == ALL_NAMES
    assert [n for n, c in counts.items() if c > 1] == []
    assert set(params.TAKES_EFFECT) == ALL_NAMES
    kinds = {params.RELOAD, params.RESTART, params.IMMEDIATE, params.NEVER}
    assert set(params.TAKES_EFFECT.values()) == kinds


def test_an_alias_takes_effect_when_its_parameter_does() -> None:
    for alias, targets in params.ALIASES.items():
        assert {params.takes_effect(t) for t in targets} == {params.takes_effect(alias)}, alias


def test_a_parameter_read_only_at_start_is_restart_and_one_read_live_is_reload() -> None:
    at_start, live = reads()
    softswitch = set(params.PARAMETERS)
    assert with_aliases((at_start - live) & softswitch) == params.AT_RESTART
    assert with_aliases(live & softswitch) == params.LIVE
    assert softswitch - with_aliases((at_start | live) & softswitch) == params.UNUSED


def test_server_parameters_by_who_reads_them() -> None:
    """SERVER_* billing parameters are read through the router's snapshot (each reload); the
    others by the store, API or web manager at each use; the unused ones by nothing."""
    at_start, live = reads()
    assert not at_start & set(SERVER_PARAMETERS)
    callproc: set[str] = set()
    for path in (SIGNALING / "callproc").rglob("*.py"):
        callproc |= names_in(ast.parse(path.read_text()))
    server = set(SERVER_PARAMETERS) - set(params.PARAMETERS)
    assert callproc & server == params.SERVER_LIVE
    assert (live - callproc) & server == params.SERVER_AT_ONCE
    assert server - live == params.SERVER_UNUSED


def test_what_the_node_applies_at_a_reload_is_live() -> None:
    applied = {name for names, _ in GROUPS.values() for name in names}
    assert applied <= params.LIVE
    assert not applied & params.AT_RESTART


class Recording(Mapping[str, Any]):
    """The node's parameters, noting each one read."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.given = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        self.read.add(name)
        return self.given[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.given)

    def __len__(self) -> int:
        return len(self.given)


def test_the_media_engine_is_built_from_restart_parameters_only() -> None:
    recording = Recording(params.resolve({}))
    options = media_engine_options(recording)
    assert options["port_min"] == 10000 and options["rtp_timeout"] == 30.0
    assert recording.read
    assert {params.takes_effect(n) for n in recording.read} == {params.RESTART}


def test_the_operator_is_told_for_each_class() -> None:
    assert set(params.EFFECT_NOTE) == set(params.TAKES_EFFECT.values())
    assert params.takes_effect("SS_RTP_TIMEOUT") == params.RESTART
    assert params.takes_effect("SS_SIP_TIMEOUT_INVITE") == params.RELOAD
    assert params.takes_effect("SS_VOICEGAIN") == params.RELOAD
    assert params.takes_effect("SERVER_QUERY_ONE_PAGE_SIZE") == params.IMMEDIATE
