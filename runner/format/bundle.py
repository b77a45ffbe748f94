"""The bundle: the playbooks an incident runs on (its own and those it includes), each with its exact text and
checked once, and for an exercise the scenario's text. An incident keeps it, so editing the files later does
not change a running incident; every layer above reads the playbooks from here instead of parsing them again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ir.format.load import Loaded, load_text
from ir.format.model import Playbook, Step, step_paths

SCENARIO_PREFIX = "scenario:"  # the key of an exercise's scenario in the stored bundle


@dataclass(frozen=True)
class Bundle:
    root: str  # the incident's own playbook
    loaded: Mapping[str, Loaded]  # by playbook id
    scenario: tuple[str, bytes] | None = None  # an exercise's (scenario id, YAML text)

    @classmethod
    def from_stored(cls, stored: Mapping[str, bytes], root: str, name: str = "incident") -> Bundle:
        """A bundle as a store keeps it (`stored()`), each playbook parsed and checked once."""
        loaded = {pid: load_text(text, f"<{name}: {pid}>") for pid, text in stored.items()
                  if not pid.startswith(SCENARIO_PREFIX)}
        scenario = next(((key.removeprefix(SCENARIO_PREFIX), text) for key, text in stored.items()
                         if key.startswith(SCENARIO_PREFIX)), None)
        return cls(root, loaded, scenario)

    def with_scenario(self, scenario_id: str, text: bytes) -> Bundle:
        return Bundle(self.root, self.loaded, (scenario_id, text))

    def stored(self) -> dict[str, bytes]:
        """What a store keeps: the playbooks' texts by id, and the scenario's under `scenario:<id>`."""
        out = {pid: loaded.text for pid, loaded in self.loaded.items()}
        if self.scenario:
            out[SCENARIO_PREFIX + self.scenario[0]] = self.scenario[1]
        return out

    @property
    def playbook(self) -> Playbook:
        return self.loaded[self.root].playbook

    @property
    def playbooks(self) -> dict[str, Playbook]:
        return {pid: loaded.playbook for pid, loaded in self.loaded.items()}

    def paths(self) -> Iterator[tuple[str, Step]]:
        """Every step path of the root playbook, included playbooks' steps too."""
        return step_paths(self.playbooks, self.root)


def bundle_hash(stored: Mapping[str, bytes]) -> str:
    """SHA-256 over the texts an incident runs on, in key order (each as `key`, its length, its bytes)."""
    digest = hashlib.sha256()
    for key in sorted(stored):
        digest.update(f"{key}\n{len(stored[key])}\n".encode())
        digest.update(stored[key])
    return digest.hexdigest()
