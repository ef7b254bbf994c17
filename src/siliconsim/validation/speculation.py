"""Speculative decoding for suite rows whose ``speculative`` column names a technique.

A row says only the technique (``eagle3``, ``mtp``, ``specdec``, ``unknown-spec``). Its draft
length, per-token acceptance and drafter are the technique's defaults in ``data/speculation.toml``,
each sourced from the literature; they are the same for every row of a technique.

* ``head``: an EAGLE-style one-layer head on the target's chips (``speculative.draft_head``).
* ``mtp``: the model's own multi-token-prediction layer (DeepSeek-V3), on the target's chips.
* ``draft-model``: a separate catalog model with the target's vocabulary whose active parameters
  are nearest (in ratio) to ``1/draft_size_ratio`` of the target's and at most
  ``1/min_draft_size_ratio`` of them, on its own smallest deployment (Leviathan et al. 2023).
* ``same_as``: the technique is unknown; another technique's defaults are used.

``as_served`` gives a single-stream row whose source names no technique the one its service's
vendor documents for the model (``data/services.toml``), with the draft where the vendor puts it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from siliconsim.errors import CatalogError
from siliconsim.hardware.catalog import read_toml, sourced
from siliconsim.models.catalog import load_model, model_ids
from siliconsim.models.spec import ModelSpec
from siliconsim.speculative import Speculation, draft_head, expected_tokens_per_step
from siliconsim.validation.suite import DATA, SPECULATIVE, Case

SPECULATION_FILE = DATA / "speculation.toml"
SERVICES_FILE = DATA / "services.toml"
DRAFTERS = ("head", "mtp", "draft-model")
PLACEMENTS = ("target-chips", "own-system")


@dataclass(frozen=True)
class Technique:
    """Defaults of one speculative technique (see ``data/speculation.toml``)."""

    name: str
    drafter: str  # one of DRAFTERS
    draft_len: int
    acceptance: float
    draft_size_ratio: float = 0.0  # draft-model: target / draft active parameters aimed at
    min_draft_size_ratio: float = 0.0  # draft-model: smallest ratio that still counts as a draft


def _text(entry: Any, where: str, choices: tuple[str, ...]) -> str:
    """A ``{value, basis, source}`` entry whose value is a word from ``choices``."""
    # ``sourced`` checks the table, its basis and its source; the value is checked here
    sourced({**entry, "value": 0} if isinstance(entry, dict) else entry, "dimensionless", where)
    value = entry["value"]
    if value not in choices:
        raise CatalogError(f"{where}.value: {value!r} is not one of {', '.join(choices)}")
    return value


def _technique(name: str, table: dict[str, Any], path: Path) -> Technique:
    def number(key: str, default: float | None = None) -> float:
        if key not in table and default is not None:
            return default
        return sourced(table.get(key), "dimensionless", f"{path.name}: {name}.{key}").value

    draft_len = number("draft_len")
    if draft_len != int(draft_len) or draft_len < 1:
        raise CatalogError(f"{path.name}: {name}.draft_len: expected a whole number >= 1, got {draft_len:g}")
    return Technique(name, _text(table.get("drafter"), f"{path.name}: {name}.drafter", DRAFTERS), int(draft_len),
                     number("acceptance"), number("draft_size_ratio", 0.0), number("min_draft_size_ratio", 0.0))


@functools.cache
def techniques(path: Path = SPECULATION_FILE) -> dict[str, Technique]:
    """Every technique of the file by name; ``same_as`` entries resolve to their target's defaults."""
    doc = {k: v for k, v in read_toml(path).items() if k != "meta"}
    plain = {k: _technique(k, v, path) for k, v in doc.items() if "same_as" not in v}
    out = dict(plain)
    for name, table in doc.items():
        if "same_as" in table:
            like = _text(table["same_as"], f"{path.name}: {name}.same_as", tuple(plain))
            out[name] = replace(plain[like], name=name)
    return out


def draft_model_for(model: ModelSpec, tech: Technique) -> ModelSpec | None:
    """The catalog model with ``model``'s vocabulary whose active parameters are nearest (in ratio)
    to ``1 / draft_size_ratio`` of the target's, among those at most ``1 / min_draft_size_ratio``."""
    def ratio(m: ModelSpec) -> float:
        return model.active_params / m.active_params

    same_vocab = (load_model(i) for i in model_ids() if i != model.id)
    drafts = [m for m in same_vocab if m.vocab_size == model.vocab_size and ratio(m) >= tech.min_draft_size_ratio]
    if not drafts:
        return None
    return min(drafts, key=lambda m: (abs(math.log(ratio(m) / tech.draft_size_ratio)), m.id))


@dataclass(frozen=True)
class Service:
    """A vendor's documented decoding on its public service (``data/services.toml``)."""

    technique: str
    models: frozenset[str]
    colocated: bool  # the draft runs on the target's chips


@functools.cache
def services(path: Path = SERVICES_FILE) -> dict[str, Service]:
    """Every chip id's documented service practice."""
    out = {}
    for chip_id, table in read_toml(path).items():
        if chip_id == "meta":
            continue
        where = f"{path.name}: {chip_id}"
        technique = _text(table.get("technique"), f"{where}.technique", SPECULATIVE[1:])
        models = table.get("models")
        sourced({**models, "value": 0} if isinstance(models, dict) else models, "dimensionless", f"{where}.models")
        placement = _text(table.get("draft_placement"), f"{where}.draft_placement", PLACEMENTS)
        out[chip_id] = Service(technique, frozenset(str(models["value"]).split()), placement == "target-chips")
    return out


def as_served(case: Case) -> tuple[Case, bool]:
    """``case`` with its service's documented technique where a single-stream row names none
    (``none`` only says the source claims none), and whether the draft shares the target's chips."""
    service = services().get(case.hardware)
    if service is None or case.scenario != "single_stream" or case.model not in service.models:
        return case, False
    if case.is_speculative:
        return case, service.colocated and case.speculative == service.technique
    return replace(case, speculative=service.technique), service.colocated


def speculation_for(technique: str, model: ModelSpec, colocated: bool = False) -> tuple[Speculation | None, str]:
    """The speculation assumed for a row of ``technique`` on ``model`` and a description of it,
    or ``None`` and the reason it cannot be modelled. ``colocated`` puts a draft model on the
    target's chips (a vendor that deploys them together), as heads always are."""
    tech = techniques().get(technique)
    if tech is None:
        return None, f"no defaults for speculative technique {technique!r} in {SPECULATION_FILE.name}"
    if tech.drafter == "mtp" and model.mtp_layers < 1:
        return None, f"{technique}: {model.id} has no multi-token-prediction layer"
    if tech.drafter == "draft-model":
        draft = draft_model_for(model, tech)
        if draft is None:
            return None, (f"{technique}: no catalog model shares {model.id}'s vocabulary at "
                          f"<= 1/{tech.min_draft_size_ratio:g} of its active parameters")
        what = f"draft {draft.id}" + (" on the target's chips" if colocated else "")
    else:
        draft = draft_head(model, moe=tech.drafter == "mtp")
        what = "MTP layer" if tech.drafter == "mtp" else "EAGLE head"
    spec = Speculation("draft", tech.draft_len, tech.acceptance, draft,
                       colocated=colocated or tech.drafter != "draft-model")
    tokens = expected_tokens_per_step(tech.acceptance, tech.draft_len)
    return spec, (f"{technique} assumed: {what}, k={tech.draft_len}, acceptance {tech.acceptance:g} "
                  f"({tokens:.2f} tokens/step)")
