"""The README's Kubernetes commands work as written against the samples they name."""

from __future__ import annotations

import re
import shlex

import yaml
from conftest import REPO

README = (REPO / "README.md").read_text()


def _kubernetes_block() -> list[list[str]]:
    section = README[README.index("## Kubernetes") :]
    block = section[section.index("```bash") + len("```bash") : section.index("```", section.index("```bash") + 7)]
    commands = []
    for line in block.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            commands.append(shlex.split(line))
    return commands


def _namespace(cmd: list[str]) -> str | None:
    return cmd[cmd.index("-n") + 1] if "-n" in cmd else None


def test_readme_creates_the_secrets_the_applied_sample_references_in_its_namespace() -> None:
    commands = _kubernetes_block()
    created = {
        (_namespace(c), c[c.index("generic") + 1]): {
            arg.split("=", 2)[1] for arg in c if arg.startswith("--from-literal=")
        }
        for c in commands
        if c[:1] == ["kubectl"] and "secret" in c and "generic" in c
    }
    applied = [c[c.index("-f") + 1] for c in commands if c[:1] == ["kubectl"] and "apply" in c]
    assert applied, "the README applies a sample"
    for path in applied:
        sample = yaml.safe_load((REPO / path).read_text())
        ns = sample["metadata"].get("namespace")
        spec = sample["spec"]
        refs = [
            (spec["nats"].get("credentialsSecretRef"), ("userKey", "passwordKey")),
            ((spec.get("clickhouse") or {}).get("credentialsSecretRef"), ("userKey", "passwordKey")),
        ]
        for ref, keys in refs:
            if ref is None:
                continue
            secret = (ns, ref["name"])
            assert secret in created, f"{path} references Secret {secret}; the README creates {sorted(created)}"
            for key in keys:
                assert ref.get(key, key.removesuffix("Key")) in created[secret], (secret, key)


def test_readme_describes_the_collector_set_it_applied() -> None:
    commands = _kubernetes_block()
    names = set()
    for c in commands:
        if c[:1] == ["kubectl"] and "apply" in c:
            sample = yaml.safe_load((REPO / c[c.index("-f") + 1]).read_text())
            names.add((sample["metadata"].get("namespace"), sample["metadata"]["name"]))
    described = [(_namespace(c), c[c.index("mpcs") + 1]) for c in commands if "describe" in c and "mpcs" in c]
    assert described and all(d in names for d in described), (described, names)


def test_readme_names_values_that_exist() -> None:
    values = yaml.safe_load((REPO / "charts" / "marketprism" / "values.yaml").read_text())
    for path in re.findall(r"`operator\.([a-zA-Z]+)`", README):
        assert path in values["operator"], path
