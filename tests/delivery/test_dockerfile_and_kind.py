"""What can be checked of the image and the kind path without a Docker engine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]


def dockerfile_stages() -> list[dict[str, object]]:
    stages: list[dict[str, object]] = []
    args = {}
    for raw in re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text()).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "ARG" and not stages:
            name, _, value = rest.partition("=")
            args[name] = value
        elif word == "FROM":
            image, _, alias = rest.partition(" AS ")
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
            stages.append({"image": image, "name": alias.strip(), "lines": []})
        else:
            stages[-1]["lines"].append((word, rest))  # type: ignore[union-attr]
    return stages


def test_multi_stage_slim_images() -> None:
    stages = dockerfile_stages()
    assert [s["name"] for s in stages] == ["build", "runtime"]
    assert all(str(s["image"]).endswith("-slim-bookworm") for s in stages)


def test_final_stage_is_non_root_without_compilers_or_caches() -> None:
    final = dockerfile_stages()[-1]
    lines = final["lines"]
    users = [rest for word, rest in lines if word == "USER"]  # type: ignore[attr-defined]
    assert users and all(re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", u) for u in users), users
    runs = " ".join(rest for word, rest in lines if word == "RUN")  # type: ignore[attr-defined]
    assert not re.search(r"apt-get|gcc|build-essential|pip install", runs)
    env = " ".join(rest for word, rest in lines if word == "ENV")  # type: ignore[attr-defined]
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    labels = " ".join(rest for word, rest in lines if word == "LABEL")  # type: ignore[attr-defined]
    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    build_runs = " ".join(rest for word, rest in dockerfile_stages()[0]["lines"] if word == "RUN")  # type: ignore
    assert "PIP_NO_CACHE_DIR=1" in (REPO / "Dockerfile").read_text() and "__pycache__" in build_runs


def test_commands_are_the_project_console_scripts() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    final = dockerfile_stages()[-1]["lines"]
    cmd = next(rest for word, rest in final if word == "CMD")  # type: ignore[attr-defined]
    assert yaml.safe_load(cmd)[0] in scripts
    chart_commands = re.findall(
        r'command: \["([a-z-]+)"',
        "".join(p.read_text() for p in (REPO / "helm" / "tradingbot-operator" / "templates").glob("*.yaml")),
    )
    pod_builder = (REPO / "bot_operator" / "builders" / "pod.py").read_text()
    assert set(chart_commands) <= set(scripts) and '"bot-runtime", "run"' in pod_builder
    assert set(scripts) == {"bot-operator", "bot-runtime"}


def test_every_copied_file_exists_and_is_not_ignored() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests", "botops_dev"} <= ignored
    copies = [
        rest
        for stage in dockerfile_stages()
        for word, rest in stage["lines"]  # type: ignore[attr-defined]
        if word == "COPY" and "--from=" not in rest
    ]
    assert copies
    for rest in copies:
        *sources, _ = rest.split()
        for source in sources:
            assert (REPO / source).exists(), source
            assert source.rstrip("/") not in ignored, f"{source} is copied but .dockerignore drops it"


def test_kind_path_targets_and_files() -> None:
    makefile = (REPO / "Makefile").read_text()
    for target in ("kind-up", "image", "kind-load", "deploy", "e2e-kind", "kind-down"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    for path in re.findall(r"(hack/[\w./-]+|examples/[\w./-]+)", makefile):
        assert (REPO / path).exists(), path
    cluster = yaml.safe_load((REPO / "hack" / "kind-config.yaml").read_text())
    assert cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4" and cluster["kind"] == "Cluster"
    postgres = [d for d in yaml.safe_load_all((REPO / "hack" / "kind-postgres.yaml").read_text()) if d]
    secret = next(d for d in postgres if d["kind"] == "Secret")
    values = yaml.safe_load((REPO / "hack" / "kind-values.yaml").read_text())
    assert secret["metadata"]["name"] == values["database"]["existingSecret"]
    assert values["database"]["existingSecretKey"] in secret["stringData"]
    with helm.Chart.load(REPO / "helm" / "tradingbot-operator") as chart:
        chart.validate_schema(values)
        rendered = chart.render(values=values, name="tradingbot-operator", namespace="botops")
    assert "image: tradingbot-operator:dev" in rendered["tradingbot-operator/templates/deployment.yaml"]
