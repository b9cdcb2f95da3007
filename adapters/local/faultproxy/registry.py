"""All proxies of one fault proxy process, the Toxiproxy collection operations on them, and the state file.

The state file holds the proxies only (``[{"name", "listen", "upstream", "enabled"}]``, the ``/populate`` format),
written atomically after every change and read at start. Toxics and fault rules are deliberately not saved: a
restart clears every fault. A saved proxy whose port is taken at start comes back disabled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from pathlib import Path

from . import errors
from .proxy import Proxy, check_upstream, resolve_listen

logger = logging.getLogger("lastmile.faultproxy")


class Registry:
    def __init__(self, state_file: Path | None = None):
        self.state_file = state_file
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        if name not in self.proxies:
            raise errors.proxy_not_found()
        return self.proxies[name]

    async def create(self, payload: object) -> Proxy:
        name, listen, upstream, enabled = _proxy_fields(payload, defaults={"enabled": True})
        async with self.lock:
            if name in self.proxies:
                raise errors.proxy_already_exists()
            proxy = Proxy(name, resolve_listen(listen), upstream)
            if enabled:
                await proxy.start()
            self.proxies[name] = proxy
            self.save()
            return proxy

    async def update(self, name: str, payload: object) -> Proxy:
        """Toxiproxy's update: a new listen or upstream restarts the proxy; ``enabled`` starts or stops it."""
        async with self.lock:
            proxy = self.get(name)
            _, listen, upstream, enabled = _proxy_fields(
                payload, defaults=proxy.record(), need=())
            listen = resolve_listen(listen)
            if listen != proxy.listen or upstream != proxy.upstream:
                proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
            try:
                if enabled:
                    await proxy.start()
                else:
                    proxy.stop()
            finally:
                self.save()
            return proxy

    async def delete(self, name: str) -> None:
        async with self.lock:
            self.get(name).stop()
            del self.proxies[name]
            self.save()

    async def populate(self, payload: object) -> tuple[list[Proxy], errors.ApiError | None]:
        """Create the listed proxies, replacing those whose listen or upstream differ (fresh, without toxics) and
        leaving the others untouched. All entries are checked before any is applied."""
        if not isinstance(payload, list):
            raise errors.bad_request_body("populate takes a JSON array of proxies")
        entries = []
        for index, item in enumerate(payload, start=1):
            if not isinstance(item, dict):
                raise errors.bad_request_body(f"proxy {index} is not a JSON object")
            for key in ("name", "upstream"):
                if not item.get(key):
                    raise errors.missing_field(f"{key} at proxy {index}")
            entries.append(_proxy_fields(item, defaults={"enabled": True}))
        done: list[Proxy] = []
        async with self.lock:
            try:
                for name, listen, upstream, enabled in entries:
                    done.append(await self._add_or_replace(name, resolve_listen(listen), upstream, enabled))
            except errors.ApiError as exc:
                return done, exc
            finally:
                self.save()
        return done, None

    async def _add_or_replace(self, name: str, listen: str, upstream: str, enabled: bool) -> Proxy:
        existing = self.proxies.get(name)
        if existing is not None:
            if existing.listen == listen and existing.upstream == upstream:
                return existing
            existing.stop()
            del self.proxies[name]
        proxy = Proxy(name, listen, upstream)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def reset(self) -> None:
        """Every proxy enabled, every toxic and every fault rule removed."""
        async with self.lock:
            try:
                for proxy in self.proxies.values():
                    await proxy.start()
                    proxy.reset_toxics()
                    proxy.rules.clear()
            finally:
                self.save()

    async def restore(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        records = json.loads(self.state_file.read_text())
        async with self.lock:
            for record in records:
                proxy = Proxy(record["name"], record["listen"], record["upstream"])
                self.proxies[proxy.name] = proxy
                if record.get("enabled", True):
                    try:
                        await proxy.start()
                    except errors.ApiError as exc:
                        logger.warning("a saved proxy could not listen again; it stays disabled",
                                       extra={"fields": {"proxy": proxy.name, "error": exc.message}})
        logger.info("proxies restored", extra={"fields": {"state": str(self.state_file),
                                                          "proxies": sorted(self.proxies)}})

    async def shutdown(self) -> None:
        async with self.lock:
            for proxy in self.proxies.values():
                proxy.stop()

    def save(self) -> None:
        """Write the state file atomically (a temporary file beside it, then a rename)."""
        if self.state_file is None:
            return
        data = json.dumps([p.record() for p in self.proxies.values()], indent=2) + "\n"
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=self.state_file.name, suffix=".tmp", dir=self.state_file.parent)
        try:
            with os.fdopen(handle, "w") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.state_file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _proxy_fields(payload: object, defaults: dict, need: tuple[str, ...] = ("name", "upstream")
                  ) -> tuple[str, str, str, bool]:
    """``(name, listen, upstream, enabled)`` of a proxy body; missing fields take ``defaults``."""
    if not isinstance(payload, dict):
        raise errors.bad_request_body("a proxy is a JSON object")
    values = {**{"name": "", "listen": "", "upstream": ""}, **defaults}
    for key in ("name", "listen", "upstream"):
        value = payload.get(key, values[key])
        if not isinstance(value, str):
            raise errors.bad_request_body(f"{key} must be a string, got {value!r}")
        values[key] = value
    enabled = payload.get("enabled", values["enabled"])
    if not isinstance(enabled, bool):
        raise errors.bad_request_body(f"enabled must be true or false, got {enabled!r}")
    for key in need:
        if not values[key]:
            raise errors.missing_field(key)
    return values["name"], values["listen"], check_upstream(values["upstream"]), enabled
