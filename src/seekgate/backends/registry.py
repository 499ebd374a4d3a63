"""Builds one backend per model alias from the settings: a name -> factory table, lazy imports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seekgate import errors
from seekgate.backends.balanced import Balanced
from seekgate.backends.base import Backend, Health
from seekgate.backends.weights import describe_source, local_weights
from seekgate.routing.pins import Pins
from seekgate.settings import AnthropicBackendSpec, BackendSpec, ModelSpec, OpenAIBackendSpec, Settings

if TYPE_CHECKING:
    import aiohttp

__all__ = ["SERVER_TYPES", "ModelEntry", "Registry"]

log = logging.getLogger("seekgate.backends")


@dataclass(frozen=True)
class ModelEntry:
    alias: str
    spec: ModelSpec
    backend_name: str
    backend_type: str
    backend: Backend


def _llamacpp(alias: str, name: str, backend: Any, model: ModelSpec, ctx: _BuildContext) -> Backend:
    from seekgate.backends.llamacpp.backend import LlamaCppBackend

    data = ctx.settings.server.data_path
    return LlamaCppBackend(name, alias, backend, model, local_weights(model, data), prefix_root=data / "prefix-cache")


def _mistralrs(alias: str, name: str, backend: Any, model: ModelSpec, ctx: _BuildContext) -> Backend:
    from seekgate.backends.mistralrs import MistralrsBackend

    return MistralrsBackend(name, alias, backend, model, local_weights(model, ctx.settings.server.data_path))


def _openai(alias: str, name: str, backend: Any, model: ModelSpec, ctx: _BuildContext) -> Backend:
    from seekgate.backends.openai_compat import OpenAICompatBackend, open_session

    if name not in ctx.sessions:
        ctx.sessions[name] = open_session(backend)
    assert model.upstream_model is not None
    return OpenAICompatBackend(name, backend, model.upstream_model, ctx.sessions[name])


def _anthropic(alias: str, name: str, backend: Any, model: ModelSpec, ctx: _BuildContext) -> Backend:
    from seekgate.backends.anthropic_api import AnthropicBackend, open_session

    if name not in ctx.sessions:
        ctx.sessions[name] = open_session(backend)
    assert model.upstream_model is not None
    return AnthropicBackend(name, backend, model.upstream_model, ctx.sessions[name])


def _fake(alias: str, name: str, backend: Any, model: ModelSpec, ctx: _BuildContext) -> Backend:
    from seekgate.backends.fake import FakeBackend

    assert model.upstream_model is not None
    return FakeBackend(name, model.upstream_model)


_Factory = Callable[[str, str, Any, ModelSpec, "_BuildContext"], Backend]
FACTORIES: dict[str, _Factory] = {
    "llamacpp": _llamacpp,
    "mistralrs": _mistralrs,
    "openai": _openai,
    "anthropic": _anthropic,
    "fake": _fake,
}
SERVER_TYPES = frozenset({"openai", "anthropic"})
"""Backend types that are a server the gateway calls: probed once per server, however many models."""


@dataclass
class _BuildContext:
    settings: Settings
    sessions: dict[str, aiohttp.ClientSession]


class Registry:
    """Every configured model alias and the backend that serves it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self.models: dict[str, ModelEntry] = {}
        self.pins = Pins(settings.models, settings.server.data_path / "pins.json")

    def build(self) -> None:
        """Create the backends; needs a running event loop (HTTP sessions bind to it)."""
        ctx = _BuildContext(self._settings, self._sessions)
        for alias, model in self._settings.models.items():
            built = []
            for name in (model.backend, *model.replicas):
                spec: BackendSpec = self._settings.backends[name]
                kind = type(spec).__struct_config__.tag
                assert isinstance(kind, str)
                built.append(FACTORIES[kind](alias, name, spec, model, ctx))
            backend = Balanced(built) if len(built) > 1 else built[0]
            self.models[alias] = ModelEntry(alias, model, backend.name, kind, backend)

    def get(self, alias: str | None) -> ModelEntry:
        """An alias, or a model family (`ds-coder-v2`) resolved through its current pin."""
        name = alias or self._settings.server.default_model
        entry = self.models.get(name) or self.models.get(self.pins.resolve(name) or "")
        if entry is None:
            raise errors.ModelNotFound(name, [*self.models, *self.pins.versions])
        return entry

    @property
    def default(self) -> ModelEntry:
        return self.get(self._settings.server.default_model)

    async def start(self) -> None:
        """Load the default model when configured to; other embedded models load on first use."""
        if self._settings.server.preload_default:
            entry = self.default
            log.info("loading default model %s from %s", entry.alias, describe_source(entry.spec))
            try:
                await entry.backend.start()
            except errors.SeekgateError as exc:
                log.warning("default model %s is not ready: %s", entry.alias, exc.message)

    async def health(self, entries: list[ModelEntry]) -> dict[str, Health]:
        """Health per alias, probing each server backend once however many models it serves."""
        servers = {e.backend_name: e.backend for e in entries if e.backend_type in SERVER_TYPES}
        names = list(servers)
        probes = await asyncio.gather(*(servers[n].health() for n in names))
        by_server = dict(zip(names, probes))
        out: dict[str, Health] = {}
        for e in entries:
            out[e.alias] = by_server[e.backend_name] if e.backend_name in by_server else await e.backend.health()
        return out

    async def aclose(self) -> None:
        await asyncio.gather(*(e.backend.aclose() for e in self.models.values()))
        await asyncio.gather(*(s.close() for s in self._sessions.values()))


def backend_label(spec: BackendSpec) -> str:
    if isinstance(spec, OpenAIBackendSpec | AnthropicBackendSpec):
        return spec.base_url
    return str(type(spec).__struct_config__.tag)
